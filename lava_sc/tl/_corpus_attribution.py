from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData
from scanpy import logging as logg

from .._adata import cell_mask as any_cell_mask
from .._adata import dense_block, gene_positions
from .._core.attribution import (
    EPS,
    MAX_ELEMENTS,
    CallableEncoder,
    CorpusSimilarity,
    LinearEncoder,
    attribute,
    encode,
)
from .._core.distributed import is_dask
from .._core.gradients import METHODS
from .._keys import DEFAULT_KEY
from .._params import store_params
from .._utils import log_added, progress
from .._validate import (
    check_adata,
    check_choice,
    check_float,
    check_int,
    check_key,
    check_not_lava_slot,
    expression,
)

#: entries of ``uns[key_added]`` written by the attribution tools
GENES = "genes"
GROUPS = "groups"
COMPLETENESS = "completeness"
BASELINES = ("zero", "mean")
#: relative mismatch between ``obsm["X_pca"]`` and the PCA recomputed from the expression that triggers a warning
PCA_MISMATCH = 1e-2


def corpus_attribution(
    adata: AnnData,
    corpus,
    foil=None,
    *,
    encoder: str | Callable[[np.ndarray], np.ndarray] = "pca",
    method: str = "integrated_gradients",
    n_steps: int = 32,
    baseline: str | np.ndarray = "zero",
    cells=None,
    n_foil: int | None = None,
    genes=None,
    layer: str | None = None,
    key_added: str = "cocoa",
    store_cells: bool = False,
    random_state: int = 0,
    copy: bool = False,
) -> AnnData | None:
    """Contrastive corpus attribution (COCOA; Lin et al., ICLR 2023): which genes make cells look like a corpus.

    COCOA explains an unsupervised representation ``f`` (here a PCA, or any encoder you pass)
    relative to a *corpus* of cells (e.g. the cells where a LAVA module is active) and a *foil*
    (cells it is contrasted with). The explanation target of a cell ``x`` is its contrastive
    corpus similarity

    ``t(x) = mean_{c in corpus} cos(f(x), f(c)) - mean_{k in foil} cos(f(x), f(k))``,

    with the corpus and foil representations fixed. Each gene's attribution is its share of
    ``t(x) - t(baseline)`` by integrated gradients (or its gradient x input); positive values
    move a cell towards the corpus and away from the foil. The per-gene summary (mean over the
    explained cells) answers "which genes define this group in the representation", to set next
    to the gene–gene associations of a LAVA module.

    Parameters
    ----------
    adata
        Annotated data matrix (log-normalised expression; with ``encoder="pca"`` the result of
        ``sc.pp.pca(adata)``).
    corpus
        The corpus cells, one of

        * a boolean mask over cells (array or Series of length ``n_obs``), integer positions, or
          obs names;
        * the name of a boolean ``obs`` column, e.g. ``"active_typeB"``;
        * a tuple ``(obs_column, level)`` or ``(obs_column, [level, ...])``: the cells in those
          level(s), e.g. ``("cell_type", "PT")``;
        * a LAVA module's active region ``{"module": "M1", "key": "lava", "quantile": 0.9}``: the
          cells whose activity ``obsm[f"{key}_activity"][module]`` is above that quantile of the
          module's activity over all cells (``key`` defaults to ``"lava"``, ``quantile`` to 0.9).
    foil
        The cells the corpus is contrasted with, in any form accepted for ``corpus``; must not
        overlap the corpus. Default: **all cells not in the corpus** (deterministic; the paper
        draws a random foil set from the training data, which may include corpus-like samples —
        pass ``n_foil`` for a random subsample of the foil).
    encoder
        ``"pca"``: ``f(x) = (x - mean) @ varm["PCs"]`` as ``sc.pp.pca`` fits it (its gene means over
        all cells as centre when ``zero_center``; only the genes of its ``mask_var``, e.g.
        ``var["highly_variable"]``, are read, so only they are attributed). Gradients are exact
        (closed form through the cosine similarities) and cost about as much as one projection.
        A callable ``encoder(X) -> Z`` mapping a float64 ``cells x genes`` array (all
        ``adata.var_names``, in order) to ``cells x d``: gradients by central finite differences,
        **two encoder evaluations per explained cell, path step and attributed gene**
        (``2 * n_cells * n_steps * n_genes`` rows for integrated gradients, ``2 * n_cells * n_genes``
        for gradient x input); restrict ``cells`` and ``genes`` to keep that affordable.
    method
        ``"integrated_gradients"`` (straight path from ``baseline`` to ``x``, ``n_steps`` midpoint
        steps; attributions sum to ``t(x) - t(baseline)``) or ``"gradient_x_input"``
        (``(x - baseline) * grad t(x)``; no completeness).
    n_steps
        Riemann (midpoint) steps of integrated gradients.
    baseline
        The reference input: ``"zero"`` (no expression), ``"mean"`` (mean expression over all
        cells) or one value per gene. Cosine similarity is undefined at the zero representation,
        so a baseline that the encoder maps to (near) zero — ``"mean"`` with a centred PCA —
        cannot be used with integrated gradients (an error says so); with gradient x input it
        gives attributions that sum to 0 (the target is scale invariant in ``f(x)``).
    cells
        The cells to explain (mask, positions or obs names, or any form accepted for
        ``corpus``). Default: the corpus, as COCOA explains corpus members.
    n_foil
        Use a random subsample of this many foil cells (drawn with ``random_state``); ``None``
        uses the whole foil.
    genes
        Attribute only these genes (names or a boolean mask over ``var``). Default: the PCA's
        genes with ``encoder="pca"``, all genes with a callable. With integrated gradients the
        path still moves every gene from the baseline, so completeness holds over all genes, not
        over this subset.
    layer
        Layer with the expression; ``None`` uses ``X`` (or, with ``encoder="pca"``, the layer
        ``sc.pp.pca`` recorded in ``uns["pca"]["params"]``).
    key_added
        Where the results are written (must not hold LAVA results).
    store_cells
        Also store every explained cell's attributions in ``layers[key_added]``: a dense float32
        ``n_obs x n_vars`` array (4 bytes per cell and gene, e.g. 1.2 GB for 10,000 cells x
        30,000 genes), zero for cells not explained and genes not attributed.
    random_state
        Seed of the foil subsample (``n_foil``).
    copy
        Return a modified copy instead of writing into ``adata``.

    Returns
    -------
    ``None`` or the copy. Writes

    ``uns[key_added]["genes"]``
        DataFrame, one row per attributed gene sorted by rank: ``gene``, ``mean_attribution``
        (mean over the explained cells), ``mean_abs_attribution`` (mean of ``|attribution|``),
        ``rank`` (1 = largest mean attribution, i.e. the gene that most moves cells towards the
        corpus). Read it with :func:`lava_sc.get.attribution`.
    ``uns[key_added]["completeness"]``
        Means over explained cells of ``t(x)``, ``t(baseline)`` and the attribution sum, and the
        largest ``|sum - (t(x) - t(baseline))|`` (the integrated-gradients quadrature error when
        every gene is attributed).
    ``uns[key_added]["params"]["corpus_attribution"]``
        The options, the corpus / foil descriptions and their sizes.
    ``var[f"{key_added}_attribution"]``
        Mean attribution per gene (NaN for genes not attributed).
    ``obs[f"{key_added}_target"]``
        ``t(x)`` of the explained cells (NaN for the others).
    ``obs[f"{key_added}_set"]``
        Categorical: ``corpus``, ``foil`` or ``none``.
    ``layers[key_added]``
        With ``store_cells=True`` (see above).

    Examples
    --------
    >>> import scanpy as sc, lava_sc as lv
    >>> sc.pp.pca(adata)  # doctest: +SKIP
    >>> lv.tl.corpus_attribution(adata, ("cell_type", "PT"))  # doctest: +SKIP
    >>> lv.tl.corpus_attribution(adata, {"module": "M1"}, key_added="cocoa_M1")  # doctest: +SKIP
    >>> lv.get.attribution(adata, "cocoa_M1").head(10)  # doctest: +SKIP
    """
    check_adata(adata)
    key_added = check_key(key_added)
    check_not_lava_slot(adata, key_added)
    method = check_choice("method", method, METHODS)
    n_steps = check_int("n_steps", n_steps, low=1)
    random_state = check_int("random_state", random_state, low=0)
    store_cells = check_bool("store_cells", store_cells)

    corpus_mask, corpus_desc = cell_mask(adata, corpus, "corpus")
    if not corpus_mask.any():
        raise ValueError(
            f"The corpus ({corpus_desc}) is empty: no cell selected. Choose another group or a lower module quantile."
        )
    if foil is None:
        foil_mask, foil_desc = ~corpus_mask, "all cells not in the corpus"
    else:
        foil_mask, foil_desc = cell_mask(adata, foil, "foil")
        both = int((foil_mask & corpus_mask).sum())
        if both:
            raise ValueError(
                f"{both} cells are both in the corpus ({corpus_desc}) and in the foil ({foil_desc}); COCOA contrasts "
                "disjoint sets: remove them from the foil (e.g. foil = foil_mask & ~corpus_mask) or pass foil=None."
            )
    if not foil_mask.any():
        raise ValueError(
            f"The foil ({foil_desc}) is empty: COCOA needs cells to contrast the corpus with; pass `foil=` with "
            "at least one cell outside the corpus."
        )
    if n_foil is not None:
        n_foil = check_int("n_foil", n_foil, low=1)
        idx = np.flatnonzero(foil_mask)
        if n_foil < len(idx):
            keep = np.random.default_rng(random_state).choice(idx, size=n_foil, replace=False)
            foil_mask = np.zeros(adata.n_obs, dtype=bool)
            foil_mask[keep] = True
            foil_desc = f"{foil_desc} (random {n_foil})"
    if cells is None:
        explained_mask, cells_desc = corpus_mask, "the corpus"
    else:
        explained_mask, cells_desc = cell_mask(adata, cells, "cells")
        if not explained_mask.any():
            raise ValueError("`cells` selects no cell; pass a non-empty mask, positions or obs names.")

    setup = prepare(adata, encoder=encoder, baseline=baseline, layer=layer, genes=genes)
    corpus_z = represent(setup, np.flatnonzero(corpus_mask))
    foil_z = represent(setup, np.flatnonzero(foil_mask))
    target = CorpusSimilarity(corpus_z, foil_z)
    zb = setup.encoder(setup.baseline[None, :])[0]
    typical = float(np.median(np.linalg.norm(corpus_z, axis=1)))
    if method == "integrated_gradients" and np.linalg.norm(zb) <= max(EPS, 1e-6 * typical):
        raise ValueError(
            f"The baseline ({setup.baseline_desc!r}) maps to the zero representation, where cosine similarity "
            "(COCOA's target) is undefined and integrated gradients diverge (with encoder='pca' the 'mean' "
            "baseline is the PCA centre). Use baseline='zero' (or another baseline), or "
            "method='gradient_x_input'."
        )

    explained = np.flatnonzero(explained_mask)
    start = logg.info(
        f"COCOA attribution of {len(explained)} cells to {len(setup.genes)} genes "
        f"(corpus {int(corpus_mask.sum())} cells, foil {int(foil_mask.sum())} cells, {method})"
    )
    result = run_attribution(
        setup,
        explained,
        lambda X: (target, np.zeros(len(X), dtype=np.int64)),
        method=method,
        n_steps=n_steps,
        store_cells=store_cells,
    )

    adata = adata.copy() if copy else adata
    roles = np.full(adata.n_obs, "none", dtype=object)
    roles[foil_mask] = "foil"
    roles[corpus_mask] = "corpus"
    write_results(adata, key_added, setup, explained, result, store_cells=store_cells)
    adata.obs[f"{key_added}_set"] = pd.Categorical(roles, categories=["corpus", "foil", "none"])
    store_params(
        adata,
        key_added,
        "corpus_attribution",
        dict(
            corpus=corpus_desc,
            foil=foil_desc,
            cells=cells_desc,
            n_corpus=int(corpus_mask.sum()),
            n_foil=int(foil_mask.sum()),
            n_cells=len(explained),
            target="mean cosine similarity to corpus - mean cosine similarity to foil",
            random_state=random_state,
            **setup.params(method, n_steps),
        ),
    )
    log_added(
        f"COCOA attribution of {len(explained)} cells",
        start,
        added_lines(key_added, store_cells) + [f"'{key_added}_set', corpus / foil / none (adata.obs)"],
    )
    return adata if copy else None


