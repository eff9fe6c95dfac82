"""Kernels of the stability assay: module matching on gene-set Jaccard and kNN overlap of embeddings.

No AnnData in here: gene sets are mappings of names to collections of genes, embeddings are arrays.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial import cKDTree

#: neighbours per cell compared by :func:`knn_overlap_distance`
KNN_OVERLAP_K = 15


def jaccard_matrix(sets_a: list[Collection[str]], sets_b: list[Collection[str]]) -> np.ndarray:
    """Jaccard index ``|A ∩ B| / |A ∪ B|`` of every set in ``sets_a`` with every set in ``sets_b``."""
    out = np.zeros((len(sets_a), len(sets_b)))
    if not sets_a or not sets_b:
        return out
    genes = sorted(set().union(*sets_a, *sets_b))
    index = {g: i for i, g in enumerate(genes)}

    def indicator(sets):
        m = np.zeros((len(sets), len(genes)))
        for row, s in enumerate(sets):
            m[row, [index[g] for g in s]] = 1.0
        return m

    ia, ib = indicator(sets_a), indicator(sets_b)
    inter = ia @ ib.T
    union = ia.sum(1)[:, None] + ib.sum(1)[None, :] - inter
    np.divide(inter, union, out=out, where=union > 0)
    return out


@dataclass
class ModuleMatch:
    """One-to-one matching of two module sets that maximises the summed gene-set Jaccard."""

    #: Jaccard of every reference module (rows) with every other module (columns)
    jaccard: np.ndarray
    #: matched pairs (reference name, other name, Jaccard), only pairs sharing at least one gene
    pairs: list[tuple[str, str, float]] = field(default_factory=list)
    unmatched_a: list[str] = field(default_factory=list)
    unmatched_b: list[str] = field(default_factory=list)

    @property
    def n_a(self) -> int:
        return self.jaccard.shape[0]

    @property
    def n_b(self) -> int:
        return self.jaccard.shape[1]

    @property
    def n_matched(self) -> int:
        return len(self.pairs)

    @property
    def mean_jaccard(self) -> float:
        """Summed Jaccard of the matched pairs over ``max(n_a, n_b)``: an unmatched module counts as 0.

        1 exactly when both sides have the same modules; two empty sides are identical (1).
        """
        n = max(self.n_a, self.n_b)
        if n == 0:
            return 1.0
        return float(sum(j for _, _, j in self.pairs) / n)

    @property
    def change(self) -> float:
        """``1 - mean_jaccard``: 0 for the same modules, 1 for nothing in common."""
        return 1.0 - self.mean_jaccard


def match_modules(modules_a: Mapping[str, Collection[str]], modules_b: Mapping[str, Collection[str]]) -> ModuleMatch:
    """Match modules of two runs one-to-one (Hungarian algorithm on gene-set Jaccard).

    ``modules_a`` and ``modules_b`` map module names to their genes. The assignment maximises the
    summed Jaccard (:func:`scipy.optimize.linear_sum_assignment`); with unequal counts the surplus
    modules stay unmatched, and an assigned pair with no gene in common is not a match.
    """
    names_a, names_b = list(modules_a), list(modules_b)
    sets_a = [set(map(str, modules_a[n])) for n in names_a]
    sets_b = [set(map(str, modules_b[n])) for n in names_b]
    jac = jaccard_matrix(sets_a, sets_b)
    pairs: list[tuple[str, str, float]] = []
    if jac.size:
        rows, cols = linear_sum_assignment(jac, maximize=True)
        pairs = [(names_a[r], names_b[c], float(jac[r, c])) for r, c in zip(rows, cols, strict=True) if jac[r, c] > 0]
    matched_a = {a for a, _, _ in pairs}
    matched_b = {b for _, b, _ in pairs}
    return ModuleMatch(
        jaccard=jac,
        pairs=pairs,
        unmatched_a=[n for n in names_a if n not in matched_a],
        unmatched_b=[n for n in names_b if n not in matched_b],
    )


def activity_correlation(activity_a: np.ndarray, activity_b: np.ndarray) -> float:
    """Mean Pearson correlation, over cells, of paired activity columns (NaN if no pair has a defined one).

    ``activity_a`` and ``activity_b`` are cells x pairs: column ``j`` of each belongs to matched pair ``j``.
    """
    a = np.asarray(activity_a, dtype=np.float64)
    b = np.asarray(activity_b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"Activity matrices must have the same shape, got {a.shape} and {b.shape}.")
    if a.ndim != 2 or a.shape[1] == 0 or a.shape[0] < 2:
        return float("nan")
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    denom = np.sqrt((a * a).sum(axis=0) * (b * b).sum(axis=0))
    ok = denom > 0
    if not ok.any():
        return float("nan")
    r = (a[:, ok] * b[:, ok]).sum(axis=0) / denom[ok]
    return float(np.clip(r, -1.0, 1.0).mean())


def knn_indices(points: np.ndarray, k: int) -> np.ndarray:
    """Indices of each point's ``k`` nearest other points (exact, Euclidean), cells x k."""
    points = np.asarray(points, dtype=np.float64)
    if points.ndim == 1:
        points = points[:, None]
    n = points.shape[0]
    if not 1 <= k < n:
        raise ValueError(f"`k`={k} neighbours need at least {k + 1} cells, got {n}.")
    _, idx = cKDTree(points).query(points, k=k + 1)
    idx = np.asarray(idx, dtype=np.int64)
    # drop each point itself (it is usually in column 0, but ties with duplicates may move it)
    is_self = idx == np.arange(n)[:, None]
    has_self = is_self.any(axis=1)
    out = np.empty((n, k), dtype=np.int64)
    out[has_self] = idx[has_self][~is_self[has_self]].reshape(-1, k)
    out[~has_self] = idx[~has_self, :k]
    return out


def knn_jaccard(idx_a: np.ndarray, idx_b: np.ndarray) -> np.ndarray:
    """Per cell, the Jaccard index of its neighbour sets in two kNN index arrays (cells x k each)."""
    if idx_a.shape != idx_b.shape:
        raise ValueError(f"Neighbour arrays must have the same shape, got {idx_a.shape} and {idx_b.shape}.")
    both = np.sort(np.concatenate([idx_a, idx_b], axis=1), axis=1)
    inter = (both[:, 1:] == both[:, :-1]).sum(axis=1)  # each set has distinct entries
    union = both.shape[1] - inter
    return inter / union


def knn_overlap_distance(points_a: np.ndarray, points_b: np.ndarray, k: int = KNN_OVERLAP_K) -> float:
    """``1 - mean Jaccard`` of each cell's ``k`` nearest neighbours in two embeddings of the same cells.

    0 when every cell keeps its neighbours (whatever rotation, scaling or shift), 1 when no cell
    keeps any.
    """
    a = np.asarray(points_a, dtype=np.float64)
    b = np.asarray(points_b, dtype=np.float64)
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"The embeddings must have the same cells, got {a.shape[0]} and {b.shape[0]} rows.")
    return float(1.0 - knn_jaccard(knn_indices(a, k), knn_indices(b, k)).mean())
