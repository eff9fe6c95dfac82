"""Per-locality gene-gene correlations, calibrated against a within-locality permutation null.

For a locality (n cells x G genes) we compute the observed correlation matrix and the correlation
matrix of the same genes after independently permuting each gene's values across the locality's
cells. The permuted matrix has exactly the same pairs with the same marginals (size, sparsity,
skew), so it is an exchangeable null for every pair. Within strata of pairs that share a detection
class, the threshold is the smallest t with ``(1 + #null >= t) / #observed >= t <= fdr`` (the
knockoff+ estimate), which controls the false discovery rate per locality and stratum.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numba
import numpy as np
import scipy.sparse as sp
from scipy.linalg import blas

#: detection-fraction edges of the gene classes that define the null strata
DETECTION_EDGES = (0.25, 0.6)
N_BINS = 1000


@dataclass
class LocalitySketch:
    """Significant pairs of one locality (gene indices into the tested gene list)."""

    gene_a: np.ndarray
    gene_b: np.ndarray
    r: np.ndarray
    n_tests: int
    n_null_exceed: int


def standardise(values: np.ndarray, covariates: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Centre (or residualise on ``covariates``) and scale each column to unit norm.

    Returns the standardised float32 matrix and a boolean mask of columns with non-zero variance
    (their standardised values are set to zero).
    """
    x = np.asarray(values, dtype=np.float64)
    if covariates is None:
        x = x - x.mean(axis=0, keepdims=True)
    else:
        design = np.column_stack([np.ones(len(x)), covariates])
        coef, *_ = np.linalg.lstsq(design, x, rcond=None)
        x = x - design @ coef
    norm = np.sqrt((x * x).sum(axis=0))
    scale = np.abs(values).max(axis=0) if len(values) else np.zeros(x.shape[1])
    valid = norm > 1e-6 * np.maximum(scale, 1e-12) * np.sqrt(len(x))
    x[:, valid] /= norm[valid]
    x[:, ~valid] = 0.0
    return x.astype(np.float32), valid


def gram(z: np.ndarray) -> np.ndarray:
    """Upper triangle of z.T @ z with a symmetric rank-k update (float32 BLAS ``ssyrk``).

    ``z.T`` of a C-ordered ``z`` is Fortran-ordered, which BLAS takes without a copy; the result is
    Fortran-ordered (and only its upper triangle is meaningful).
    """
    return blas.ssyrk(1.0, z.T, trans=0, lower=0)


def detection_class(detected_fraction: np.ndarray) -> np.ndarray:
    return np.searchsorted(np.asarray(DETECTION_EDGES), detected_fraction, side="right").astype(np.int64)


@numba.njit(cache=True, nogil=True)
def _bin(v, n_bins):
    b = int(v * n_bins)
    if b >= n_bins:
        b = n_bins - 1
    return b


@numba.njit(cache=True, nogil=True, inline="always")
def _pair_stratum(stratum, i, j, n_strata):
    """Index of the unordered pair of detection classes of genes i and j."""
    a, b = stratum[i], stratum[j]
    return min(a, b) * n_strata + max(a, b)


@numba.njit(cache=True, nogil=True)
def _histograms(r_obs, r_null, tested, stratum, n_strata, n_bins, two_sided):
    """Histograms of observed and null statistics per pair stratum (upper triangle only).

    The Gram matrices come from BLAS in Fortran order, so the upper triangle is walked column by
    column (entry (i, j), i < j, is contiguous in i).
    """
    g = r_obs.shape[0]
    h_obs = np.zeros((n_strata * n_strata, n_bins), dtype=np.int64)
    h_null = np.zeros((n_strata * n_strata, n_bins), dtype=np.int64)
    n_tests = 0
    for j in range(g):
        if not tested[j]:
            continue
        for i in range(j):
            if not tested[i]:
                continue
            s = _pair_stratum(stratum, i, j, n_strata)
            n_tests += 1
            v = r_obs[i, j]
            w = r_null[i, j]
            if two_sided:
                v = abs(v)
                w = abs(w)
            if v > 0:
                h_obs[s, _bin(v, n_bins)] += 1
            if w > 0:
                h_null[s, _bin(w, n_bins)] += 1
    return h_obs, h_null, n_tests


