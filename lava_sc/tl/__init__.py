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

#: names re-exported from lava_sc.explain, resolved on first use: explain's stability assay imports
#: the pipeline tools above, so importing it here eagerly would be circular
FROM_EXPLAIN = (
    "corpus_attribution",
    "label_free_importance",
    "counterfactual_attribution",
    "module_faithfulness",
    "stability",
)


def __getattr__(name: str):
    if name in FROM_EXPLAIN:
        from .. import explain

        return getattr(explain, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
