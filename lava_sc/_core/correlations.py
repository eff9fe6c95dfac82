"""Per-locality gene-gene correlations, calibrated against a within-locality permutation null.

For a locality (n cells x G genes) we compute the observed correlation matrix of the genes tested
there and the correlation matrix of the same genes after shuffling their values across the
locality's cells: one random permutation of the cells, then a different cyclic shift for each gene,
so every pair of genes is paired through a random derangement of the cells (pairs whose shifts
coincide get one more shift). The null matrix has exactly the same pairs with the same marginals
(size, sparsity, skew), so it is an exchangeable null for every pair. Within strata of pairs that
share a detection class, the threshold is the smallest t with ``(1 + #null >= t) / #observed >= t
<= fdr`` (the knockoff+ estimate), which controls the false discovery rate per locality and stratum.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass

import numba
import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_info, threadpool_limits

from .blas import syrk_upper

#: detection-fraction edges of the gene classes that define the null strata
DETECTION_EDGES = (0.25, 0.6)
N_BINS = 1000
#: localities per unit of work handed to a thread
LOCALITIES_PER_CHUNK = 8


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


def detection_class(detected_fraction: np.ndarray) -> np.ndarray:
    return np.searchsorted(np.asarray(DETECTION_EDGES), detected_fraction, side="right").astype(np.int64)


@numba.njit(cache=True, nogil=True)
def _gather_csr(indptr, indices, data, rows, out):
    """Rows of a CSR matrix into the dense (Fortran-ordered) ``out``."""
    out[:, :] = 0.0
    for r in range(len(rows)):
        c = rows[r]
        for p in range(indptr[c], indptr[c + 1]):
            out[r, indices[p]] = data[p]


@numba.njit(cache=True, nogil=True)
def _gather_dense(matrix, rows, out):
    for r in range(len(rows)):
        out[r, :] = matrix[rows[r], :]


@numba.njit(cache=True, nogil=True)
def _column_stats(block, floor):
    """Per column: mean, centred norm, fraction above ``floor`` and largest absolute value (float64)."""
    n, g = block.shape
    mean = np.zeros(g)
    norm = np.zeros(g)
    det = np.zeros(g)
    amax = np.zeros(g)
    for j in range(g):
        s = 0.0
        d = 0
        m = 0.0
        for r in range(n):
            v = block[r, j]
            s += v
            if v > floor[j]:
                d += 1
            if abs(v) > m:
                m = abs(v)
        mu = s / max(n, 1)
        ss = 0.0
        for r in range(n):
            x = block[r, j] - mu
            ss += x * x
        mean[j] = mu
        norm[j] = np.sqrt(ss)
        det[j] = d / max(n, 1)
        amax[j] = m
    return mean, norm, det, amax


@numba.njit(cache=True, nogil=True)
def _write_tested(block, mean, inv_norm, order, pi2, z, z_null):
    """Standardise the tested columns into ``z`` and their null copies into ``z_null``.

    The null copy of the k-th tested column is that column with its rows permuted by ``pi`` and then
    cyclically shifted by ``k mod n`` (``pi2`` is ``pi`` repeated twice, so no modulo is needed).
    Two columns with different shifts are paired by a uniformly relabelled derangement of the
    locality's cells: a permutation null that needs one permutation per locality, not one per gene.
    """
    n = block.shape[0]
    for k in range(len(order)):
        g = order[k]
        mu = mean[g]
        s = inv_norm[g]
        for r in range(n):
            z[r, k] = (block[r, g] - mu) * s
        shift = k % n
        for r in range(n):
            z_null[r, k] = z[pi2[r + shift], k]


@numba.njit(cache=True, nogil=True)
def _scan(c_obs, c_null, z_null, bounds, min_bin, n_bins, two_sided):
    """One pass over the upper triangles of the observed and null Gram matrices (Fortran order).

    Histograms, per pair stratum, of the statistics at or above ``min_bin`` (lower values can never
    pass the threshold), and the observed candidates among them. Genes are sorted by stratum
    (stratum ``a`` holds positions ``bounds[a]:bounds[a + 1]``), so for i < j the pair stratum is
    ``a(i) * n_strata + a(j)`` and is constant over a run of i. Pairs whose null columns got the same
    cyclic shift (j - i a multiple of n) were paired with themselves in ``c_null``; their null value
    is replaced by one more shift of gene j.
    """
    n_strata = len(bounds) - 1
    n = z_null.shape[0]
    lo = float(min_bin)
    h_obs = np.zeros((n_strata * n_strata, n_bins), dtype=np.int64)
    h_null = np.zeros((n_strata * n_strata, n_bins), dtype=np.int64)
    cap = 4096
    ci = np.empty(cap, dtype=np.int32)
    cj = np.empty(cap, dtype=np.int32)
    cv = np.empty(cap, dtype=np.float32)
    cs = np.empty(cap, dtype=np.int32)
    scratch = np.empty(c_obs.shape[0] + 1, dtype=np.float64)
    k = 0
    for b in range(n_strata):
        for j in range(bounds[b], bounds[b + 1]):
            if k + j + 1 > cap:  # room for every entry of this column, so the inner loops never grow
                cap = max(2 * cap, k + j + 1)
                ci, cj, cv, cs = _grow(ci, k, cap), _grow(cj, k, cap), _grow(cv, k, cap), _grow(cs, k, cap)
            for a in range(b + 1):
                s = a * n_strata + b
                i0, i1 = bounds[a], min(bounds[a + 1], j)
                k = _compact_candidates(c_obs, j, i0, i1, lo, n_bins, two_sided, ci, cv, k, cj, cs, s, h_obs)
                _null_histogram(c_null, j, i0, i1, lo, n_bins, two_sided, scratch, h_null[s])
            _fix_same_shift(c_null, z_null, bounds, j, b, n, lo, n_bins, two_sided, h_null)
    return h_obs, h_null, ci[:k], cj[:k], cv[:k], cs[:k]


@numba.njit(cache=True, nogil=True, inline="always")
def _compact_candidates(c_obs, j, i0, i1, lo, n_bins, two_sided, ci, cv, k, cj, cs, s, h_obs):
    """Append the entries (i0 <= i < i1, j) at or above ``lo`` to the candidates, then histogram them.

    Branch-free: every entry is written and the write position only advances for a candidate, so
    the loop runs at memory speed whatever the fraction of candidates.
    """
    k0 = k
    for i in range(i0, i1):
        v = c_obs[i, j]
        stat = abs(v) if two_sided else v
        ci[k] = i
        cv[k] = v
        k += stat * n_bins >= lo
    for q in range(k0, k):
        cj[q] = j
        cs[q] = s
        stat = abs(cv[q]) if two_sided else cv[q]
        h_obs[s, min(int(stat * n_bins), n_bins - 1)] += 1
    return k


@numba.njit(cache=True, nogil=True, inline="always")
def _null_histogram(c_null, j, i0, i1, lo, n_bins, two_sided, scratch, hist):
    """Add the null entries (i0 <= i < i1, j) at or above ``lo`` to ``hist`` (branch-free compaction first)."""
    m = 0
    for i in range(i0, i1):
        w = abs(c_null[i, j]) if two_sided else c_null[i, j]
        w = w * n_bins
        scratch[m] = w
        m += w >= lo
    for q in range(m):
        hist[min(int(scratch[q]), n_bins - 1)] += 1


@numba.njit(cache=True, nogil=True)
def _fix_same_shift(c_null, z_null, bounds, j, b, n, lo, n_bins, two_sided, h_null):
    """Replace the null entries (i, j) with j - i a multiple of n by gene j shifted one cell further."""
    n_strata = len(bounds) - 1
    i = j - n
    while i >= 0:
        a = 0
        while bounds[a + 1] <= i:
            a += 1
        s = a * n_strata + b
        w = abs(c_null[i, j]) if two_sided else c_null[i, j]
        if w * n_bins >= lo:
            h_null[s, min(int(w * n_bins), n_bins - 1)] -= 1
        acc = z_null[n - 1, i] * z_null[0, j]
        for r in range(n - 1):
            acc += z_null[r, i] * z_null[r + 1, j]
        if two_sided:
            acc = abs(acc)
        if acc * n_bins >= lo:
            h_null[s, min(int(acc * n_bins), n_bins - 1)] += 1
        i -= n


@numba.njit(cache=True, nogil=True)
def _grow(a, k, cap):
    out = np.empty(cap, dtype=a.dtype)
    out[:k] = a[:k]
    return out


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
        Source of the null's permutation.
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
    options = SketchOptions(
        fdr=fdr, min_detected=min_detected, min_abs_r=min_abs_r, two_sided=two_sided, max_partners=max_partners
    )
    block = np.asfortranarray(values, dtype=np.float32)
    det_frac = np.asarray(detected, dtype=bool).mean(axis=0) if len(block) else np.zeros(block.shape[1])
    return sketch_block(block, options, rng=rng, det_frac=det_frac, covariates=covariates)


class Workspace:
    """Reusable float32 buffers of one thread, so no locality page-faults fresh G x G arrays."""

    def __init__(self):
        self._buffers: dict[str, np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, int]) -> np.ndarray:
        """A Fortran-ordered float32 array of ``shape`` (contents undefined)."""
        size = int(np.prod(shape))
        buf = self._buffers.get(name)
        if buf is None or buf.size < size:
            buf = self._buffers[name] = np.empty(max(size, 1), dtype=np.float32)
        return buf[:size].reshape(shape, order="F")


_THREAD = threading.local()


def thread_workspace() -> Workspace:
    if not hasattr(_THREAD, "workspace"):
        _THREAD.workspace = Workspace()
    return _THREAD.workspace


def release_thread_workspace() -> None:
    """Drop this thread's buffers (two G x G matrices: 200 MB at 5,000 genes) once a run is over."""
    _THREAD.__dict__.pop("workspace", None)


