"""The expression matrix as the correlation kernels read it: the tested genes as float32 CSR or a
C-ordered array, rows of a locality gathered into a Fortran-ordered block, and per-gene floors and
variances computed in one pass over the stored entries (no densified or float64 copy of X)."""

from __future__ import annotations

import numba
import numpy as np
import scipy.sparse as sp


def gene_matrix(values, gene_idx: np.ndarray):
    """The selected genes as float32 CSR (sparse input) or a C-contiguous array (dense input).

    Selecting every gene in order returns ``values`` itself when it already has that form: at a
    million cells a copy of X is several GiB.
    """
    gene_idx = np.asarray(gene_idx)
    if len(gene_idx) == values.shape[1] and np.array_equal(gene_idx, np.arange(values.shape[1])):
        return as_sketch_matrix(values)
    sub = values[:, gene_idx]
    if sp.issparse(sub):
        return sp.csr_matrix(sub, dtype=np.float32)
    return np.ascontiguousarray(sub, dtype=np.float32)


def as_sketch_matrix(matrix):
    """The cells x genes matrix as CSR float32 or a C-ordered float32 array (no copy when it already is)."""
    if sp.issparse(matrix):
        return sp.csr_matrix(matrix, dtype=np.float32)
    return np.ascontiguousarray(matrix, dtype=np.float32)


def gather_rows(matrix, rows: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``matrix[rows]`` (CSR float32 or C-ordered float32 array) into the Fortran-ordered ``out``."""
    rows = np.asarray(rows, dtype=np.int64)
    if sp.issparse(matrix):
        _gather_csr(matrix.indptr, matrix.indices, matrix.data, rows, out)
    else:
        _gather_dense(matrix, rows, out)
    return out


@numba.njit(cache=True, nogil=True)
def _gather_csr(indptr, indices, data, rows, out):
    """Rows of a CSR matrix into the dense (Fortran-ordered) ``out``."""
    for j in range(out.shape[1]):  # column by column: ``out[:, :] = 0`` writes an F array row-major
        out[:, j] = 0.0
    for r in range(len(rows)):
        c = rows[r]
        for p in range(indptr[c], indptr[c + 1]):
            out[r, indices[p]] = data[p]


@numba.njit(cache=True, nogil=True)
def _gather_dense(matrix, rows, out):
    for r in range(len(rows)):
        out[r, :] = matrix[rows[r], :]


def column_floor(matrix) -> np.ndarray:
    """Each gene's minimum over all cells; a gene is 'detected' in a cell when above it."""
    if sp.issparse(matrix) and matrix.format == "csr":  # one pass over the stored entries, no CSC copy
        low, stored = _csr_column_min(matrix.indices, matrix.data, matrix.shape[1])
        implicit_zero = stored < matrix.shape[0]
        return np.where(implicit_zero, np.minimum(low, 0), low).astype(matrix.dtype)
    if sp.issparse(matrix):
        return np.asarray(matrix.min(axis=0).toarray()).ravel()
    return np.asarray(matrix.min(axis=0))


@numba.njit(cache=True, nogil=True)
def _csr_column_min(indices, data, n_cols):
    low = np.full(n_cols, np.inf)
    stored = np.zeros(n_cols, dtype=np.int64)
    for p in range(len(data)):
        j = indices[p]
        stored[j] += 1
        if data[p] < low[j]:
            low[j] = data[p]
    return low, stored


@numba.njit(cache=True, nogil=True)
def _csr_column_moments(indices, data, n_cols):
    total = np.zeros(n_cols)
    total_sq = np.zeros(n_cols)
    for p in range(len(data)):
        v = float(data[p])
        total[indices[p]] += v
        total_sq[indices[p]] += v * v
    return total, total_sq


def column_variance(matrix) -> np.ndarray:
    """Each column's variance (ddof 0, float64) of a dense or sparse matrix, streaming over the stored
    entries of a sparse one: no densified or float64 copy (several GiB at a million cells)."""
    if not sp.issparse(matrix):
        return np.asarray(matrix, dtype=np.float64).var(axis=0)
    n_rows, n_cols = matrix.shape
    csr = matrix if matrix.format == "csr" else sp.csr_matrix(matrix)
    total, total_sq = _csr_column_moments(csr.indices, csr.data, n_cols)
    mean = total / max(n_rows, 1)
    return np.maximum(total_sq / max(n_rows, 1) - mean**2, 0.0)
