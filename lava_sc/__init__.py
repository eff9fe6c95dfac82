"""lava_sc: Locality-Aware Variable Associations for AnnData embeddings.

The subpackages (``tl``, ``pl``, ``get``, ``explain``, ``datasets``, ``io``) are imported on first
use, so that ``import lava_sc`` and ``lava-sc --help`` do not pay for scanpy, numba and igraph.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

try:
    __version__ = version("lava_sc")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.1.0"

__all__ = ["tl", "pl", "get", "explain", "datasets", "io", "__version__"]

if TYPE_CHECKING:
    from . import datasets, explain, get, io, pl, tl


def __getattr__(name: str):
    if name in __all__:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
