"""Module activity from a fixed list of gene pairs: the correlation of only those pairs in each locality.

Scoring known modules never needs a locality's full gene x gene matrix. Each locality's cells are
standardised once (centred, unit norm per gene, as in :func:`~lava_sc._core.correlations.standardise`)
and the correlation of pair ``(a, b)`` is the dot product of columns ``a`` and ``b``. The cost is
``n_cells x (genes + pairs)`` per locality, whatever the number of genes in the data.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
import scipy.sparse as sp

from .blas import one_blas_thread
from .correlations import _column_stats, locality_cells, resolve_n_jobs, standardise, thread_workspace
from .expression import as_sketch_matrix, column_floor, gather_rows

#: pairs correlated at once inside a locality (bounds the n_cells x pairs temporaries)
PAIR_CHUNK = 50_000
#: cell sets per unit of work handed to a thread
SETS_PER_CHUNK = 16


def pair_dots(z: np.ndarray, gene_a: np.ndarray, gene_b: np.ndarray) -> np.ndarray:
    """Dot products of columns ``gene_a`` and ``gene_b`` of a standardised block (float64), in chunks of pairs."""
    out = np.empty(len(gene_a), dtype=np.float64)
    for start in range(0, len(gene_a), PAIR_CHUNK):
        sl = slice(start, start + PAIR_CHUNK)
        out[sl] = np.einsum("ij,ij->j", z[:, gene_a[sl]], z[:, gene_b[sl]], dtype=np.float64)
    return out


@numba.njit(cache=True, nogil=True)
def _pair_r(block, mean, inv_norm, gene_a, gene_b):
    """Pearson r of column pairs of a Fortran-ordered block from its column means and 1 / centred norms."""
    n = block.shape[0]
    out = np.empty(len(gene_a))
    for q in range(len(gene_a)):
        a, b = gene_a[q], gene_b[q]
        ma, mb = mean[a], mean[b]
        acc = 0.0
        for r in range(n):
            acc += (block[r, a] - ma) * (block[r, b] - mb)
        out[q] = acc * inv_norm[a] * inv_norm[b]
    return out


def set_pair_r(block, floor, gene_a, gene_b, min_detected: float, covariates=None) -> np.ndarray:
    """Pearson (or, with ``covariates``, partial) r of each pair among one cell set's rows of ``block``.

    ``block`` is cells x genes, Fortran-ordered float32. A gene constant in the set has r = 0 with
    every partner, and a pair counts as 0 where one of its genes is detected (above its ``floor``)
    in fewer than ``min_detected`` of the cells.
    """
    n = block.shape[0]
    mean, norm, det, amax = _column_stats(block, np.asarray(floor, dtype=np.float32))
    if covariates is None:
        valid = norm > 1e-6 * np.maximum(amax, 1e-12) * np.sqrt(n)
        inv_norm = np.where(valid, 1.0 / np.where(valid, norm, 1.0), 0.0)
        r = _pair_r(block, mean, inv_norm, gene_a, gene_b)
    else:
        z, _ = standardise(block, covariates)
        r = pair_dots(z, gene_a, gene_b)
    detected = det >= min_detected
    r[~(detected[gene_a] & detected[gene_b])] = 0.0
    return r


def locality_pair_r(
    block: np.ndarray, floor: np.ndarray, gene_a: np.ndarray, gene_b: np.ndarray, min_detected: float
) -> np.ndarray:
    """Pearson r of each pair among one locality's cells (``block``: cells x genes, dense; see :func:`set_pair_r`)."""
    block = np.asfortranarray(block, dtype=np.float32)
    return set_pair_r(block, floor, np.asarray(gene_a, np.int64), np.asarray(gene_b, np.int64), min_detected)


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
    n_jobs: int | None = None,
) -> np.ndarray:
    """Weighted mean correlation of each module's pairs in each cell set (sets x modules).

    ``sum_p w_p r_p / sum_p |w_p|`` over the module's pairs ``p``.

    The sets are the columns of ``membership``: LAVA's localities for locality activity, or e.g. the
    cells of one donor in one cell type for ``tl.differential``.

    Parameters
    ----------
    matrix
        Cells x genes expression (float32 CSR or dense); ``gene_a`` / ``gene_b`` index its columns.
    membership
        Cells x sets membership (CSC).
    gene_a, gene_b
        Column indices of the two genes of every pair.
    module
        Module code (``0 .. n_modules - 1``) of every pair.
    weight
        Weight of every pair (signed for two-sided modules); activity is ``sum_p w_p r_p / sum_p |w_p|``,
        so a negatively weighted pair counts when its r is negative. A module needs a non-zero weight.
    n_modules
        Number of modules.
    min_detected
        Detection rule of ``tl.modules``: a pair counts as 0 where one of its genes is detected in
        fewer than this fraction of the set's cells.
    covariates
        Cells x k: each set's expression is residualised on its covariates before correlating (the
        partial correlation of ``tl.correlations(partial_out=...)``).
    progress
        Called once per set.
    n_jobs
        Threads (see :func:`~lava_sc._core.correlations.resolve_n_jobs`); the result does not depend on it.
    """
    gene_a = np.asarray(gene_a, dtype=np.int64)
    gene_b = np.asarray(gene_b, dtype=np.int64)
    module = np.asarray(module, dtype=np.int64)
    weight = np.asarray(weight, dtype=np.float64)
    # sum |w|: with signed weights (two-sided modules) a plain sum can be near 0 and blow the mean up
    total = np.bincount(module, weights=np.abs(weight), minlength=n_modules)
    if np.any(total == 0):
        raise ValueError("Every module needs a pair with a non-zero weight (all its weights are 0).")
    matrix = as_sketch_matrix(matrix)
    floor = column_floor(matrix)
    membership = sp.csc_matrix(membership)
    n_sets = membership.shape[1]
    out = np.zeros((n_sets, n_modules))

    def run(cols: range) -> range:
        ws = thread_workspace()
        for col in cols:
            cells = locality_cells(membership, col)
            block = gather_rows(matrix, cells, ws.get("block", (len(cells), matrix.shape[1])))
            cov = None if covariates is None else covariates[cells]
            r = set_pair_r(block, floor, gene_a, gene_b, min_detected, cov)
            out[col] = np.bincount(module, weights=weight * r, minlength=n_modules) / total
        return cols

    chunks = [range(s, min(s + SETS_PER_CHUNK, n_sets)) for s in range(0, n_sets, SETS_PER_CHUNK)]
    jobs = min(resolve_n_jobs(n_jobs), max(len(chunks), 1))
    with one_blas_thread(), ThreadPoolExecutor(max(jobs, 1)) as pool:
        for cols in pool.map(run, chunks):
            for _ in cols if progress is not None else ():
                progress()
    return out


#: the same computation, named for its use on LAVA's localities
module_locality_activity = module_set_activity
