"""``explain.counterfactual_attribution``: discriminative attribution from counterfactuals (DAC;
Eckstein et al. 2021), and the classifier with matched counterfactual pairs it shares with
``explain.module_faithfulness``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from anndata import AnnData

from .. import _logging as logg
from .._adata import cell_mask, dense_block, gene_positions, highly_variable, writable
from .._core import counterfactual as cf
from .._core.gradients import METHODS, Method
from .._docs import doc
from .._keys import DAC_KEY
from .._params import store_params
from .._utils import log_added, positional_to_keywords, store
from .._validate import (
    check_adata,
    check_choice,
    check_float,
    check_int,
    check_key,
    check_not_lava_slot,
    check_obs_column,
    embedding,
    expression,
)

#: pairs whose predicted probabilities of group A differ by less than this are not used (unstable ratio)
MIN_DIFFERENCE = 0.1

#: held-out accuracy below which a warning says the classifier barely separates the groups
LOW_ACCURACY = 0.6

#: a gene's "top" count in the gene table: how often it is among this many most attributed genes
TOP_GENES = 10


@positional_to_keywords("group_a", "group_b")
@doc()
def counterfactual_attribution(
    adata: AnnData,
    groupby: str,
    *,
    group_a: str,
    group_b: str,
    layer: str | None = None,
    genes=None,
    C: float = 1.0,
    n_pcs: int = 30,
    method: Method = "integrated_gradients",
    target: cf.Target = "logit",
    n_steps: int = 32,
    n_masks: int = 20,
    cells=None,
    max_cells: int = 500,
    key_added: str = DAC_KEY,
    random_state: int = 0,
    copy: bool = False,
) -> AnnData | None:
    """Discriminative attribution from counterfactuals (DAC): which genes make a cell group A, not B.

    Following Eckstein et al. (2021, "Discriminative attribution from counterfactuals"):

    1. **Classifier.** An L2-regularised logistic regression (``C``) separates the cells of
       ``group_a`` (class 1) from those of ``group_b`` on standardised expression of ``genes``. Its
       held-out accuracy (stratified 5-fold cross-validation, fewer folds for tiny groups) is
       reported: attributions explain the classifier, and a classifier near 50 % explains noise.
    2. **Counterfactuals.** Each query cell of ``group_a`` (at most ``max_cells``, drawn with
       ``random_state``) is paired with its nearest cell of ``group_b`` in PCA space (the first
       ``n_pcs`` columns of ``obsm["X_pca"]``; without it a PCA of the standardised ``genes`` of the
       analysed cells is computed and the log says so) — a real, matched cell of the other group.
    3. **Attributions** against the counterfactual ``x'`` as baseline, of the classifier's logit for
       group A (``target="logit"``, default) or its probability (``target="probability"``):
       integrated gradients along the straight path from ``x'`` to the query ``x``
       (``method="integrated_gradients"``, ``n_steps`` midpoint steps) or ``(x - x') * gradient(x)``
       (``method="gradient_x_input"``). The logit is linear, so with it both methods are exact and
       equal: ``attribution_i = (x_i - x'_i) w_i`` (``w`` the weights on raw expression), summing to
       ``logit(x) - logit(x')``. With the probability every gene of a pair is scaled by one common
       factor, so the gene *ranking* of a cell (and the DAC curve) is the same for all choices.
    4. **DAC curve.** For mask sizes ``k`` (0, then ``n_masks`` sizes log-spaced from 1 gene to all
       genes) the mask is the cell's ``k`` most attributed genes (signed, so genes pushing towards
       A come first), the *hybrid* is the counterfactual with only those genes copied from the query,
       and the restored membership is ``(p_A(hybrid) - p_A(x')) / (p_A(x) - p_A(x'))`` (0 with the
       empty mask, 1 with the full mask; above 1 when the first genes overshoot the query). The
       curve is its mean over pairs against the mask fraction ``k / G``; the **DAC score** is the
       trapezoid area under it over [0, 1]. The same curve with a random ordering of the genes per
       cell is the baseline: a faithful attribution has ``dac_auc`` well above ``random_auc``.

    As in the paper, only pairs the classifier gets right are scored: ``p_A(x) > 0.5 > p_A(x')``,
    and ``p_A(x) - p_A(x') >= 0.1`` (the ratio is unstable for smaller differences). Query cells are
    cells the classifier was trained on (it explains the fitted model); with fewer cells than genes it
    can fit noise, so read ``classifier_accuracy`` (held-out) before the attributions.

    Parameters
    ----------
    adata
        Annotated data matrix (log-normalised expression in ``X`` or ``layer``).
    groupby
        Column of ``adata.obs`` with the groups (e.g. ``"condition"``).
    group_a, group_b
        The level explained (queries) and the level the counterfactuals come from.
    {layer}
    genes
        Genes the classifier uses (names or a boolean mask over ``var_names``). Default:
        ``var["highly_variable"]`` when present (and any is True), else all genes. Their
        expression in the analysed cells is held densely in memory.
    C
        Inverse L2 regularisation strength of the logistic regression (scikit-learn's ``C``).
    n_pcs
        Number of principal components in which counterfactuals are matched.
    method
        ``"integrated_gradients"`` or ``"gradient_x_input"``.
    target
        ``"logit"`` (default: integrated gradients exact) or ``"probability"`` of group A.
    n_steps
        Steps of the integrated-gradients path integral (exact for the logit whatever the number).
    n_masks
        Number of log-spaced mask sizes from 1 gene to all genes (fewer when ``G`` is small: sizes are
        distinct integers).
    cells
        Restrict the whole analysis (classifier, queries and counterfactuals) to these cells: a
        boolean mask over the cells, or obs names (e.g. ``adata.obs["cell_type"] == "T4"`` to
        compare two conditions within one cell type). ``None`` uses all cells.
    max_cells
        At most this many query cells of ``group_a`` (subsampled with ``random_state``).
    key_added
        Where the results go in ``uns``.
    random_state
        Seed for query subsampling, cross-validation folds, the PCA and the random masks.
    {copy}

    Returns
    -------
    ``None`` or the copy. Writes ``uns[key_added]`` with

    ``genes``
        DataFrame, one row per classifier gene, sorted by ``mean_attribution`` (descending):
        ``gene``, ``weight`` (logistic-regression coefficient on standardised expression),
        ``mean_attribution``, ``mean_abs_attribution`` (over the scored pairs) and ``top_fraction``
        (fraction of scored pairs in which the gene is among the 10 most attributed).
    ``curve``
        DataFrame ``mask_size, mask_fraction, restored_attribution, restored_random``.
    ``pairs``
        DataFrame, one row per query cell: ``query``, ``counterfactual`` (obs names), ``distance``
        (in PCA space), ``p_query``, ``p_counterfactual`` (probability of group A) and ``used``.
    ``dac_auc``, ``random_auc``
        Areas under the two curves.
    ``classifier_accuracy``
        Held-out (cross-validated) accuracy of the classifier; ``cv_folds`` its number of folds.
    ``n_pairs``
        Number of scored pairs.
    ``params``
        ``{"counterfactual_attribution": {...}}``.

    Read the tables with :func:`lava_sc.get.counterfactual`.

    Examples
    --------
    >>> import lava_sc as lv
    >>> lv.explain.counterfactual_attribution(adata, "condition", group_a="disease", group_b="control")  # doctest: +SKIP
    >>> lv.get.counterfactual(adata).head()  # doctest: +SKIP
    """
    check_adata(adata)
    key_added = check_key(key_added)
    method = check_choice("method", method, METHODS)
    target = check_choice("target", target, cf.TARGETS)
    n_steps = check_int("n_steps", n_steps, low=1)
    n_masks = check_int("n_masks", n_masks, low=2)
    check_not_lava_slot(adata, key_added)
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
        tool="counterfactual_attribution",
    )
    adata = writable(adata, copy)
    start = logg.info(
        f"attributing {group_a!r} vs {group_b!r} ({groupby!r}) to {len(setup.genes)} genes in "
        f"{setup.n_used} counterfactual pairs"
    )
    x, x_cf = setup.x[setup.used], setup.x_cf[setup.used]
    attributions = cf.attribute(setup.model, x, x_cf, method=method, target=target, n_steps=n_steps)
    order = cf.attribution_order(attributions)
    sizes = cf.mask_sizes(len(setup.genes), n_masks)
    fraction = sizes / len(setup.genes)
    attr_curve = cf.mask_curve(setup.model, x, x_cf, order, sizes).mean(axis=0)
    rng = np.random.default_rng([random_state, 1])
    random_curve = cf.mask_curve(setup.model, x, x_cf, cf.random_orders(len(x), len(setup.genes), rng), sizes)
    random_curve = random_curve.mean(axis=0)

    top = np.zeros(len(setup.genes))
    np.add.at(top, order[:, : min(TOP_GENES, len(setup.genes))].ravel(), 1.0)
    gene_table = pd.DataFrame(
        {
            "gene": np.asarray(setup.genes, dtype=str).astype(object),
            "weight": setup.model.coef,
            "mean_attribution": attributions.mean(axis=0),
            "mean_abs_attribution": np.abs(attributions).mean(axis=0),
            "top_fraction": top / len(x),
        }
    )
    gene_table = gene_table.sort_values("mean_attribution", ascending=False, kind="stable").reset_index(drop=True)
    curve = pd.DataFrame(
        {
            "mask_size": sizes.astype(np.int64),
            "mask_fraction": fraction,
            "restored_attribution": attr_curve,
            "restored_random": random_curve,
        }
    )
    dac_auc = cf.area_under_curve(fraction, attr_curve)
    random_auc = cf.area_under_curve(fraction, random_curve)
    store(
        adata,
        key_added,
        genes=gene_table,
        curve=curve,
        pairs=setup.pairs_table(),
        dac_auc=dac_auc,
        random_auc=random_auc,
        classifier_accuracy=setup.accuracy,
        cv_folds=setup.folds,
        n_pairs=setup.n_used,
    )
    store_params(
        adata,
        key_added,
        "counterfactual_attribution",
        dict(
            setup.params,
            method=method,
            target=target,
            n_steps=n_steps,
            n_masks=n_masks,
        ),
    )
    log_added(
        f"DAC score {dac_auc:.3f} (random masks {random_auc:.3f}; classifier accuracy {setup.accuracy:.2f})",
        start,
        [f"'{key_added}': 'genes', 'curve', 'pairs', 'dac_auc', 'random_auc', 'classifier_accuracy' (adata.uns)"],
    )
    return adata if copy else None


@dataclass
class Setup:
    """Classifier, query cells and their counterfactuals, shared by the counterfactual tools."""

    genes: np.ndarray
    model: cf.LinearClassifier
    accuracy: float
    folds: int
    query_names: np.ndarray
    cf_names: np.ndarray
    distance: np.ndarray
    x: np.ndarray
    x_cf: np.ndarray
    p_query: np.ndarray
    p_cf: np.ndarray
    used: np.ndarray
    params: dict

    @property
    def n_used(self) -> int:
        return int(self.used.sum())

    def pairs_table(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "query": self.query_names.astype(str).astype(object),
                "counterfactual": self.cf_names.astype(str).astype(object),
                "distance": self.distance,
                "p_query": self.p_query,
                "p_counterfactual": self.p_cf,
                "used": self.used,
            }
        )


def prepare(
    adata: AnnData,
    groupby: str,
    group_a,
    group_b,
    *,
    layer,
    genes,
    cells,
    C,
    n_pcs,
    max_cells,
    random_state,
    tool: str,
) -> Setup:
    """Validate, fit the classifier and pair each query cell of group A with its nearest cell of group B."""
    C = check_float("C", C, low=0.0, open_low=True)
    n_pcs = check_int("n_pcs", n_pcs, low=1)
    max_cells = check_int("max_cells", max_cells, low=1)
    random_state = check_int("random_state", random_state, low=0)
    if not adata.var_names.is_unique:
        raise ValueError("adata.var_names has duplicates; run adata.var_names_make_unique() first.")
    group_a, group_b, in_a, in_b = _groups(adata, groupby, group_a, group_b, cell_mask(adata, cells)[0])
    gene_idx = _gene_index(adata, genes)
    values = expression(adata, layer)
    rows_a, rows_b = np.flatnonzero(in_a), np.flatnonzero(in_b)
    rows = np.r_[rows_a, rows_b]
    x_all = dense_block(values, rows, gene_idx)
    y = np.r_[np.ones(len(rows_a), dtype=np.int64), np.zeros(len(rows_b), dtype=np.int64)]

    model = cf.fit_classifier(x_all, y, C=C, random_state=random_state)
    accuracy, folds = cf.heldout_accuracy(x_all, y, C=C, random_state=random_state)
    if accuracy < LOW_ACCURACY:
        logg.warning(
            f"{tool}: the classifier separates {group_a!r} from {group_b!r} with held-out accuracy {accuracy:.2f} "
            "only; its attributions explain little more than noise. Differences carried by gene-gene correlation "
            "rather than mean expression are invisible to a linear classifier."
        )

    coords, pca_source = _pca_coordinates(adata, rows, x_all, model, n_pcs, random_state)
    rng = np.random.default_rng([random_state, 0])
    pick = np.arange(len(rows_a))
    if len(pick) > max_cells:
        pick = np.sort(rng.choice(len(rows_a), size=max_cells, replace=False))
    nearest, distance = cf.nearest_counterfactuals(coords[pick], coords[len(rows_a) :])
    x = x_all[pick]
    x_cf = x_all[len(rows_a) + nearest]
    p_query, p_cf = model.proba(x), model.proba(x_cf)
    used = (p_query > 0.5) & (p_cf < 0.5) & (p_query - p_cf >= MIN_DIFFERENCE)
    if not used.any():
        raise ValueError(
            f"The classifier calls none of the {len(pick)} query cells {group_a!r} with its counterfactual "
            f"{group_b!r} (held-out accuracy {accuracy:.2f}), so there is nothing to attribute. The groups may not "
            "differ in mean expression of these genes; try more `genes`, a larger `C`, or other groups."
        )
    names = adata.obs_names.to_numpy()
    return Setup(
        genes=adata.var_names.to_numpy()[gene_idx].astype(str),
        model=model,
        accuracy=float(accuracy),
        folds=int(folds),
        query_names=names[rows_a[pick]],
        cf_names=names[rows_b[nearest]],
        distance=distance,
        x=x,
        x_cf=x_cf,
        p_query=p_query,
        p_cf=p_cf,
        used=used,
        params=dict(
            groupby=groupby,
            group_a=group_a,
            group_b=group_b,
            layer=layer,
            n_genes=len(gene_idx),
            C=C,
            n_pcs=n_pcs,
            pca=pca_source,
            n_cells_a=len(rows_a),
            n_cells_b=len(rows_b),
            max_cells=max_cells,
            n_queries=len(pick),
            random_state=random_state,
        ),
    )


def _groups(adata: AnnData, groupby, group_a, group_b, mask: np.ndarray):
    """The two levels as strings and boolean masks of their cells (within ``mask``)."""
    check_obs_column(adata, groupby, "groupby")
    labels = adata.obs[groupby].astype(str).to_numpy()
    labels = np.where(adata.obs[groupby].isna().to_numpy(), None, labels)
    levels = sorted({v for v in labels if v is not None})
    group_a, group_b = str(group_a), str(group_b)
    for name, group in (("group_a", group_a), ("group_b", group_b)):
        if group not in levels:
            raise ValueError(
                f"`{name}` {group!r} is not a level of obs[{groupby!r}] (levels: {levels}); pass one of them."
            )
    if group_a == group_b:
        raise ValueError(f"`group_a` and `group_b` must differ, both are {group_a!r}.")
    in_a, in_b = mask & (labels == group_a), mask & (labels == group_b)
    for group, members in ((group_a, in_a), (group_b, in_b)):
        if members.sum() < 2:
            where = "" if mask.all() else " among `cells`"
            raise ValueError(
                f"Group {group!r} of obs[{groupby!r}] has {int(members.sum())} cell(s){where}; the classifier and "
                "its held-out accuracy need at least 2 cells per group. Choose larger groups."
            )
    return group_a, group_b, in_a, in_b


def _gene_index(adata: AnnData, genes) -> np.ndarray:
    """Positions of the classifier's genes in ``var_names`` (default: highly variable, else all)."""
    if genes is None:
        hv = highly_variable(adata)
        return np.arange(adata.n_vars) if hv is None else hv
    return gene_positions(adata, genes, min_genes=2, purpose="the classifier")


def _pca_coordinates(adata: AnnData, rows, x_all, model, n_pcs: int, random_state: int):
    """Cells' coordinates for matching: ``obsm["X_pca"][:, :n_pcs]``, else a PCA computed here."""
    if "X_pca" in adata.obsm:
        coords = embedding(adata, "X_pca")
        if coords.shape[1] < n_pcs:
            logg.info(f"    obsm['X_pca'] has {coords.shape[1]} components (< n_pcs={n_pcs}); using all of them")
        return coords[rows, :n_pcs], f"obsm['X_pca'][:, :{min(n_pcs, coords.shape[1])}]"
    from sklearn.decomposition import PCA

    n_comp = int(min(n_pcs, x_all.shape[0] - 1, x_all.shape[1]))
    logg.info(
        f"    no obsm['X_pca']: matching counterfactuals in a PCA ({n_comp} components) of the standardised "
        "classifier genes computed here"
    )
    z = (x_all - model.mean) / model.scale
    coords = PCA(n_components=n_comp, random_state=random_state).fit_transform(z)
    return coords, f"computed ({n_comp} components of the standardised genes)"
