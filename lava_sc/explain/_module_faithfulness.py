"""``explain.module_faithfulness``: do LAVA's modules carry what a classifier between two groups
uses? Swap a module's genes between matched cells and compare with random gene sets."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from anndata import AnnData

from .. import _logging as logg
from .._adata import writable
from .._core import counterfactual as cf
from .._core.stats import benjamini_hochberg
from .._docs import doc
from .._keys import DEFAULT_KEY, FAITHFULNESS_KEY, Keys
from .._params import store_params
from .._utils import log_added, positional_to_keywords, store
from .._validate import check_adata, check_int, check_key, check_key_added_differs, check_not_lava_slot, require
from ._counterfactual import prepare

#: columns of ``uns[key_added]["modules"]``
COLUMNS = (
    "module",
    "n_genes",
    "n_genes_used",
    "restored",
    "random_mean",
    "random_sd",
    "random_median",
    "zscore",
    "pvalue",
    "qvalue",
)


@positional_to_keywords("group_a", "group_b")
@doc()
def module_faithfulness(
    adata: AnnData,
    groupby: str,
    *,
    group_a: str,
    group_b: str,
    key: str = DEFAULT_KEY,
    modules: str | Sequence[str] | None = None,
    n_random: int = 50,
    layer: str | None = None,
    C: float = 1.0,
    n_pcs: int = 30,
    cells=None,
    max_cells: int = 500,
    random_state: int = 0,
    key_added: str = FAITHFULNESS_KEY,
    copy: bool = False,
) -> AnnData | None:
    """How much of the difference between two groups each LAVA module carries, by counterfactual swaps.

    Uses the classifier and counterfactuals of :func:`~lava_sc.explain.counterfactual_attribution`: an
    L2-regularised logistic regression separates ``group_a`` from ``group_b`` on the genes LAVA
    tested (``uns[key]["genes"]``), and each query cell of ``group_a`` is paired with its nearest
    cell of ``group_b`` in PCA space. For each module its genes (``uns[key]["module_genes"]``, those
    the classifier uses) are copied from the query into the counterfactual, and the restored
    membership ``(p_A(hybrid) - p_A(x')) / (p_A(x) - p_A(x'))`` is averaged over the pairs (pairs the
    classifier gets right, as in ``counterfactual_attribution``). The same is done for ``n_random``
    random sets of the same size drawn from all classifier genes: a module that carries the group
    difference restores more than random gene sets of its size.

    A logistic regression sees differences in mean expression only. A module whose genes differ
    between the groups only in how they *correlate* (what LAVA detects) moves the classifier no
    more than random genes; a low restored value then says "no mean shift", not "no biology".
    Query cells are cells the classifier was trained on: with fewer cells than genes it can fit
    noise, and a module with coherent (correlated) variation may then restore more than random sets
    without any mean difference. Read ``classifier_accuracy`` (held-out) first: near 0.5, the
    classifier has learnt nothing that generalises and neither have its restored values.

    Parameters
    ----------
    adata
        Annotated data matrix with LAVA modules from :func:`lava_sc.tl.modules` under ``key``.
    groupby, group_a, group_b
        Column of ``adata.obs`` and its two levels compared (queries from ``group_a``).
    {key}
    modules
        Module name(s) to test; ``None`` tests all modules.
    n_random
        Number of random gene sets per module.
    {layer}
    C, n_pcs, cells, max_cells
        As in :func:`~lava_sc.explain.counterfactual_attribution` (``cells`` restricts the analysis, e.g.
        to one cell type).
    random_state
        Seed for query subsampling, cross-validation, the PCA and the random gene sets.
    key_added
        Where the results go in ``uns``; must differ from ``key``.
    {copy}

    Returns
    -------
    ``None`` or the copy. Writes ``uns[key_added]`` with ``modules``, a DataFrame with one row per
    module: ``module``, ``n_genes`` (in the module), ``n_genes_used`` (of those, in the classifier),
    ``restored`` (mean restored membership), ``random_mean``, ``random_sd``, ``random_median`` (over
    the random sets), ``zscore`` (``(restored - random_mean) / random_sd``), ``pvalue``
    (``(1 + #random >= restored) / (1 + n_random)``) and ``qvalue`` (Benjamini–Hochberg over modules);
    NaN for a module with no gene in the classifier. Also ``pairs`` (as in
    ``counterfactual_attribution``), ``classifier_accuracy`` (held-out), ``cv_folds``, ``n_pairs``
    and ``params``. Read the table with :func:`lava_sc.get.faithfulness`.

    Examples
    --------
    >>> import lava_sc as lv
    >>> lv.tl.modules(adata)  # doctest: +SKIP
    >>> lv.explain.module_faithfulness(adata, "condition", group_a="disease", group_b="control")  # doctest: +SKIP
    >>> lv.get.faithfulness(adata)  # doctest: +SKIP
    """
    check_adata(adata)
    key = check_key(key)
    key_added = check_key(key_added)
    check_key_added_differs(key_added, key, "the LAVA results", "faithfulness")
    n_random = check_int("n_random", n_random, low=1)
    check_not_lava_slot(adata, key_added)
    require(adata, key, Keys.module_genes, "modules")
    table = adata.uns[key][Keys.module_genes]
    names = _module_names(table, modules)
    genes = _lava_genes(adata, key)
    setup = prepare(
        adata,
        groupby,
        group_a,
        group_b,
        layer=layer,
        genes=genes,
        cells=cells,
        C=C,
        n_pcs=n_pcs,
        max_cells=max_cells,
        random_state=random_state,
        tool="module_faithfulness",
    )
    adata = writable(adata, copy)
    start = logg.info(f"testing {len(names)} LAVA modules on {setup.n_used} counterfactual pairs")
    x, x_cf = setup.x[setup.used], setup.x_cf[setup.used]
    position = pd.Index(setup.genes)
    n_genes = len(setup.genes)
    rng = np.random.default_rng([random_state, 2])
    rows = []
    for name in names:
        members = table.loc[table["module"].astype(str) == name, "gene"].astype(str).unique()
        idx = position.get_indexer(members)
        idx = idx[idx >= 0]
        row = {"module": name, "n_genes": len(members), "n_genes_used": len(idx)}
        if len(idx) == 0:
            rows.append(row | dict.fromkeys(COLUMNS[3:], np.nan))
            continue
        sets = np.zeros((n_genes, n_random + 1), dtype=bool)
        sets[idx, 0] = True
        for j in range(n_random):
            sets[rng.choice(n_genes, size=len(idx), replace=False), j + 1] = True
        values = cf.set_restored(setup.model, x, x_cf, sets).mean(axis=0)
        observed, null = values[0], values[1:]
        sd = float(null.std(ddof=1)) if n_random > 1 else np.nan
        rows.append(
            row
            | {
                "restored": float(observed),
                "random_mean": float(null.mean()),
                "random_sd": sd,
                "random_median": float(np.median(null)),
                "zscore": float((observed - null.mean()) / sd) if sd > 0 else np.nan,
                "pvalue": (1.0 + float((null >= observed).sum())) / (1.0 + n_random),
            }
        )
    result = pd.DataFrame(rows, columns=[c for c in COLUMNS if c != "qvalue"])
    result["qvalue"] = benjamini_hochberg(result["pvalue"].to_numpy())
    result["module"] = result["module"].astype(str).astype(object)
    result[["n_genes", "n_genes_used"]] = result[["n_genes", "n_genes_used"]].astype(np.int64)
    store(
        adata,
        key_added,
        modules=result,
        pairs=setup.pairs_table(),
        classifier_accuracy=setup.accuracy,
        cv_folds=setup.folds,
        n_pairs=setup.n_used,
    )
    store_params(
        adata,
        key_added,
        "module_faithfulness",
        dict(setup.params, key=key, modules=names, n_random=n_random),
    )
    log_added(
        f"faithfulness of {len(names)} modules (classifier accuracy {setup.accuracy:.2f})",
        start,
        [f"'{key_added}': 'modules', 'pairs', 'classifier_accuracy' (adata.uns)"],
    )
    return adata if copy else None


def _module_names(table: pd.DataFrame, modules) -> list[str]:
    available = pd.unique(table["module"].astype(str)).tolist()
    if not available:
        raise ValueError(
            "LAVA found no modules, so there is nothing to test; rerun lava_sc.tl.modules with a lower "
            "`min_support`/`min_genes` or a higher `resolution`."
        )
    if modules is None:
        return available
    if isinstance(modules, str):
        modules = [modules]
    if not isinstance(modules, (Sequence, np.ndarray, pd.Index)) or len(modules) == 0:
        raise TypeError(
            f"`modules` must be a module name such as 'M1', a non-empty list of names or None, got {modules!r}."
        )
    wanted = [str(m) for m in modules]
    unknown = [m for m in wanted if m not in available]
    if unknown:
        raise KeyError(f"Unknown module(s) {unknown}; available modules: {available}.")
    return list(dict.fromkeys(wanted))


def _lava_genes(adata: AnnData, key: str) -> np.ndarray | None:
    """The genes LAVA tested that are still in ``var_names`` (None: the classifier's default genes)."""
    tested = adata.uns[key].get(Keys.genes)
    if tested is None:
        return None
    tested = np.asarray(tested, dtype=object).astype(str)
    kept = tested[adata.var_names.get_indexer(tested) >= 0]
    return kept if len(kept) >= 2 else None
