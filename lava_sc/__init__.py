"""lava_sc: Locality-Aware Variable Associations for AnnData embeddings."""

from importlib.metadata import PackageNotFoundError, version

from . import tl  # isort: skip  (before explain, whose stability assay runs the tools)
from . import datasets, explain, get, io, pl

try:
    __version__ = version("lava_sc")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.1.0"

__all__ = ["tl", "pl", "get", "explain", "datasets", "io", "__version__"]
