"""Tools: ``localities`` -> ``correlations`` -> ``modules``; then differential activity, annotation
(``enrich``) and transfer (``score``).

The explainers LAVA is compared with live in :mod:`lava_sc.explain`; their names stay importable
from here (``lv.tl.corpus_attribution`` is ``lv.explain.corpus_attribution``)."""

from ._correlations import correlations
from ._differential import differential
from ._enrich import enrich
from ._localities import localities
from ._modules import modules
from ._score import score

# isort: split
# after the pipeline tools: lava_sc.explain.stability imports them
from ..explain import (
    corpus_attribution,
    counterfactual_attribution,
    label_free_importance,
    module_faithfulness,
    stability,
)

__all__ = [
    "localities",
    "correlations",
    "modules",
    "differential",
    "enrich",
    "score",
    # re-exported from lava_sc.explain
    "corpus_attribution",
    "label_free_importance",
    "counterfactual_attribution",
    "module_faithfulness",
    "stability",
]
