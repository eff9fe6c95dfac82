"""How ``tl.differential`` turns cells into test units: the design (conditions, replicates nested in
them, ``within`` groups), the units and their mean activity, and, without replicates, how many
independent units the localities behind the cells' smoothed activity allow (``n_eff``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from .. import _logging as logg
from .._adata import nearest_probe
from .._keys import Keys
from .._validate import check_obs_column
from ._differential_stats import RESULT_COLUMNS

#: level names taken as the reference when ``reference=None`` (case-insensitive, in this order)
REFERENCE_NAMES = ("reference", "control", "healthy", "normal")


def check_columns(adata: AnnData, groupby, replicate, within) -> None:
    given = {"groupby": groupby, "replicate": replicate, "within": within}
    for name, column in given.items():
        if column is None and name != "groupby":
            continue
        check_obs_column(adata, column, name, optional=name != "groupby")
    used = [c for c in given.values() if c is not None]
    if len(set(used)) < len(used):
        raise ValueError(f"`groupby`, `replicate` and `within` must be different columns, got {given}.")
    if within in ("module", *RESULT_COLUMNS):
        raise ValueError(
            f"`within` column {within!r} clashes with a column of the result table; copy it to another name "
            f"(e.g. adata.obs['{within}_group'] = adata.obs[{within!r}]) and pass that."
        )


def labels(adata: AnnData, column: str) -> tuple[np.ndarray, list[str]]:
    """Integer codes of an obs column and its observed levels as strings (categories order, else sorted)."""
    values = adata.obs[column]
    missing = int(values.isna().sum())
    if missing:
        raise ValueError(
            f"obs[{column!r}] has no value (NaN) for {missing} cells; give them a level or drop them first "
            f"(adata = adata[adata.obs[{column!r}].notna()].copy())."
        )
    cat = pd.Categorical(values).remove_unused_categories()
    return cat.codes.astype(np.int64), [str(c) for c in cat.categories]


def reference_level(levels: list[str], reference, groupby: str) -> str:
    if len(levels) < 2:
        raise ValueError(
            f"obs[{groupby!r}] has a single level {levels}; differential activity needs at least two conditions."
        )
    if reference is not None:
        if str(reference) not in levels:
            raise ValueError(
                f"Reference {reference!r} is not a level of obs[{groupby!r}] (levels: {levels}); "
                "pass one of them as `reference=`."
            )
        return str(reference)
    lower = {level.lower(): level for level in reversed(levels)}
    for name in REFERENCE_NAMES:
        if name in lower:
            logg.info(f"    using {lower[name]!r} as the reference level of {groupby!r}")
            return lower[name]
    logg.warning(
        f"differential: no level of {groupby!r} is named {' / '.join(REFERENCE_NAMES)}; using the first level "
        f"{levels[0]!r} as the reference. Pass `reference=` to choose another."
    )
    return levels[0]


def check_nested(cond_codes, levels, rep_codes, rep_levels, groupby: str, replicate: str) -> None:
    """Every replicate must have all its cells in one condition."""
    pairs = np.unique(np.stack([rep_codes, cond_codes], axis=1), axis=0)
    n_conditions = np.bincount(pairs[:, 0], minlength=len(rep_levels))
    bad = np.flatnonzero(n_conditions > 1)
    if len(bad):
        examples = {rep_levels[r]: [levels[c] for c in pairs[pairs[:, 0] == r, 1]] for r in bad[:3]}
        raise ValueError(
            f"Replicates must be nested in conditions, but {len(bad)} level(s) of obs[{replicate!r}] have cells "
            f"in more than one level of obs[{groupby!r}] (e.g. {examples}). Fix the annotation; if these are "
            f"separate samples, give them separate names (e.g. obs[{replicate!r}] + '_' + obs[{groupby!r}])."
        )


def units_of(cond_codes, group_codes, rep_codes) -> dict[str, np.ndarray]:
    """Group, condition and size of each (group, replicate), with its member cells; cells when no replicates."""
    n = len(cond_codes)
    if rep_codes is None:
        ones = np.ones(n, dtype=np.int64)
        return {"group": group_codes, "condition": cond_codes, "n_cells": ones, "members": None}
    n_rep = int(rep_codes.max()) + 1
    unit_of = group_codes * n_rep + rep_codes
    ids, inverse, counts = np.unique(unit_of, return_inverse=True, return_counts=True)
    condition = np.zeros(n_rep, dtype=np.int64)
    condition[rep_codes] = cond_codes
    return {
        "group": ids // n_rep,
        "condition": condition[ids % n_rep],
        "n_cells": counts,
        "members": sp.csr_matrix((np.ones(n), (inverse, np.arange(n))), shape=(len(ids), n)),
    }


def mean_activity(act: np.ndarray, units) -> np.ndarray:
    """Mean smoothed cell activity per unit (the cells themselves when there are no replicates)."""
    if units["members"] is None:
        return act
    return np.asarray(units["members"] @ act) / units["n_cells"][:, None]


@dataclass
class Smoother:
    """How the smoothed activity of cells draws on cells through the localities (see :func:`differential`).

    With ``M`` the cells x localities membership, ``s_l`` the cells of locality ``l`` and ``P`` the
    cells x localities weights of a cell's activity (``1/k_i`` on the ``k_i`` localities containing
    cell ``i``; 1 on the nearest probe's locality for a cell in none), cell ``i``'s activity is, to first
    order, ``sum_j c_ij z_j`` over independent per-cell contributions ``z_j``, with
    ``c_i = M diag(1/s) P_i``.
    """

    weights: sp.csr_matrix  # P, cells x localities, rows summing to 1
    inv_size: np.ndarray  # 1 / s_l
    shared: sp.csr_matrix  # M^T M: cells shared by two localities
    self_term: np.ndarray  # ||c_i||^2 per cell

    def n_eff(self, cells: np.ndarray) -> float:
        """``mean_i ||c_i||^2 / ||mean_i c_i||^2`` over ``cells`` (1 <= n_eff <= len(cells); 0 when empty)."""
        if len(cells) == 0:
            return 0.0
        share = np.asarray(self.weights[cells].sum(axis=0)).ravel() / len(cells)
        y = share * self.inv_size
        mean_norm = float(y @ (self.shared @ y))  # ||u||^2, u = M diag(1/s) share
        if mean_norm <= 0:
            return float(len(cells))
        return float(np.clip(self.self_term[cells].mean() / mean_norm, 1.0, len(cells)))


def locality_key(adata: AnnData, key: str) -> str | None:
    """The key whose obsm localities the activity under ``key`` was computed on (tl.score: its ``key``)."""
    params = adata.uns.get(key, {}).get("params", {}) if isinstance(adata.uns.get(key), Mapping) else {}
    score = params.get("score") if isinstance(params, Mapping) else None
    candidates = [key, str(score["key"])] if isinstance(score, Mapping) and "key" in score else [key]
    for k in candidates:
        if Keys(k).obsm_localities in adata.obsm:
            return k
    return None


def smoother_of(adata: AnnData, key: str) -> Smoother | None:
    """The locality structure behind ``obsm[f"{key}_activity"]``; None when no localities are stored."""
    where = locality_key(adata, key)
    if where is None:
        return None
    name = Keys(where).obsm_localities
    raw = adata.obsm[name]
    if sp.issparse(raw):
        membership = sp.csr_matrix(raw, dtype=np.float64, copy=True)
        membership.data = (membership.data != 0).astype(np.float64)
        membership.eliminate_zeros()
    elif isinstance(raw, np.ndarray) and raw.ndim == 2:
        membership = sp.csr_matrix((raw != 0).astype(np.float64))
    else:
        raise TypeError(
            f"adata.obsm[{name!r}] must be a sparse cells x localities matrix, got {type(raw).__name__}; rerun "
            f"lava_sc.tl.localities(adata, key_added={where!r})."
        )
    n_loc = membership.shape[1]
    stored = adata.uns[key].get(Keys.locality_activity) if isinstance(adata.uns.get(key), Mapping) else None
    if stored is not None and np.shape(stored)[0] != n_loc:
        raise ValueError(
            f"adata.obsm[{name!r}] has {n_loc} localities but adata.uns[{key!r}][{Keys.locality_activity!r}] has "
            f"{np.shape(stored)[0]}: they come from different runs; rerun lava_sc.tl.modules(adata, key={key!r})."
        )
    counts = np.asarray(membership.sum(axis=1)).ravel()
    reads = membership
    uncovered = np.flatnonzero(counts == 0)
    if len(uncovered):  # tl.modules gives such a cell its nearest probe's locality
        nearest = nearest_locality(adata, where, uncovered, n_loc)
        if nearest is not None:
            reads = membership + sp.csr_matrix((np.ones(len(uncovered)), (uncovered, nearest)), shape=membership.shape)
        else:  # probes unknown: such a cell counts as its own unit
            logg.warning(
                f"differential: {len(uncovered)} cell(s) in no locality and no probes to find their nearest one; "
                "each counts as its own unit in n_eff."
            )
            single = sp.csr_matrix(
                (np.ones(len(uncovered)), (uncovered, np.arange(len(uncovered)))),
                shape=(membership.shape[0], len(uncovered)),
            )
            membership = reads = sp.hstack([membership, single], format="csr")
        counts = np.asarray(reads.sum(axis=1)).ravel()
    weights = sp.csr_matrix(sp.diags(1.0 / counts) @ reads)
    size = np.asarray(membership.sum(axis=0)).ravel()
    inv_size = np.divide(1.0, size, out=np.zeros_like(size), where=size > 0)
    shared = sp.csr_matrix(membership.T @ membership)
    scaled = sp.csr_matrix(sp.diags(inv_size) @ shared @ sp.diags(inv_size))  # diag(1/s) M^T M diag(1/s)
    self_term = np.asarray((weights @ scaled).multiply(weights).sum(axis=1)).ravel()  # ||c_i||^2
    return Smoother(weights, inv_size, shared, self_term)


def nearest_locality(adata: AnnData, key: str, cells: np.ndarray, n_loc: int) -> np.ndarray | None:
    """The locality of the probe nearest each of ``cells`` (as tl.modules uses), or None without probes."""
    try:
        nearest = np.asarray(nearest_probe(adata, key))[cells]
    except (KeyError, ValueError, TypeError, IndexError):
        return None
    if len(nearest) != len(cells) or not np.all((nearest >= 0) & (nearest < n_loc)):
        return None
    return nearest.astype(np.int64)
