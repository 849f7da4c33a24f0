"""The shared network bases: image layout, the one name for the iteration count and its deprecated aliases."""

from __future__ import annotations

import warnings

import pytest

from rim_monai.networks import RIM, DeepEquilibrium, IterativeNetwork, LearnedGradientDescent, ReconstructionNetwork
from rim_monai.networks.base import renamed_argument


def test_renamed_argument():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert renamed_argument("Net", "iterations", 7, "steps", None, default=10) == 7  # no warning
    with pytest.warns(DeprecationWarning, match=r"^Net: 'steps' is deprecated, use 'iterations'"):
        assert renamed_argument("Net", "iterations", 10, "steps", 4, default=10) == 4
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match=r"^steps: the deprecated name of 'iterations'"):
        renamed_argument("Net", "iterations", 5, "steps", 4, default=10)


def test_bases_hold_layout_and_iterations():
    assert ReconstructionNetwork(3, complex_=True).real_channels == 6
    with pytest.raises(ValueError, match="^in_channels"):
        ReconstructionNetwork(0)
    net = LearnedGradientDescent(2, iterations=4, features=(4,))
    assert isinstance(net, IterativeNetwork) and (net.iterations, net.num_weight_sets, net.weight_index(3)) == (4, 4, 3)
    with pytest.raises(ValueError, match="^iterations: expected a positive number"):
        LearnedGradientDescent(iterations=0)
    with pytest.raises(NotImplementedError, match="iterate"):
        IterativeNetwork(1, False, 2, "zeros").iterate(None, None, None, 2)


def test_old_attribute_names_warn_and_read_the_new_ones():
    rim = RIM(features=(4, 4), iterations=6)
    with pytest.warns(DeprecationWarning, match="use 'iterations'"):
        assert rim.steps == 6
    with pytest.warns(DeprecationWarning, match="use 'iterations'"):
        deq = DeepEquilibrium(features=(4,), max_iter=12)
    with pytest.warns(DeprecationWarning, match="use 'backward_iterations'"):
        deq_old = DeepEquilibrium(features=(4,), backward_max_iter=20)
    assert (deq.iterations, deq_old.backward_iterations) == (12, 20)
    with pytest.warns(DeprecationWarning, match="use 'iterations'"):
        assert deq.max_iter == 12
    with pytest.warns(DeprecationWarning, match="use 'backward_iterations'"):
        assert deq_old.backward_max_iter == 20
