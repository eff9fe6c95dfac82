"""Datasets: the planted-module simulator and real data available offline."""

from ._images import digits, mnist
from ._kidney import kidney, kidney_gene_sets, simulate_kidney
from ._simulate import simulate_planted

__all__ = ["simulate_planted", "digits", "mnist", "simulate_kidney", "kidney_gene_sets", "kidney"]
