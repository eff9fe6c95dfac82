"""lava_sc: Locality-Aware Variable Associations for AnnData embeddings."""

from importlib.metadata import PackageNotFoundError, version

from . import datasets, get, io, pl, tl

try:
    __version__ = version("lava_sc")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.1.0"

__all__ = ["tl", "pl", "get", "datasets", "io", "__version__"]
