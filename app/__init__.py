"""pubtrail: a trusted-publishing front and append-only transparency log for Python package indexes."""

__version__ = "0.1.0"
