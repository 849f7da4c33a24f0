"""comparison_figure: the reference beside each image, titled with PSNR / SSIM from rim_monai.metrics."""

import numpy as np
import pytest

from rim_monai.engines.figures import comparison_figure


def test_writes_a_png_and_checks_shapes(tmp_path):
    pytest.importorskip("matplotlib")
    ref = np.random.default_rng(0).random((16, 16))
    path = comparison_figure([(ref, {"noisy": ref + 0.01, "same": ref})], tmp_path / "fig.png", window=(0, 1))
    assert path.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="shape"):
        comparison_figure([(ref, {"small": ref[:8]})], tmp_path / "bad.png")