def sketch_block(
    block: np.ndarray,
    options: SketchOptions,
    *,
    rng: np.random.Generator,
    floor: np.ndarray | None = None,
    det_frac: np.ndarray | None = None,
    covariates: np.ndarray | None = None,
    workspace: Workspace | None = None,
) -> LocalitySketch:
    """Significant gene pairs of one locality from its dense, Fortran-ordered float32 ``block``.

    A gene is detected in a cell when above its ``floor`` (or pass the detected fractions
    ``det_frac`` directly). Only the tested genes (varying, detected in at least ``min_detected``
    of the cells) enter the two Gram matrices, sorted by detection class so that each pair's
    stratum follows from its genes' positions.
    """
    ws = workspace or thread_workspace()
    n, g = block.shape
    floor = np.full(g, np.inf, dtype=np.float32) if floor is None else np.asarray(floor, dtype=np.float32)
    mean, norm, det, amax = _column_stats(block, floor)
    det_frac = det if det_frac is None else det_frac
    if covariates is None:
        valid = norm > 1e-6 * np.maximum(amax, 1e-12) * np.sqrt(n)
    else:
        z_all, valid = standardise(block, covariates)
        block = np.asfortranarray(z_all)
        mean, norm = np.zeros(g), np.ones(g)
    tested = valid & (det_frac >= options.min_detected)
    stratum = detection_class(det_frac)
    order = np.flatnonzero(tested)
    order = order[np.argsort(stratum[order], kind="stable")]
    gt = len(order)
    n_tests = gt * (gt - 1) // 2
    perm = rng.permutation(n)
    if gt < 2 or n < 2:
        empty = np.zeros(0, dtype=np.int32)
        return LocalitySketch(empty, empty.copy(), np.zeros(0, dtype=np.float32), n_tests, 0)
    inv_norm = np.where(valid, 1.0 / np.where(valid, norm, 1.0), 0.0)
    z, z_null = ws.get("z", (n, gt)), ws.get("z_null", (n, gt))
    _write_tested(block, mean, inv_norm, order, np.concatenate([perm, perm]), z, z_null)
    c_obs, c_null = ws.get("c_obs", (gt, gt)), ws.get("c_null", (gt, gt))
    syrk_upper(z, c_obs)
    syrk_upper(z_null, c_null)
    min_bin = int(round(options.min_abs_r * N_BINS))
    lo = max(float(min_bin), 1e-30)  # a zero statistic is never counted
    bounds = np.searchsorted(stratum[order], np.arange(len(DETECTION_EDGES) + 2)).astype(np.int64)
    h_obs, h_null, ci, cj, cv, cs = _scan(c_obs, c_null, z_null, bounds, lo, N_BINS, options.two_sided)
    first_bin, null_at = knockoff_thresholds(h_obs, h_null, options.fdr, min_bin)
    stat = np.abs(cv) if options.two_sided else cv
    keep = np.minimum((stat.astype(np.float64) * N_BINS).astype(np.int64), N_BINS - 1) >= first_bin[cs]
    a, b, r = order[ci[keep]], order[cj[keep]], cv[keep]
    ia, ib = np.minimum(a, b).astype(np.int32), np.maximum(a, b).astype(np.int32)
    sort = np.lexsort((ia, ib))
    ia, ib, r = ia[sort], ib[sort], r[sort]
    if options.max_partners is not None and len(r):
        keep = strongest_partners(ia, ib, r, options.max_partners)
        ia, ib, r = ia[keep], ib[keep], r[keep]
    return LocalitySketch(ia, ib, r, int(n_tests), null_at)


