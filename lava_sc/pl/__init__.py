"""Plots of LAVA results."""
