"""Reproducible experiments that compose the layers (data -> operator -> network -> metrics) into a paper's figure.

Each experiment is a module run as ``python -m rim_monai.experiments.<name> --config configs/<name>.json``; it
writes its figure and tables atomically and records the settings, seeds, budget and machine it ran with.

- :mod:`rim_monai.experiments.random_projections`: the RIM paper's convergence experiment (Sec. 4.4, Fig. 2).

The experiment modules are not imported here, so that ``python -m`` runs them without a double import.
"""

__all__ = ["random_projections"]
