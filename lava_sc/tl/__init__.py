"""Tools: ``localities`` -> ``correlations`` -> ``modules``."""

from ._correlations import correlations
from ._differential import differential
from ._enrich import enrich
from ._localities import localities
from ._modules import modules
from ._score import score

__all__ = ["localities", "correlations", "modules", "differential", "enrich", "score"]
