"""Reconstruction networks, all called as ``net(y, A)`` (see ``docs/networks.md``)."""

from rim_monai.networks.base import IterativeNetwork, ReconstructionNetwork
from rim_monai.networks.blocks import ConvGRUCell, ConvStack
from rim_monai.networks.deq import DeepEquilibrium, anderson
from rim_monai.networks.fbpconvnet import FBPConvNet
from rim_monai.networks.gradient_descent import LearnedGradientDescent
from rim_monai.networks.normalization import ScaleEquivariant, scale_statistic
from rim_monai.networks.primal_dual import LearnedPrimalDual, fold_measurements, unfold_measurements
from rim_monai.networks.rim import RIM

# -- further network modules register their public names below (one import line each) --

__all__ = [
    "IterativeNetwork",
    "ReconstructionNetwork",
    "ConvGRUCell",
    "ConvStack",
    "DeepEquilibrium",
    "anderson",
    "FBPConvNet",
    "LearnedGradientDescent",
    "ScaleEquivariant",
    "scale_statistic",
    "LearnedPrimalDual",
    "fold_measurements",
    "unfold_measurements",
    "RIM",
]
