"""Plots of LAVA results."""

from ._activity import activity
from ._differential import differential
from ._localities import localities
from ._module_network import module_network
from ._module_pixels import module_pixels
from ._stability import stability

__all__ = ["activity", "localities", "module_network", "module_pixels", "differential", "stability"]
