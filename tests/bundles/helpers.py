"""What the bundle tests share: running ``monai.bundle`` (alone or under torchrun) and loading shipped weights."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from monai.bundle import ConfigParser

REPO = Path(__file__).resolve().parents[2]


def run_bundle(configs: list[Path], *overrides: str, processes: int = 1, timeout: int = 300) -> str:
    """Run ``python -m monai.bundle run`` on ``configs`` (merged) from the repository root, under
    ``torchrun --standalone --nproc_per_node=processes`` when ``processes > 1``; fail with the output's tail on a
    non-zero exit, return stdout."""
    config = str(configs[0]) if len(configs) == 1 else "[" + ",".join(f"'{c}'" for c in configs) + "]"
    launcher = [sys.executable]
    if processes > 1:
        launcher += ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
    cmd = [*launcher, "-m", "monai.bundle", "run", "--config_file", config, *overrides]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def assert_scale_equivariant(net: torch.nn.Module, y: torch.Tensor, operator) -> torch.Tensor:
    """``net(1e3 y, A) == 1e3 net(y, A)`` (GUIDE §2); returns ``net(y, A)``."""
    with torch.no_grad():
        x = net(y, operator)
        x_scaled = net(1e3 * y, operator)
    torch.testing.assert_close(x_scaled, 1e3 * x, rtol=1e-4, atol=1e-4 * float(x_scaled.abs().max()))
    return x


def shipped_network(bundle: Path) -> torch.nn.Module:
    """``network_def`` of ``bundle``'s inference.json with ``models/model.pt`` loaded (skips when not trained yet)."""
    checkpoint = bundle / "models" / "model.pt"
    if not checkpoint.is_file():
        pytest.skip("models/model.pt has not been trained yet")
    assert checkpoint.stat().st_size < 25 * 2**20
    parser = ConfigParser()
    parser.read_config(str(bundle / "configs" / "inference.json"))
    net = parser.get_parsed_content("network_def")
    net.load_state_dict(torch.load(checkpoint, map_location="cpu"))
    return net


def error_messages(error: BaseException) -> list[str]:
    """The messages of ``error`` and of every exception it was raised from (MONAI wraps config errors in chains)."""
    chain = []
    while error is not None:
        chain.append(str(error))
        error = error.__cause__
    return chain