# --------------------------------------------------------------------------------------------
# shared by corpus_attribution and label_free_importance


def check_bool(name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"`{name}` must be True or False, got {value!r}.")
    return bool(value)


def cell_mask(adata: AnnData, spec, what: str) -> tuple[np.ndarray, str]:
    """A boolean mask over cells and a short description: a module region dict, or any selection of
    :func:`lava_sc._adata.cell_mask`."""
    if isinstance(spec, Mapping):
        return module_region(adata, spec, what)
    return any_cell_mask(adata, spec, what)


def module_region(adata: AnnData, spec: Mapping, what: str) -> tuple[np.ndarray, str]:
    """Cells whose LAVA activity of ``spec["module"]`` is above the ``spec["quantile"]`` quantile."""
    from ..get._activity import activity

    unknown = set(spec) - {"module", "key", "quantile"}
    if "module" not in spec or unknown:
        raise TypeError(
            f"`{what}` as a dict must be {{'module': 'M1', 'key': 'lava', 'quantile': 0.9}} (key and quantile "
            f"optional); got keys {sorted(map(str, spec))}."
        )
    module = spec["module"]
    key = check_key(spec.get("key", DEFAULT_KEY))
    q = check_float("quantile", spec.get("quantile", 0.9), low=0.0, high=1.0)
    if q >= 1.0:
        raise ValueError("`quantile` of a module region must be below 1 (no cell is above the maximum).")
    frame = activity(adata, key)  # KeyError naming tl.modules when missing
    if module not in frame.columns:
        raise KeyError(f"`{what}`: unknown module {module!r} under key {key!r}; available: {list(frame.columns)}.")
    values = frame[module].to_numpy(dtype=np.float64)
    finite = np.isfinite(values)
    if not finite.any():
        raise ValueError(f"`{what}`: module {module!r} has no finite activity; choose another module.")
    threshold = float(np.quantile(values[finite], q))
    mask = finite & (values > threshold)
    return mask, f"module {module} (key {key!r}) activity > {threshold:.4g} (quantile {q:g})"


