"""Datasets: the planted-module simulator and real data available offline."""

from ._images import digits, mnist
from ._simulate import simulate_planted

__all__ = ["simulate_planted", "digits", "mnist"]
