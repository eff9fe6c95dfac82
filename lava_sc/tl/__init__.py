"""Tools: ``localities`` -> ``correlations`` -> ``modules``; then differential activity, annotation,
transfer, and the explainers LAVA is compared with (attribution baselines, stability)."""

from ._corpus_attribution import corpus_attribution
from ._correlations import correlations
from ._counterfactual import counterfactual_attribution
from ._differential import differential
from ._enrich import enrich
from ._label_free import label_free_importance
from ._localities import localities
from ._module_faithfulness import module_faithfulness
from ._modules import modules
from ._score import score
from ._stability import stability

__all__ = [
    "localities",
    "correlations",
    "modules",
    "differential",
    "enrich",
    "score",
    "corpus_attribution",
    "label_free_importance",
    "counterfactual_attribution",
    "module_faithfulness",
    "stability",
]