@dataclass
class Setup:
    """What both tools need: expression, encoder, baseline and the genes to attribute."""

    values: object
    encoder: LinearEncoder | CallableEncoder
    baseline: np.ndarray
    baseline_desc: str
    genes: np.ndarray
    var_names: pd.Index
    layer: str | None
    encoder_desc: str
    gene_note: str

    def params(self, method: str, n_steps: int) -> dict:
        return dict(
            encoder=self.encoder_desc,
            method=method,
            n_steps=n_steps,
            baseline=self.baseline_desc,
            layer=self.layer,
            n_genes=len(self.genes),
            genes=self.gene_note,
        )


def prepare(adata: AnnData, *, encoder, baseline, layer, genes) -> Setup:
    """Resolve the encoder (PCA from ``sc.pp.pca`` or a callable), the expression, the baseline and the genes."""
    pca_params = {}
    if isinstance(encoder, str):
        check_choice("encoder", encoder, ("pca",))
        if "PCs" not in adata.varm or "pca" not in adata.uns:
            raise KeyError(
                "encoder='pca' needs a PCA of adata (varm['PCs'] and uns['pca']); run sc.pp.pca(adata) first, "
                "or pass a callable `encoder=`."
            )
        pca_params = dict(adata.uns["pca"].get("params", {}))
        pca_layer = pca_params.get("layer")
        if layer is None and isinstance(pca_layer, str):
            logg.info(f"    using layer {pca_layer!r}, on which sc.pp.pca was run")
            layer = pca_layer
        elif isinstance(pca_layer, str) and layer != pca_layer:
            logg.warning(f"sc.pp.pca was run on layer {pca_layer!r} but the attribution reads layer {layer!r}.")
    elif not callable(encoder):
        raise TypeError(f"`encoder` must be 'pca' or a callable mapping cells x genes to cells x d, got {encoder!r}.")
    values = expression(adata, layer)
    n_vars = adata.n_vars

    if isinstance(encoder, str):
        enc, gene_note = pca_encoder(adata, values, pca_params)
        default_genes = enc.genes
        encoder_desc = "pca"
    else:
        enc = CallableEncoder(encoder, n_vars)
        gene_note = "all genes"
        default_genes = np.arange(n_vars)
        encoder_desc = f"callable {enc.name}"

    if genes is None:
        gene_idx = default_genes
    else:
        gene_idx = gene_positions(adata, genes)
        if isinstance(encoder, str):
            outside = np.setdiff1d(gene_idx, enc.genes)
            if len(outside):
                raise ValueError(
                    f"{len(outside)} gene(s) of `genes` are not in the PCA (e.g. "
                    f"{adata.var_names[outside[:5]].tolist()}), so their attribution would be 0; pass genes of "
                    f"the PCA ({gene_note})."
                )
        gene_note = f"{len(gene_idx)} genes given"

    if isinstance(baseline, str):
        check_choice("baseline", baseline, BASELINES)
        base = np.zeros(n_vars) if baseline == "zero" else column_means(values)
        baseline_desc = baseline
    else:
        base = np.asarray(baseline, dtype=np.float64).ravel()
        if base.shape != (n_vars,):
            raise ValueError(
                f"`baseline` must be 'zero', 'mean' or one value per gene ({n_vars}), got shape {base.shape}."
            )
        if not np.isfinite(base).all():
            raise ValueError("`baseline` contains NaN or inf; pass finite values.")
        baseline_desc = "per-gene values"
    return Setup(values, enc, base, baseline_desc, gene_idx, adata.var_names, layer, encoder_desc, gene_note)