@numba.njit(cache=True, nogil=True)
def _select(r_obs, tested, stratum, n_strata, first_bin, n_bins, two_sided):
    """Pairs (i < j) whose statistic falls in or above their stratum's threshold bin, column by column."""
    g = r_obs.shape[0]
    cap = 1024
    ia = np.empty(cap, dtype=np.int32)
    ib = np.empty(cap, dtype=np.int32)
    rv = np.empty(cap, dtype=np.float32)
    k = 0
    for j in range(g):
        if not tested[j]:
            continue
        for i in range(j):
            if not tested[i]:
                continue
            s = _pair_stratum(stratum, i, j, n_strata)
            v = r_obs[i, j]
            stat = abs(v) if two_sided else v
            if stat <= 0 or _bin(stat, n_bins) < first_bin[s]:
                continue
            if k == cap:
                cap *= 2
                ia2 = np.empty(cap, dtype=np.int32)
                ib2 = np.empty(cap, dtype=np.int32)
                rv2 = np.empty(cap, dtype=np.float32)
                ia2[:k] = ia[:k]
                ib2[:k] = ib[:k]
                rv2[:k] = rv[:k]
                ia, ib, rv = ia2, ib2, rv2
            ia[k] = i
            ib[k] = j
            rv[k] = v
            k += 1
    return ia[:k], ib[:k], rv[:k]


def knockoff_thresholds(h_obs: np.ndarray, h_null: np.ndarray, fdr: float, min_bin: int) -> tuple[np.ndarray, int]:
    """First histogram bin per stratum at which (1 + null exceedances) / observed exceedances <= fdr.

    Strata where no threshold qualifies get ``n_bins`` (nothing selected). Also returns the number of
    null exceedances at the chosen thresholds (an estimate of false discoveries).
    """
    n_strata, n_bins = h_obs.shape
    obs_tail = np.cumsum(h_obs[:, ::-1], axis=1)[:, ::-1]
    null_tail = np.cumsum(h_null[:, ::-1], axis=1)[:, ::-1]
    fdp_hat = (1.0 + null_tail) / np.maximum(obs_tail, 1)
    ok = (fdp_hat <= fdr) & (obs_tail > 0)
    ok[:, :min_bin] = False
    first = np.where(ok.any(axis=1), ok.argmax(axis=1), n_bins)
    null_at = sum(int(null_tail[s, b]) for s, b in enumerate(first) if b < n_bins)
    return first.astype(np.int64), null_at


def strongest_partners(gene_a: np.ndarray, gene_b: np.ndarray, r: np.ndarray, max_partners: int) -> np.ndarray:
    """Mask of pairs that are among the ``max_partners`` strongest of at least one of their two genes."""
    genes = np.concatenate([gene_a, gene_b])
    strength = np.abs(np.concatenate([r, r]))
    order = np.lexsort((-strength, genes))
    sorted_genes = genes[order]
    starts = np.searchsorted(sorted_genes, sorted_genes, side="left")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order)) - starts
    keep = rank < max_partners
    return keep[: len(r)] | keep[len(r) :]


