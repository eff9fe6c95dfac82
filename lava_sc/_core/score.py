"""Module activity from a fixed list of gene pairs: the correlation of only those pairs in each locality.

Scoring known modules never needs a locality's full gene x gene matrix. Each locality's cells are
standardised once (centred, unit norm per gene, as in :func:`~lava_sc._core.correlations.standardise`)
and the correlation of pair ``(a, b)`` is the dot product of columns ``a`` and ``b``. The cost is
``n_cells x (genes + pairs)`` per locality, whatever the number of genes in the data.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from .correlations import column_floor, locality_cells, rows_dense, standardise

#: pairs correlated at once inside a locality (bounds the n_cells x pairs temporaries)
PAIR_CHUNK = 50_000


def pair_dots(z: np.ndarray, gene_a: np.ndarray, gene_b: np.ndarray) -> np.ndarray:
    """Dot products of columns ``gene_a`` and ``gene_b`` of a standardised block (float64), in chunks of pairs."""
    out = np.empty(len(gene_a), dtype=np.float64)
    for start in range(0, len(gene_a), PAIR_CHUNK):
        sl = slice(start, start + PAIR_CHUNK)
        out[sl] = np.einsum("ij,ij->j", z[:, gene_a[sl]], z[:, gene_b[sl]], dtype=np.float64)
    return out


def locality_pair_r(
    block: np.ndarray, floor: np.ndarray, gene_a: np.ndarray, gene_b: np.ndarray, min_detected: float
) -> np.ndarray:
    """Pearson r of each pair among one locality's cells (``block``: cells x genes, dense).

    A gene constant in the locality has r = 0 with every partner, and a pair counts as 0 where one of
    its genes is detected (above its ``floor``) in fewer than ``min_detected`` of the cells.
    """
    z, _ = standardise(block)
    detected = (block > floor).mean(axis=0) >= min_detected
    r = pair_dots(z, gene_a, gene_b)
    r[~(detected[gene_a] & detected[gene_b])] = 0.0
    return r


def module_locality_activity(
    matrix,
    membership: sp.csc_matrix,
    gene_a: np.ndarray,
    gene_b: np.ndarray,
    module: np.ndarray,
    weight: np.ndarray,
    n_modules: int,
    *,
    min_detected: float = 0.1,
    progress: Callable[[], object] | None = None,
) -> np.ndarray:
    """Weighted mean correlation of each module's pairs in each locality (localities x modules).

    Parameters
    ----------
    matrix
        Cells x genes expression (float32 CSR or dense); ``gene_a`` / ``gene_b`` index its columns.
    membership
        Cells x localities membership (CSC).
    gene_a, gene_b
        Column indices of the two genes of every pair.
    module
        Module code (``0 .. n_modules - 1``) of every pair.
    weight
        Weight of every pair; each module's weights must not sum to 0.
    n_modules
        Number of modules.
    min_detected
        Detection rule of ``tl.modules``: a pair counts as 0 where one of its genes
        is detected in fewer than this fraction of the locality's cells.
    progress
        Called once per locality.
    """
    gene_a = np.asarray(gene_a, dtype=np.int64)
    gene_b = np.asarray(gene_b, dtype=np.int64)
    module = np.asarray(module, dtype=np.int64)
    weight = np.asarray(weight, dtype=np.float64)
    total = np.bincount(module, weights=weight, minlength=n_modules)
    if np.any(total == 0):
        raise ValueError("Every module needs pairs whose weights do not sum to 0.")
    floor = column_floor(matrix)
    n_loc = membership.shape[1]
    out = np.zeros((n_loc, n_modules))
    for loc in range(n_loc):
        block = rows_dense(matrix, locality_cells(membership, loc))
        r = locality_pair_r(block, floor, gene_a, gene_b, min_detected)
        out[loc] = np.bincount(module, weights=weight * r, minlength=n_modules) / total
        if progress is not None:
            progress()
    return out


def module_set_activity(
    matrix,
    membership: sp.csc_matrix,
    gene_a: np.ndarray,
    gene_b: np.ndarray,
    module: np.ndarray,
    weight: np.ndarray,
    n_modules: int,
    *,
    min_detected: float = 0.1,
    covariates: np.ndarray | None = None,
    progress: Callable[[], object] | None = None,
) -> np.ndarray:
    """:func:`module_locality_activity` for any cell sets (columns of ``membership``), optionally partial.

    Without ``covariates`` this is :func:`module_locality_activity`. With ``covariates`` (cells x k),
    each set's expression is residualised on the set's covariates before correlating (the partial
    correlation of ``tl.correlations(partial_out=...)``), with the same detection rule.
    """
    if covariates is None:
        return module_locality_activity(
            matrix, membership, gene_a, gene_b, module, weight, n_modules, min_detected=min_detected, progress=progress
        )
    gene_a = np.asarray(gene_a, dtype=np.int64)
    gene_b = np.asarray(gene_b, dtype=np.int64)
    module = np.asarray(module, dtype=np.int64)
    weight = np.asarray(weight, dtype=np.float64)
    total = np.bincount(module, weights=weight, minlength=n_modules)
    if np.any(total == 0):
        raise ValueError("Every module needs pairs whose weights do not sum to 0.")
    floor = column_floor(matrix)
    out = np.zeros((membership.shape[1], n_modules))
    for col in range(membership.shape[1]):
        cells = locality_cells(membership, col)
        block = rows_dense(matrix, cells)
        z, _ = standardise(block, covariates[cells])
        r = pair_dots(z, gene_a, gene_b)
        detected = (block > floor).mean(axis=0) >= min_detected
        r[~(detected[gene_a] & detected[gene_b])] = 0.0
        out[col] = np.bincount(module, weights=weight * r, minlength=n_modules) / total
        if progress is not None:
            progress()
    return out
