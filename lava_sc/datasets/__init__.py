"""Datasets: the planted-module simulators, real data available offline, and recovery scoring."""

from ._atlas import simulate_atlas
from ._images import digits, mnist
from ._kidney import simulate_kidney
from ._kidney_data import kidney, kidney_gene_sets
from ._recovery import recovery
from ._simulate import simulate_planted

__all__ = [
    "simulate_planted",
    "simulate_atlas",
    "recovery",
    "digits",
    "mnist",
    "simulate_kidney",
    "kidney_gene_sets",
    "kidney",
]
