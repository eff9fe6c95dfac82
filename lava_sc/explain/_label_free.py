"""``explain.label_free_importance``: label-free feature importance of a representation
(Crabbé & van der Schaar, 2022)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
import pandas as pd
from anndata import AnnData

from .. import _logging as logg
from .._adata import writable
from .._core.attribution import SelfInnerProduct
from .._core.gradients import METHODS, Method
from .._docs import doc
from .._params import store_params
from .._utils import log_added
from .._validate import check_adata, check_bool, check_choice, check_int, check_key, check_not_lava_slot
from ._attribute import GROUPS, added_lines, run_attribution, write_results
from ._encoder import prepare


@doc()
def label_free_importance(
    adata: AnnData,
    *,
    encoder: Literal["pca"] | Callable[[np.ndarray], np.ndarray] = "pca",
    method: Method = "integrated_gradients",
    n_steps: int = 32,
    baseline: Literal["zero", "mean"] | np.ndarray = "zero",
    groupby: str | None = None,
    genes=None,
    layer: str | None = None,
    key_added: str = "label_free",
    store_cells: bool = False,
    copy: bool = False,
) -> AnnData | None:
    """Label-free feature importance (Crabbé & van der Schaar, ICML 2022) of every cell's representation.

    Explains an unsupervised representation ``f`` (a PCA, or any encoder you pass) without labels:
    the attribution target of cell ``x`` is the inner product of its (fixed) representation with
    the representation of the input, ``g_x(x~) = <f(x), f(x~)>``, evaluated at ``x~ = x``. A gene's
    label-free importance for ``x`` is its attribution of ``g_x`` (integrated gradients or gradient
    x input); by completeness they sum to ``<f(x), f(x) - f(baseline)>``. Per-gene means over all
    cells (and per group with ``groupby``) say which genes the representation is built on, for
    comparison with LAVA's locally associated genes.

    With ``encoder="pca"`` (``f(x) = (x - mean) @ varm["PCs"]``) the gradient is constant,
    ``W f(x)``, so integrated gradients and gradient x input coincide and are exact:
    ``attribution_i = (x_i - baseline_i) (W f(x))_i``.

    Parameters
    ----------
    {adata_encoder}
    encoder
        ``"pca"`` (the PCA of ``sc.pp.pca``: its gene means as centre when ``zero_center``, only the
        genes of its ``mask_var`` — e.g. ``var["highly_variable"]`` — attributed) or a callable
        ``encoder(X) -> Z`` mapping a float64 ``cells x genes`` array (all ``adata.var_names``) to
        ``cells x d``, differentiated by central finite differences: **two encoder evaluations per
        cell, path step and attributed gene** (``2 * n_obs * n_steps * n_genes`` rows for
        integrated gradients); restrict ``genes`` (or subset ``adata``) to keep that affordable.
    method
        ``"integrated_gradients"`` (``n_steps`` midpoint steps from ``baseline``) or
        ``"gradient_x_input"``.
    n_steps
        Riemann (midpoint) steps of integrated gradients.
    baseline
        ``"zero"`` (no expression), ``"mean"`` (mean expression over all cells; for a centred PCA
        this makes the attributions of a cell sum to ``|f(x)|^2``) or one value per gene.
    groupby
        Column of ``adata.obs``; adds the mean attribution of each gene in each group.
    genes
        Attribute only these genes (names or a boolean mask over ``var``). Default: the PCA's
        genes with ``encoder="pca"``, all genes with a callable.
    layer
        Layer with the expression; ``None`` uses ``X`` (or, with ``encoder="pca"``, the layer
        ``sc.pp.pca`` recorded in ``uns["pca"]["params"]``).
    key_added
        Where the results are written (must not hold LAVA results).
    store_cells
        Also store every cell's attributions in ``layers[key_added]``: a dense float32
        ``n_obs x n_vars`` array (4 bytes per cell and gene), zero for genes not attributed.
    {copy}

    Returns
    -------
    ``None`` or the copy. Writes

    ``uns[key_added]["genes"]``
        DataFrame sorted by rank: ``gene``, ``mean_attribution`` (over all cells),
        ``mean_abs_attribution``, ``rank`` (1 = largest mean attribution). Read it with
        :func:`lava_sc.get.attribution`.
    ``uns[key_added]["groups"]``
        With ``groupby``: DataFrame groups x attributed genes, the mean attribution in each group
        (``lava_sc.get.attribution(adata, key_added, level="groups")``).
    ``uns[key_added]["completeness"]``, ``uns[key_added]["params"]["label_free_importance"]``
        As for :func:`lava_sc.explain.corpus_attribution` (the target is ``<f(x), f(x~)>``).
    ``var[f"{key_added}_attribution"]``
        Mean attribution per gene (NaN for genes not attributed).
    ``obs[f"{key_added}_target"]``
        ``g_x(x) = |f(x)|^2`` of every cell.
    ``layers[key_added]``
        With ``store_cells=True``.

    Examples
    --------
    >>> import scanpy as sc, lava_sc as lv
    >>> sc.pp.pca(adata)  # doctest: +SKIP
    >>> lv.explain.label_free_importance(adata, groupby="cell_type")  # doctest: +SKIP
    >>> lv.get.attribution(adata, "label_free", level="groups")  # doctest: +SKIP
    """
    check_adata(adata)
    key_added = check_key(key_added)
    check_not_lava_slot(adata, key_added)
    method = check_choice("method", method, METHODS)
    n_steps = check_int("n_steps", n_steps, low=1)
    store_cells = check_bool("store_cells", store_cells)
    codes, levels = None, []
    if groupby is not None:
        if not isinstance(groupby, str) or groupby not in adata.obs.columns:
            raise KeyError(
                f"`groupby` {groupby!r} is not a column of adata.obs (available: {list(adata.obs.columns)})."
            )
        labels = adata.obs[groupby]
        cat = labels if isinstance(labels.dtype, pd.CategoricalDtype) else labels.astype("category")
        cat = cat.cat.remove_unused_categories()
        codes = cat.cat.codes.to_numpy(dtype=np.int64)
        levels = [str(c) for c in cat.cat.categories]
        if not levels:
            raise ValueError(f"adata.obs[{groupby!r}] has no non-missing value; pass another `groupby`.")

    setup = prepare(adata, encoder=encoder, baseline=baseline, layer=layer, genes=genes)
    explained = np.arange(adata.n_obs)
    start = logg.info(f"label-free importance of {len(explained)} cells for {len(setup.genes)} genes ({method})")

    def target_for(X):
        return SelfInnerProduct(setup.encoder(X)), np.arange(len(X))

    result = run_attribution(
        setup,
        explained,
        target_for,
        method=method,
        n_steps=n_steps,
        store_cells=store_cells,
        group_codes=codes,
        n_groups=len(levels),
    )

    adata = writable(adata, copy)
    write_results(adata, key_added, setup, explained, result, store_cells=store_cells)
    added = added_lines(key_added, store_cells)
    if codes is not None:
        counts = np.bincount(codes[codes >= 0], minlength=len(levels)).astype(np.float64)
        names = setup.var_names[setup.genes].to_numpy(dtype=str)
        table = pd.DataFrame(result.group_total / counts[:, None], index=pd.Index(levels, name=groupby), columns=names)
        adata.uns[key_added][GROUPS] = table
        added[0] = f"'{key_added}': 'genes', 'groups', 'completeness', 'params' (adata.uns)"
    store_params(
        adata,
        key_added,
        "label_free_importance",
        dict(
            groupby=groupby,
            n_cells=len(explained),
            target="<f(x), f(x~)> with f(x) fixed (label-free)",
            **setup.params(method, n_steps),
        ),
    )
    log_added(f"label-free importance of {len(explained)} cells", start, added)
    return adata if copy else None
