"""Tools: ``localities`` -> ``correlations`` -> ``modules``."""

from ._correlations import correlations
from ._localities import localities
from ._modules import modules

__all__ = ["localities", "correlations", "modules"]
