"""Tidy DataFrame accessors for LAVA results."""

from ._activity import activity
from ._modules import module_genes, modules

__all__ = ["modules", "module_genes", "activity"]
