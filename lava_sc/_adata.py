"""The one access layer between the tools and an AnnData: what they read from it and what a re-run clears.

Tools read ``validate -> fetch (here) -> lava_sc._core -> write``; nothing in ``_core`` sees an AnnData.
Here: gene selections, cell selections, expression blocks (dense, sparse or dask alike), covariates,
"compute the localities if missing", the nearest probe of each cell, and what a re-run clears. Input
checks that only look at an argument live in :mod:`lava_sc._validate`.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from . import _logging as logg
from ._core.distributed import column_summary, gather_columns, is_dask
from ._core.expression import column_variance as sparse_column_variance
from ._core.expression import gene_matrix
from ._core.knn import NeighbourIndex, float32_frame
from ._keys import INVALIDATES, Keys
from ._params import recorded
from ._validate import embedding


def writable(adata: AnnData, copy: bool) -> AnnData:
    """The AnnData a tool writes into: a copy with ``copy=True``; otherwise ``adata`` itself, a view
    (``adata[mask]``) first made an object of its own, as scanpy's tools do, so that anndata does not
    warn (ImplicitModificationWarning) at the first write. The parent of a view is never written."""
    if copy:
        return adata.copy()
    if adata.is_view:
        adata._init_as_actual(adata.copy())
    return adata


def invalidate(adata, key: str, step: str) -> None:
    """Remove what a new run of ``step`` makes stale under ``key`` (:data:`lava_sc._keys.INVALIDATES`)."""
    rule = INVALIDATES[step]
    keys = Keys(key)
    for name in rule["obsm"]:
        adata.obsm.pop(getattr(keys, f"obsm_{name}"), None)
    if rule["uns"] == ("*",):
        adata.uns[key] = {}
        return
    slot = adata.uns.setdefault(key, {})
    for name in rule["uns"]:
        slot.pop(name, None)
    params = slot.get(Keys.params)
    if params is not None:
        slot[Keys.params] = {stage: p for stage, p in params.items() if stage not in rule["params"]}


# --- genes ---------------------------------------------------------------------------------------


def gene_positions(adata: AnnData, genes, *, min_genes: int = 1, purpose: str = "") -> np.ndarray:
    """Sorted positions in ``var_names`` of an explicit gene selection: names (one or many) or a boolean mask.

    Raises a ``KeyError`` naming genes that are missing, a ``ValueError`` for a gene listed twice, a
    mask of the wrong length or fewer than ``min_genes`` genes (``purpose`` says what needs them).
    """
    values = np.asarray([genes] if isinstance(genes, str) else genes)
    if values.ndim != 1:
        raise ValueError(f"`genes` must be gene names or a boolean mask over the genes, got shape {values.shape}.")
    if values.dtype == bool:
        if values.shape != (adata.n_vars,):
            raise ValueError(
                f"`genes` as a boolean mask has {values.size} entries; it must have one per gene ({adata.n_vars})."
            )
        idx = np.flatnonzero(values)
    else:
        if values.dtype.kind in "iu":  # names, not positions: say so where the names look like numbers
            warnings.warn(
                "`genes` holds integers; they are read as gene names (var_names), not positions. To select by "
                "position pass adata.var_names[positions].",
                UserWarning,
                stacklevel=3,
            )
        names = pd.Index(values.astype(str))
        if names.has_duplicates:
            raise ValueError(
                f"`genes` lists some genes twice (e.g. {list(names[names.duplicated()][:5])}); pass each once."
            )
        idx = adata.var_names.get_indexer(names)
        if (idx < 0).any():
            missing = names[idx < 0]
            raise KeyError(
                f"{len(missing)} gene(s) of `genes` not in adata.var_names (e.g. {list(missing[:5])}); check the names."
            )
        idx = np.sort(idx)
    if len(idx) < min_genes:
        need = f"; {purpose} needs at least {min_genes}" if purpose else ""
        raise ValueError(f"`genes` selects {len(idx)} gene(s){need}.")
    return idx


def highly_variable(adata: AnnData, *, min_genes: int = 1) -> np.ndarray | None:
    """Positions of ``var["highly_variable"]`` genes, or None when the column is missing or selects too few."""
    column = adata.var.get("highly_variable")
    if column is None:
        return None
    mask = column.to_numpy().astype(bool)
    return np.flatnonzero(mask) if mask.sum() >= min_genes else None


# --- cells ---------------------------------------------------------------------------------------


def cell_mask(adata: AnnData, spec, what: str = "cells") -> tuple[np.ndarray, str]:
    """A boolean mask over the cells, and a short description, from any accepted cell selection.

    ``spec`` is None (all cells), a boolean mask or boolean Series (aligned on ``obs_names``), cell
    positions, obs names (one or many), the name of a boolean ``obs`` column, or a tuple
    ``(obs_column, level)`` / ``(obs_column, [levels])``. ``what`` names the argument in errors.
    """
    n = adata.n_obs
    if spec is None:
        return np.ones(n, dtype=bool), "all cells"
    if isinstance(spec, tuple):
        return _levels_mask(adata, spec, what)
    if isinstance(spec, str):
        if spec in adata.obs.columns:
            return _bool_column(adata, spec, what), f"obs[{spec!r}]"
        if spec in adata.obs_names:
            spec = [spec]
        else:
            raise KeyError(
                f"`{what}`: {spec!r} is not a column of adata.obs nor a cell name; pass a boolean obs column, "
                "a tuple (obs_column, level), obs names or a boolean mask."
            )
    if isinstance(spec, pd.Series) and spec.dtype == bool:
        aligned = spec.reindex(adata.obs_names)
        if aligned.isna().any():
            raise ValueError(f"`{what}` is a boolean Series whose index does not cover adata.obs_names.")
        return aligned.to_numpy(dtype=bool), "boolean Series"
    values = spec.to_numpy() if isinstance(spec, pd.Series | pd.Index) else np.asarray(spec)
    if values.ndim != 1:
        raise ValueError(
            f"`{what}` must be one-dimensional (a mask, positions or obs names), got shape {values.shape}."
        )
    if values.dtype == bool:
        if len(values) != n:
            raise ValueError(f"`{what}` as a boolean mask must have one entry per cell ({n}), got {len(values)}.")
        return values.copy(), "boolean mask"
    mask = np.zeros(n, dtype=bool)
    if values.dtype.kind in "iu":
        if len(values) and (values.min() < -n or values.max() >= n):
            raise IndexError(f"`{what}` has cell positions outside 0..{n - 1}.")
        mask[values] = True
        return mask, f"{len(np.unique(values % n))} cell positions"
    if values.dtype.kind in "OUS":
        idx = adata.obs_names.get_indexer(values.astype(str))
        if (idx < 0).any():
            missing = values[idx < 0][:5].tolist()
            raise KeyError(f"{int((idx < 0).sum())} of `{what}` are not obs names (e.g. {missing}).")
        mask[idx] = True
        return mask, f"{int(mask.sum())} named cells"
    raise TypeError(
        f"`{what}` must be a boolean mask, positions, obs names, a boolean obs column or a tuple (obs_column, level); "
        f"got {type(spec).__name__}."
    )


def _levels_mask(adata: AnnData, spec: tuple, what: str) -> tuple[np.ndarray, str]:
    if len(spec) != 2 or not isinstance(spec[0], str):
        raise TypeError(
            f"`{what}` as a tuple must be (obs_column, level) or (obs_column, [levels]), e.g. ('cell_type', 'PT'); "
            f"got {spec!r}."
        )
    column, levels = spec
    if column not in adata.obs.columns:
        raise KeyError(f"`{what}`: column {column!r} not in adata.obs (available: {list(adata.obs.columns)}).")
    levels = [levels] if isinstance(levels, str) or np.ndim(levels) == 0 else list(levels)
    values = adata.obs[column]
    present = set(pd.unique(values.dropna()).tolist())
    missing = [level for level in levels if level not in present]
    if missing:
        shown = sorted(map(str, present))[:20]
        raise ValueError(f"`{what}`: level(s) {missing} not found in adata.obs[{column!r}] (levels: {shown}).")
    return values.isin(levels).to_numpy(dtype=bool), f"{column} in {[str(level) for level in levels]}"


def _bool_column(adata: AnnData, column: str, what: str) -> np.ndarray:
    values = adata.obs[column]
    if values.dtype != bool:
        raise TypeError(
            f"`{what}`: adata.obs[{column!r}] is not boolean (dtype {values.dtype}); to select its levels pass a "
            f"tuple, e.g. ({column!r}, level)."
        )
    return values.to_numpy(dtype=bool)


# --- expression ----------------------------------------------------------------------------------


def dense_block(values, rows: np.ndarray, cols: np.ndarray | None = None) -> np.ndarray:
    """Rows ``rows`` (and columns ``cols``) of an expression matrix, dense or sparse or dask, as float64.

    Rows come back in the order given; they are read in sorted order (what h5py-backed and dask
    arrays need to read efficiently).
    """
    rows = np.asarray(rows)
    order = np.argsort(rows, kind="stable")
    block = values[rows[order]]
    if cols is not None:
        block = block[:, np.asarray(cols)]
    if is_dask(block):
        block = block.compute()
    block = block.toarray() if sp.issparse(block) else np.asarray(block)
    out = np.empty(block.shape, dtype=np.float64)
    out[order] = block
    return out


def column_means(values, cols: np.ndarray | None = None) -> np.ndarray:
    """Mean of each column (``cols`` of them) over all cells, in float64."""
    return column_sums(values, cols) / values.shape[0]


def column_sums(values, cols: np.ndarray | None = None) -> np.ndarray:
    """Sum of each column (``cols`` of them) of a dense, sparse or dask expression matrix, in float64."""
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


def column_variance(values, idx: np.ndarray) -> np.ndarray:
    """Variance (ddof 0, float64) of the columns ``idx`` of a dense, sparse or dask expression matrix."""
    if is_dask(values):
        return column_summary(values).variance[idx]  # all columns: one pass, shared with the finite check
    if sp.issparse(values):
        return sparse_column_variance(values)[idx]
    return np.asarray(values[:, idx], dtype=np.float64).var(axis=0)


#: integer-valued expression whose largest sampled value reaches this looks like raw counts
COUNTS_MIN_MAX = 20
#: stored values sampled (evenly spaced) for the counts check
COUNTS_SAMPLE = 200_000


def warn_if_counts(adata: AnnData, values, layer: str | None, tool: str) -> None:
    """Warn when the expression looks like raw counts: integer values up to >= 20 and no ``uns["log1p"]``.

    On raw counts the correlations follow library size and a few huge genes: on the planted data they
    give 19 modules, 16 of them mostly noise genes, where the log-normalised values give 2.
    """
    if "log1p" in adata.uns or is_dask(values):  # a lazy matrix is not read just for this
        return
    data = values.data if sp.issparse(values) else np.asarray(values).ravel()
    if data.size == 0:
        return
    sample = data[:: max(1, data.size // COUNTS_SAMPLE)]
    if sample.dtype.kind == "f" and not np.array_equal(sample, np.round(sample)):
        return
    top = float(sample.max())
    if top >= COUNTS_MIN_MAX:
        where = "adata.X" if layer is None else f"adata.layers[{layer!r}]"
        warnings.warn(
            f"{tool}: {where} looks like raw counts (integer values up to {top:g}, no uns['log1p']). LAVA "
            "correlates log-normalised expression: run sc.pp.normalize_total(adata) and sc.pp.log1p(adata) "
            "first, or pass `layer=` with log-normalised values.",
            UserWarning,
            stacklevel=3,
        )


def gene_columns(values, var_names: pd.Index, genes) -> tuple[np.ndarray | sp.spmatrix, pd.Index]:
    """The columns of ``genes`` (names in ``var_names``) in the layout the locality kernels read, and their index."""
    used = pd.Index(np.unique(np.asarray(genes, dtype=object).astype(str)))
    idx = var_names.get_indexer(used)
    matrix = gather_columns(values, idx) if is_dask(values) else gene_matrix(values, idx)
    return matrix, used


def covariate_columns(adata: AnnData, partial_out) -> list[str] | None:
    """The obs columns ``partial_out`` names, or None when it is an obsm key; a KeyError for unknown names."""
    if isinstance(partial_out, str) and partial_out in adata.obsm:
        return None
    columns = [partial_out] if isinstance(partial_out, str) else list(partial_out)
    missing = [c for c in columns if c not in adata.obs]
    if missing:
        raise KeyError(
            f"`partial_out` {', '.join(map(repr, missing))} is neither an obsm key ({list(adata.obsm.keys())}) nor "
            "an obs column; "
            "run sc.pp.pca(adata) for 'X_pca' or name existing obs columns."
        )
    return columns


def covariates(adata: AnnData, partial_out, n_components: int) -> np.ndarray | None:
    """Covariates to partial out, one row per cell (None when not requested).

    ``partial_out`` is an ``obsm`` key (its first ``n_components`` columns) or ``obs`` columns
    (numeric as they are, categorical as indicators with the first level dropped).
    """
    if partial_out is None:
        return None
    columns = covariate_columns(adata, partial_out)
    if columns is None:
        cov = np.asarray(adata.obsm[partial_out])
        if cov.dtype.kind not in "biuf" or cov.ndim != 2:
            raise TypeError(
                f"`partial_out`: adata.obsm[{partial_out!r}] must be a numeric cells x components matrix "
                f"(got dtype {cov.dtype}, shape {cov.shape}); pass a numeric representation such as 'X_pca'."
            )
        cov = cov[:, :n_components].astype(np.float64)
    else:
        parts = []
        for c in columns:
            col = adata.obs[c]
            if col.isna().any():  # astype(str) would make "nan" a level of its own
                raise ValueError(
                    f"`partial_out`: obs[{c!r}] has no value (NaN) for {int(col.isna().sum())} cells; give them a "
                    f"level or drop them first (adata = adata[adata.obs[{c!r}].notna()].copy())."
                )
            if isinstance(col.dtype, pd.CategoricalDtype) or col.dtype == object or col.dtype == bool:
                parts.append(pd.get_dummies(col.astype(str), drop_first=True).to_numpy(dtype=np.float64))
            else:
                parts.append(col.to_numpy(dtype=np.float64)[:, None])
        cov = np.column_stack(parts) if parts else np.zeros((adata.n_obs, 0))
    if not np.isfinite(cov).all():
        raise ValueError("`partial_out` covariates contain NaN or inf; fill or drop those cells first.")
    return cov


# --- localities ----------------------------------------------------------------------------------


def has_localities(adata: AnnData, key: str) -> bool:
    keys = Keys(key)
    return keys.uns in adata.uns and keys.obsm_localities in adata.obsm and Keys.probes in adata.uns[key]


def ensure_localities(adata: AnnData, key: str, basis: str, random_state: int) -> None:
    """Run ``tl.localities`` with its defaults on ``basis`` when ``key`` holds none (logged)."""
    if has_localities(adata, key):
        return
    from .tl import localities

    logg.info(f"    no localities under key {key!r}: computing them with lava_sc.tl.localities on {basis!r}")
    localities(adata, basis, random_state=random_state, key_added=key)


def nearest_probe(adata: AnnData, key: str) -> np.ndarray:
    """Index of the probe nearest each cell, in the embedding the localities under ``key`` were placed on."""
    basis = recorded(adata, key, "localities", "basis")
    probes = np.asarray(adata.uns[key][Keys.probes], dtype=np.float64)
    points = embedding(adata, basis)
    centre, scale = float32_frame(points)
    index = NeighbourIndex((probes - centre) / scale, method="exact")
    idx, _ = index.query((points - centre) / scale, 1)
    return idx[:, 0]
