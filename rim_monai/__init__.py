"""rim_monai: learned iterative reconstruction (RIM, learned primal-dual, model adaptation) the MONAI way."""

__version__ = "0.1.0"

__all__ = ["__version__"]
