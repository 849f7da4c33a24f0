"""Reproducible experiments that compose the layers (data -> operator -> network -> metrics) into a paper's figure.

Each experiment is a module run as ``python -m rim_monai.experiments.<name> --config configs/<name>.json``; it
writes its figure and tables atomically and records the settings, seeds, budget and machine it ran with.

- :mod:`rim_monai.experiments.random_projections`: the RIM paper's convergence experiment (Sec. 4.4, Fig. 2), on
  patches from :mod:`rim_monai.experiments.patches`;
- :mod:`rim_monai.experiments.adaptation_evidence`: model adaptation (R&R, R&R+) against its references, per drift;
- :mod:`rim_monai.experiments.htc_adaptation`: R&R on the real HTC 2022 limited-angle scanner;
- :mod:`rim_monai.experiments.bundle_evaluation`: a bundle's ``evaluate.json`` over a table of settings;
- :mod:`rim_monai.experiments.mri_test_evaluation` and :mod:`rim_monai.experiments.ct_test_evaluation`: a bundle's
  network on held-out test sets beside validation-tuned baselines, on the cache, scores and summary of
  :mod:`rim_monai.experiments.heldout_evaluation`;
- :mod:`rim_monai.experiments.tv_sweep`: the TV weight sweep behind the fixed default weight of ``docs/classical.md``.

:mod:`rim_monai.experiments.environment` holds what they share: the repository and data paths, the machine
description, timing and atomic text writes. Experiments use the public API of the layers only.

The experiment modules are not imported here, so that ``python -m`` runs them without a double import.
"""

__all__ = ["random_projections", "adaptation_evidence", "htc_adaptation", "bundle_evaluation", "patches",
           "environment", "heldout_evaluation", "mri_test_evaluation", "ct_test_evaluation", "tv_sweep"]
