"""lmmap: map language models by their log-likelihood vectors."""

__version__ = "0.1.0"