def locality_sketch(
    values: np.ndarray,
    detected: np.ndarray,
    *,
    rng: np.random.Generator,
    fdr: float = 0.05,
    min_detected: float = 0.1,
    min_abs_r: float = 0.1,
    two_sided: bool = False,
    covariates: np.ndarray | None = None,
    max_partners: int | None = None,
) -> LocalitySketch:
    """Significant gene pairs of one locality.

    Parameters
    ----------
    values
        Expression of the locality's cells, ``(n_cells, n_genes)``, dense.
    detected
        Boolean, same shape: whether each gene is detected (above its floor) in each cell.
    rng
        Source of the permutations.
    fdr
        Target false discovery rate per locality and detection stratum.
    min_detected
        Genes detected in a smaller fraction of the locality's cells are not tested there.
    min_abs_r
        Smallest absolute correlation reported, whatever its significance.
    two_sided
        Test negative associations too (default: positive only).
    covariates
        Optional ``(n_cells, k)`` matrix to partial out (partial correlation).
    max_partners
        Keep a significant pair only if it is among the ``max_partners`` strongest of one of its
        genes (``None``: keep all). Sparsifies dense correlation structure (images, large
        programs) to each gene's closest associates.
    """
    z, valid = standardise(values, covariates)
    det_frac = detected.mean(axis=0)
    tested = valid & (det_frac >= min_detected)
    stratum = detection_class(det_frac)
    n_strata = len(DETECTION_EDGES) + 1
    r_obs = gram(z)
    r_null = gram(rng.permuted(z, axis=0))
    h_obs, h_null, n_tests = _histograms(r_obs, r_null, tested, stratum, n_strata, N_BINS, two_sided)
    first_bin, null_at = knockoff_thresholds(h_obs, h_null, fdr, int(min_abs_r * N_BINS))
    ia, ib, r = _select(r_obs, tested, stratum, n_strata, first_bin, N_BINS, two_sided)
    if max_partners is not None and len(r):
        keep = strongest_partners(ia, ib, r, max_partners)
        ia, ib, r = ia[keep], ib[keep], r[keep]
    return LocalitySketch(ia, ib, r, int(n_tests), null_at)


def pair_correlations(values: np.ndarray, gene_a: np.ndarray, gene_b: np.ndarray, covariates=None) -> np.ndarray:
    """Correlation of the given gene pairs inside one locality (0 where a gene is constant)."""
    z, _ = standardise(values, covariates)
    return np.einsum("ij,ij->j", z[:, gene_a], z[:, gene_b], dtype=np.float64)


@dataclass(frozen=True)
class SketchOptions:
    """Test settings shared by every locality (see :func:`locality_sketch`)."""

    fdr: float = 0.05
    min_detected: float = 0.1
    min_abs_r: float = 0.1
    two_sided: bool = False
    max_partners: int | None = 10


def gene_matrix(values, gene_idx: np.ndarray):
    """The selected genes as float32 CSR (sparse input) or a C-contiguous array (dense input)."""
    sub = values[:, gene_idx]
    if sp.issparse(sub):
        return sp.csr_matrix(sub, dtype=np.float32)
    return np.ascontiguousarray(sub, dtype=np.float32)


def rows_dense(matrix, rows: np.ndarray) -> np.ndarray:
    block = matrix[rows]
    return block.toarray() if sp.issparse(block) else np.asarray(block)


def column_floor(matrix) -> np.ndarray:
    """Each gene's minimum over all cells; a gene is 'detected' in a cell when above it."""
    if sp.issparse(matrix):
        return np.asarray(matrix.min(axis=0).toarray()).ravel()
    return np.asarray(matrix.min(axis=0))


def locality_cells(membership: sp.csc_matrix, loc: int) -> np.ndarray:
    """Sorted member cells of one locality (a column of the cells x localities membership)."""
    return np.sort(membership.indices[membership.indptr[loc] : membership.indptr[loc + 1]])


def sketch_one(
    matrix, floor: np.ndarray, cells: np.ndarray, options: SketchOptions, *, covariates, seed: tuple[int, int]
) -> LocalitySketch:
    """The sketch of one locality; ``seed`` = (random_state, locality) makes it independent of run order."""
    block = rows_dense(matrix, cells)
    return locality_sketch(
        block,
        block > floor,
        rng=np.random.default_rng(seed),
        fdr=options.fdr,
        min_detected=options.min_detected,
        min_abs_r=options.min_abs_r,
        two_sided=options.two_sided,
        covariates=None if covariates is None else covariates[cells],
        max_partners=options.max_partners,
    )


def sketch_localities(
    matrix,
    membership: sp.csc_matrix,
    options: SketchOptions,
    *,
    covariates: np.ndarray | None = None,
    random_state: int = 0,
    progress: Callable[[], object] | None = None,
) -> list[LocalitySketch]:
    """Sketches of every locality (columns of ``membership``) of the cells x genes ``matrix``."""
    floor = column_floor(matrix)
    out = []
    for loc in range(membership.shape[1]):
        cells = locality_cells(membership, loc)
        out.append(sketch_one(matrix, floor, cells, options, covariates=covariates, seed=(random_state, loc)))
        if progress is not None:
            progress()
    return out
