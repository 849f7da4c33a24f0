"""Speed benchmarks (``python -m rim_monai.benchmarks.<name>``), each printing ratios against the tool a user would
otherwise pick and writing a table under ``docs/benchmarks/``."""

__all__: list[str] = []
