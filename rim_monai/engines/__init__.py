"""Glue for MONAI workflows: batch preparation for ``net(y, A)``, the multi-step loss, handlers, bundles (see
``docs/engines.md``)."""

from rim_monai.engines.adaptation import adapt_bundle
from rim_monai.engines.bundle import bundle_config, find_bundle_root, load_bundle_network
from rim_monai.engines.checkpoint import AtomicCheckpointSaver, AtomicDiskSaver, latest_checkpoint, network_weights
from rim_monai.engines.handlers import ReconstructionSaver
from rim_monai.engines.loss import LogMSELoss, MultiStepLoss
from rim_monai.engines.metrics import ImageQualityMetric
from rim_monai.engines.prepare_batch import MaskedFourierFromBatch, PrepareMeasurementBatch, RayTransformFromBatch, plain_tensor
from rim_monai.engines.tables import format_table

# -- further engine modules register their public names below (one import line each) --
from rim_monai.engines.baselines import HounsfieldBaseline
from rim_monai.engines.overrides import MissingOverrideError, required_override
from rim_monai.engines.curves import TrainingCurveWriter, best_metric

__all__ = [
    "find_bundle_root",
    "AtomicCheckpointSaver",
    "AtomicDiskSaver",
    "latest_checkpoint",
    "network_weights",
    "bundle_config",
    "load_bundle_network",
    "adapt_bundle",
    "ReconstructionSaver",
    "format_table",
    "LogMSELoss",
    "MultiStepLoss",
    "ImageQualityMetric",
    "MaskedFourierFromBatch",
    "RayTransformFromBatch",
    "PrepareMeasurementBatch",
    "plain_tensor",
    "HounsfieldBaseline",
    "MissingOverrideError",
    "required_override",
    "TrainingCurveWriter",
    "best_metric",
]
