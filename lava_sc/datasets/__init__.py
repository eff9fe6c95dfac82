"""Datasets: simulators with planted modules and loaders of offline data."""

from ._simulate import simulate_planted

__all__ = ["simulate_planted"]
