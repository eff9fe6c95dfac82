"""Tidy DataFrame accessors for LAVA results."""

from ._active import active
from ._activity import activity
from ._attribution import attribution
from ._composition import locality_composition
from ._counterfactual import counterfactual, faithfulness
from ._differential import differential
from ._enrichment import enrichment
from ._gene_sets import gene_sets
from ._modules import module_genes, modules
from ._stability import stability
from ._summary import summary

__all__ = [
    "modules",
    "module_genes",
    "summary",
    "activity",
    "active",
    "differential",
    "gene_sets",
    "enrichment",
    "attribution",
    "counterfactual",
    "faithfulness",
    "stability",
    "locality_composition",
]
