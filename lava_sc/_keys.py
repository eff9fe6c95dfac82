"""Every AnnData key that :mod:`lava_sc` reads or writes, built from ``key_added``.

Layout written by the tools (``key`` defaults to ``"lava"``)::

    obsm[f"{key}_localities"]        sparse CSR, cells x localities, 1.0 where a cell is a member
    obsm[f"{key}_activity"]          DataFrame, cells x modules, module activity per cell
    obs[f"{key}_in_degree"]          float, each cell's kNN in-degree in the embedding (tl.localities)
    uns[key]["params"]               {"localities": {...}, "correlations": {...}, "modules": {...}}
    uns[key]["probes"]               ndarray, localities x embedding dims
    uns[key]["localities"]           dict of scalar diagnostics (alpha, beta, coverage_loss, n_uncovered, ...)
    uns[key]["genes"]                ndarray of str, the genes that were tested
    uns[key]["sketch"]               sparse CSR, localities x pairs, correlation of significant pairs
    uns[key]["pairs"]                DataFrame, one row per sketch column: gene_a, gene_b, support, mean_r
    uns[key]["correlations"]         dict of diagnostics (tests, discoveries, thresholds)
    uns[key]["modules"]              DataFrame: module, gene_a, gene_b, weight, support
    uns[key]["module_genes"]         DataFrame: module, gene, score, sign
    uns[key]["locality_activity"]    DataFrame, localities x modules
    uns[key]["locality_support"]     DataFrame, localities x modules, share of pair weight significant
    uns[key]["enrichment"]           DataFrame: module, gene_set, overlap, ..., pvalue, qvalue, genes
    uns[key]["differential"]         DataFrame: module, <within>, condition, reference, ... (tl.differential)

Tools that write under their own ``key_added`` (never under a LAVA ``key``)::

    obsm[f"{key_added}_activity"], uns[key_added]     tl.score (default "lava_score"): like tl.modules
    uns[key_added], var[f"{key_added}_attribution"],  explain.corpus_attribution ("cocoa"),
      obs[f"{key_added}_target"] (COCOA also _set),    explain.label_free_importance ("label_free");
      layers[key_added] (only with store_cells=True)
    uns[key_added]                                    explain.counterfactual_attribution ("dac"),
                                                       explain.module_faithfulness ("faithfulness"),
                                                       explain.stability ("stability")

Everything with one entry per cell lives in ``obs`` / ``obsm``, so that ``adata[mask]`` subsets it with
the cells; ``uns`` holds only per-locality, per-pair, per-module and scalar entries. A cell's coverage
(how many localities contain it) is the row sum of ``obsm[f"{key}_localities"]``.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_KEY = "lava"
#: default ``key_added`` of explain.counterfactual_attribution and explain.module_faithfulness (uns[key_added])
DAC_KEY = "dac"
FAITHFULNESS_KEY = "faithfulness"
#: default ``key_added`` of explain.stability (uns[key_added])
STABILITY_KEY = "stability"


@dataclass(frozen=True)
class Keys:
    """Names of everything stored under one ``key``."""

    key: str = DEFAULT_KEY

    @property
    def uns(self) -> str:
        return self.key

    @property
    def obsm_localities(self) -> str:
        return f"{self.key}_localities"

    @property
    def obsm_activity(self) -> str:
        return f"{self.key}_activity"

    @property
    def obs_in_degree(self) -> str:
        return f"{self.key}_in_degree"

    # entries inside uns[key]
    params = "params"
    probes = "probes"
    localities = "localities"
    genes = "genes"
    sketch = "sketch"
    pairs = "pairs"
    correlations = "correlations"
    modules = "modules"
    module_genes = "module_genes"
    locality_activity = "locality_activity"
    locality_support = "locality_support"
    enrichment = "enrichment"
    differential = "differential"
    locality_composition = "locality_composition"
    #: the summary columns of ``uns[key]["locality_composition"]["table"]`` (the per-group fractions
    #: are stored apart, in ``"fractions"``)
    composition_summary = ("n_labelled", "purity", "entropy", "n_groups_present", "dominant")


#: what a new run of each step makes stale under its own ``key``: the ``uns[key]`` entries removed, and
#: the ``uns[key]["params"]`` records removed with them (a new ``tl.localities`` clears ``uns[key]``
#: entirely). Results under other keys that were computed from these carry provenance stamps instead
#: (:func:`lava_sc._params.stale_upstream`).
_FROM_MODULES = ("locality_composition", "enrichment", "differential")
INVALIDATES: dict[str, dict[str, tuple[str, ...]]] = {
    "localities": {"uns": ("*",), "params": ("*",), "obsm": ("activity",)},
    "correlations": {
        "uns": ("modules", "module_genes", "locality_activity", "locality_support", "module_stats", *_FROM_MODULES),
        "params": ("modules", "enrich", "differential"),
        "obsm": ("activity",),
    },
    "modules": {"uns": _FROM_MODULES, "params": ("enrich", "differential"), "obsm": ()},
}


def locality_names(n: int) -> list[str]:
    """Stable string ids for localities: ``L0``, ``L1``, ..."""
    return [f"L{i}" for i in range(n)]


def module_names(n: int) -> list[str]:
    """Stable string ids for modules: ``M1``, ``M2``, ..."""
    return [f"M{i + 1}" for i in range(n)]
