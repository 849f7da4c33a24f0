"""Glue for MONAI workflows: batch preparation for ``net(y, A)``, the multi-step loss, handlers."""

from rim_monai.engines.bundle import find_bundle_root
from rim_monai.engines.handlers import ReconstructionSaver, format_table
from rim_monai.engines.loss import MultiStepLoss
from rim_monai.engines.metrics import ImageQualityMetric
from rim_monai.engines.prepare_batch import MaskedFourierFromBatch, PrepareMeasurementBatch, plain_tensor

# -- further engine modules register their public names below (one import line each) --

__all__ = [
    "find_bundle_root",
    "ReconstructionSaver",
    "format_table",
    "MultiStepLoss",
    "ImageQualityMetric",
    "MaskedFourierFromBatch",
    "PrepareMeasurementBatch",
    "plain_tensor",
]