@dataclass(frozen=True)
class SketchOptions:
    """Test settings shared by every locality (see :func:`locality_sketch`)."""

    fdr: float = 0.05
    min_detected: float = 0.1
    min_abs_r: float = 0.1
    two_sided: bool = False
    max_partners: int | None = 10


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


def gather_rows(matrix, rows: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``matrix[rows]`` (CSR float32 or C-ordered float32 array) into the Fortran-ordered ``out``."""
    rows = np.asarray(rows, dtype=np.int64)
    if sp.issparse(matrix):
        _gather_csr(matrix.indptr, matrix.indices, matrix.data, rows, out)
    else:
        _gather_dense(matrix, rows, out)
    return out


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


def locality_cells(membership: sp.csc_matrix, loc: int) -> np.ndarray:
    """Sorted member cells of one locality (a column of the cells x localities membership)."""
    return np.sort(membership.indices[membership.indptr[loc] : membership.indptr[loc + 1]])


def as_sketch_matrix(matrix):
    """The cells x genes matrix as CSR float32 or a C-ordered float32 array (no copy when it already is)."""
    if sp.issparse(matrix):
        return sp.csr_matrix(matrix, dtype=np.float32)
    return np.ascontiguousarray(matrix, dtype=np.float32)


def sketch_one(
    matrix, floor: np.ndarray, cells: np.ndarray, options: SketchOptions, *, covariates, seed: tuple[int, int]
) -> LocalitySketch:
    """The sketch of one locality; ``seed`` = (random_state, locality) makes it independent of run order.

    ``matrix`` is CSR float32 or a C-ordered float32 array (see :func:`as_sketch_matrix`).
    """
    ws = thread_workspace()
    block = gather_rows(matrix, cells, ws.get("block", (len(cells), matrix.shape[1])))
    return sketch_block(
        block,
        options,
        rng=np.random.default_rng(seed),
        floor=floor,
        covariates=None if covariates is None else covariates[cells],
        workspace=ws,
    )


def resolve_n_jobs(n_jobs: int | None) -> int:
    """Threads for the per-locality work: ``None`` follows the BLAS thread setting (threadpoolctl,
    ``OMP_NUM_THREADS``), ``-1`` means all cores."""
    if n_jobs is None:
        counts = [info["num_threads"] for info in threadpool_info() if info.get("user_api") == "blas"]
        return max(1, min(counts)) if counts else max(1, os.cpu_count() or 1)
    if n_jobs == -1:
        return max(1, os.cpu_count() or 1)
    return int(n_jobs)


def sketch_localities(
    matrix,
    membership: sp.csc_matrix,
    options: SketchOptions,
    *,
    covariates: np.ndarray | None = None,
    random_state: int = 0,
    progress: Callable[[], object] | None = None,
    n_jobs: int | None = None,
) -> list[LocalitySketch]:
    """Sketches of every locality (columns of ``membership``) of the cells x genes ``matrix``.

    Localities run in ``n_jobs`` threads, each with single-threaded BLAS, so the result is the same
    whatever the number of threads.
    """
    matrix = as_sketch_matrix(matrix)
    floor = column_floor(matrix)
    n_loc = membership.shape[1]
    out: list[LocalitySketch | None] = [None] * n_loc

    def run(locs: range) -> range:
        for loc in locs:
            cells = locality_cells(membership, loc)
            out[loc] = sketch_one(matrix, floor, cells, options, covariates=covariates, seed=(random_state, loc))
        return locs

    chunks = [range(s, min(s + LOCALITIES_PER_CHUNK, n_loc)) for s in range(0, n_loc, LOCALITIES_PER_CHUNK)]
    jobs = min(resolve_n_jobs(n_jobs), max(len(chunks), 1))
    with threadpool_limits(limits=1, user_api="blas"):
        if jobs == 1:
            done = map(run, chunks)
        else:
            pool = ThreadPoolExecutor(jobs, thread_name_prefix="lava")
            done = (f.result() for f in as_completed([pool.submit(run, c) for c in chunks]))
        try:
            for locs in done:
                for _ in locs if progress is not None else ():
                    progress()
        finally:
            if jobs > 1:
                pool.shutdown(wait=True, cancel_futures=True)
            release_thread_workspace()
    return out