def pca_encoder(adata: AnnData, values, params: Mapping) -> tuple[LinearEncoder, str]:
    """The linear encoder of ``sc.pp.pca``: its loadings, centre (gene means) and genes (``mask_var``)."""
    loadings = np.asarray(adata.varm["PCs"], dtype=np.float64)
    if loadings.ndim != 2 or loadings.shape[0] != adata.n_vars or not np.isfinite(loadings).all():
        raise ValueError("adata.varm['PCs'] must be a finite genes x components array; rerun sc.pp.pca(adata).")
    mask_var = params.get("mask_var", None)
    if isinstance(mask_var, str) and mask_var == "None":
        mask_var = None
    if mask_var is None and bool(params.get("use_highly_variable", False)):
        mask_var = "highly_variable"
    if isinstance(mask_var, str):
        if mask_var not in adata.var.columns:
            raise KeyError(
                f"sc.pp.pca was run with mask_var={mask_var!r} but adata.var has no such column; rerun sc.pp.pca(adata)."
            )
        mask = adata.var[mask_var].to_numpy(dtype=bool)
        note = f"the {int(mask.sum())} genes of var[{mask_var!r}] used by sc.pp.pca"
    elif mask_var is not None and np.shape(mask_var) == (adata.n_vars,):
        mask = np.asarray(mask_var, dtype=bool)
        note = f"the {int(mask.sum())} genes of the mask_var used by sc.pp.pca"
    else:
        mask = np.ones(adata.n_vars, dtype=bool)
        note = "all genes"
    genes = np.flatnonzero(mask)
    if len(genes) == 0:
        raise ValueError("The PCA of adata uses no gene (empty mask_var); rerun sc.pp.pca(adata).")
    zero_center = bool(params.get("zero_center", True))
    centre = column_means(values, genes) if zero_center else np.zeros(len(genes))
    enc = LinearEncoder(loadings[genes], centre, genes, adata.n_vars)
    check_pca(adata, values, enc)
    return enc, note


def check_pca(adata: AnnData, values, enc: LinearEncoder) -> None:
    """Warn when ``obsm["X_pca"]`` is not reproduced from the expression (other layer, scaled data, subset)."""
    stored = adata.obsm.get("X_pca")
    if stored is None or np.shape(stored) != (adata.n_obs, enc.n_components):
        return
    idx = np.arange(min(200, adata.n_obs))
    ours = enc(dense_block(values, idx))
    ref = np.asarray(stored[idx], dtype=np.float64)
    gap = float(np.abs(ours - ref).max()) / max(float(np.abs(ref).max()), EPS)
    if gap > PCA_MISMATCH:
        logg.warning(
            f"obsm['X_pca'] differs from the PCA projection of the expression read here (relative gap {gap:.2g}): "
            "was sc.pp.pca run on another layer or on scaled data (sc.pp.scale), or was adata subset after it? "
            "Attributions explain the projection of the expression passed (`layer=`); rerun sc.pp.pca on it."
        )


def column_means(values, cols: np.ndarray | None = None) -> np.ndarray:
    """Mean of each column (``cols`` of them) over all cells, in float64."""
    return column_sums(values, cols) / values.shape[0]


def column_sums(values, cols: np.ndarray | None = None) -> np.ndarray:
    if is_dask(values):  # one row block in memory at a time (blocks may be dense or sparse)
        bounds = np.cumsum((0, *values.chunks[0]))
        return sum(
            (column_sums(values[a:b].compute(), cols) for a, b in zip(bounds[:-1], bounds[1:], strict=True)),
            start=np.zeros(values.shape[1] if cols is None else len(cols)),
        )
    if sp.issparse(values):  # scipy's sum(dtype=float64) accumulates float32 data in float32
        sub = sp.csr_matrix(values if cols is None else values[:, np.asarray(cols)])
        return np.bincount(sub.indices, weights=sub.data.astype(np.float64), minlength=sub.shape[1])
    sub = np.asarray(values) if cols is None else np.asarray(values)[:, np.asarray(cols)]
    return sub.sum(axis=0, dtype=np.float64)


def chunk_size(setup: Setup, method: str, n_steps: int) -> int:
    """Cells per chunk so that the dense rows (and, for callables, the path points) stay small."""
    per_cell = setup.values.shape[1]
    if not setup.encoder.linear and method == "integrated_gradients":
        per_cell *= 2
    return max(1, MAX_ELEMENTS // per_cell)


def represent(setup: Setup, idx: np.ndarray) -> np.ndarray:
    """Representations ``f(x)`` of the cells ``idx``."""
    size = chunk_size(setup, "gradient_x_input", 1)
    parts = [encode(setup.encoder, dense_block(setup.values, idx[s : s + size])) for s in range(0, len(idx), size)]
    return np.vstack(parts)


@dataclass
class Result:
    total: np.ndarray  # per attributed gene, sum over explained cells
    total_abs: np.ndarray
    target_x: np.ndarray  # per explained cell
    target_b: np.ndarray
    sums: np.ndarray  # per explained cell, sum of its attributions
    cells: np.ndarray | None  # explained cells x attributed genes (float32), with store_cells
    group_total: np.ndarray | None  # groups x attributed genes


def run_attribution(
    setup: Setup,
    explained: np.ndarray,
    target_for,
    *,
    method: str,
    n_steps: int,
    store_cells: bool,
    group_codes: np.ndarray | None = None,
    n_groups: int = 0,
) -> Result:
    """Attribute the explained cells in chunks; ``target_for(X)`` gives each chunk's target and its rows."""
    g = len(setup.genes)
    total, total_abs = np.zeros(g), np.zeros(g)
    target_x, target_b, sums = (np.empty(len(explained)) for _ in range(3))
    cells = np.empty((len(explained), g), dtype=np.float32) if store_cells else None
    group_total = np.zeros((n_groups, g)) if group_codes is not None else None
    size = chunk_size(setup, method, n_steps)
    with progress(len(explained), "attribution") as bar:
        for s in range(0, len(explained), size):
            sl = slice(s, min(len(explained), s + size))
            X = dense_block(setup.values, explained[sl])
            target, rows = target_for(X)
            attr, t_x, t_b = attribute(
                setup.encoder, target, X, setup.baseline, rows, setup.genes, method=method, n_steps=n_steps
            )
            total += attr.sum(axis=0)
            total_abs += np.abs(attr).sum(axis=0)
            target_x[sl], target_b[sl], sums[sl] = t_x, t_b, attr.sum(axis=1)
            if cells is not None:
                cells[sl] = attr
            if group_total is not None:
                codes = group_codes[sl]
                ok = codes >= 0
                np.add.at(group_total, codes[ok], attr[ok])
            bar.update(sl.stop - sl.start)
    return Result(total, total_abs, target_x, target_b, sums, cells, group_total)


def gene_table(names: np.ndarray, mean: np.ndarray, mean_abs: np.ndarray) -> pd.DataFrame:
    """``gene, mean_attribution, mean_abs_attribution, rank`` sorted by rank (1 = largest mean attribution)."""
    order = np.argsort(-mean, kind="stable")
    rank = np.empty(len(mean), dtype=np.int64)
    rank[order] = np.arange(1, len(mean) + 1)
    table = pd.DataFrame(
        {"gene": np.asarray(names, dtype=str), "mean_attribution": mean, "mean_abs_attribution": mean_abs, "rank": rank}
    )
    return table.iloc[order].reset_index(drop=True)


def write_results(
    adata: AnnData, key_added: str, setup: Setup, explained: np.ndarray, result: Result, *, store_cells: bool
) -> None:
    n = len(explained)
    names = setup.var_names[setup.genes].to_numpy(dtype=str)
    mean = result.total / n
    gap = result.sums - (result.target_x - result.target_b)
    adata.uns[key_added] = {
        GENES: gene_table(names, mean, result.total_abs / n),
        COMPLETENESS: {
            "mean_target": float(result.target_x.mean()),
            "mean_target_baseline": float(result.target_b.mean()),
            "mean_attribution_sum": float(result.sums.mean()),
            "max_abs_gap": float(np.abs(gap).max()),
        },
    }
    column = np.full(adata.n_vars, np.nan)
    column[setup.genes] = mean
    adata.var[f"{key_added}_attribution"] = column
    target = np.full(adata.n_obs, np.nan)
    target[explained] = result.target_x
    adata.obs[f"{key_added}_target"] = target
    if store_cells:
        layer = np.zeros((adata.n_obs, adata.n_vars), dtype=np.float32)
        layer[np.ix_(explained, setup.genes)] = result.cells
        adata.layers[key_added] = layer


def added_lines(key_added: str, store_cells: bool) -> list[str]:
    lines = [
        f"'{key_added}': 'genes', 'completeness', 'params' (adata.uns)",
        f"'{key_added}_attribution', mean attribution per gene (adata.var)",
        f"'{key_added}_target', explanation target of the explained cells (adata.obs)",
    ]
    if store_cells:
        lines.append(f"'{key_added}', attributions per cell and gene (adata.layers)")
    return lines
