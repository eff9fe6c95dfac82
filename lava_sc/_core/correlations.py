"""Per-locality gene-gene correlations, calibrated against a within-locality permutation null.

For a locality (n cells x G genes) we compute the observed correlation matrix of the genes tested
there and the correlation matrix of the same genes after shuffling their values across the
locality's cells: one random permutation of the cells, then a different cyclic shift for each gene,
so every pair of genes is paired through a random derangement of the cells (pairs whose shifts
coincide get one more shift). The null matrix has exactly the same pairs with the same marginals
(size, sparsity, skew), so it is an exchangeable null for every pair. Within strata of pairs that
share a detection class, the threshold is the smallest t with ``(1 + #null >= t) / #observed >= t
<= fdr`` (the knockoff+ estimate): counted over all localities together by default
(:func:`pool_localities`, FDR over all (locality, pair) discoveries), or per locality and stratum
(``SketchOptions(pooled=False)``). Before the test each locality's dense low-rank structure is
projected out of both matrices (:mod:`lava_sc._core.dense`, ``SketchOptions(remove_dense=True)``).
With pooled thresholds a locality may draw ``SketchOptions(n_null=R)`` independent permutations; the
estimate is then ``(1 + #null >= t) / R / #observed >= t`` over the R null matrices (permutation
p-values with R draws per test, Phipson & Smyth 2010), which steadies thresholds that would rest on
tens of null exceedances.
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

from .blas import blas_threads, one_blas_thread, syrk_upper
from .dense import null_copy, remove_dense
from .expression import as_sketch_matrix, column_floor, gather_rows
from .scan import (
    LEVELS_SD,
    N_BINS,
    pooled_candidates,
    pooled_null_codes,
    pooled_thresholds,
    scan_levels,
    significant_pairs,
    strongest_partners,
)

#: detection-fraction edges of the gene classes that define the null strata
DETECTION_EDGES = (0.25, 0.6)
#: localities per unit of work handed to a thread
LOCALITIES_PER_CHUNK = 8
#: pooled thresholds are searched from this many null standard deviations (1 / sqrt(n)) up
POOL_START_SD = 3.0
assert POOL_START_SD in LEVELS_SD
#: pair strata: detection class of each gene (the strata are pairs of classes)
N_STRATA = (len(DETECTION_EDGES) + 1) ** 2


@dataclass
class LocalitySketch:
    """Significant pairs of one locality (gene indices into the tested gene list)."""

    gene_a: np.ndarray
    gene_b: np.ndarray
    r: np.ndarray
    n_tests: int
    n_null_exceed: int
    n_dense: int = 0


@dataclass
class LocalityCandidates:
    """One locality's share of a pooled test (see :func:`pool_localities`): the observed pairs at or
    above the pooled start level with their strata, and the null statistics' codes."""

    gene_a: np.ndarray
    gene_b: np.ndarray
    r: np.ndarray
    stat: np.ndarray  # the test statistic: r, or its leave-one-out value (SketchOptions.robust)
    stratum: np.ndarray
    null_codes: np.ndarray
    start_bin: int
    n_tests: int
    n_dense: int = 0


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


_EDGES = np.asarray(DETECTION_EDGES, dtype=np.float64)


@numba.njit(cache=True, nogil=True)
def _tested_genes(norm, amax, det_frac, n, min_detected, edges):
    """The tested genes (varying, detected in at least ``min_detected`` of the cells), stably sorted
    by detection class, the class bounds in that order, and each gene's 1 / norm (0 if constant)."""
    n_genes = len(norm)
    inv_norm = np.zeros(n_genes)
    klass = np.searchsorted(edges, det_frac, side="right")
    bounds = np.zeros(len(edges) + 2, dtype=np.int64)
    tested = np.zeros(n_genes, dtype=np.bool_)
    for g in range(n_genes):
        if norm[g] > 1e-6 * max(amax[g], 1e-12) * np.sqrt(n):
            inv_norm[g] = 1.0 / norm[g]
            tested[g] = det_frac[g] >= min_detected
            bounds[klass[g] + 1] += tested[g]
    bounds = np.cumsum(bounds)
    order = np.empty(bounds[-1], dtype=np.int64)
    fill = bounds[:-1].copy()
    for g in range(n_genes):
        if tested[g]:
            order[fill[klass[g]]] = g
            fill[klass[g]] += 1
    return order, bounds, inv_norm


@numba.njit(cache=True, nogil=True, fastmath=True)
def _column_stats(block, floor):
    """Per column: mean, centred norm, fraction above ``floor`` and largest absolute value (float64).

    fastmath lets the reductions vectorise (summation order is then the compiler's, fixed per build).
    """
    n, g = block.shape
    mean = np.zeros(g)
    norm = np.zeros(g)
    det = np.zeros(g)
    amax = np.zeros(g)
    for j in range(g):
        col = block[:, j]
        s = 0.0
        d = 0
        m = np.float32(0.0)
        f = floor[j]
        for r in range(n):
            v = col[r]
            s += v
            d += v > f
            a = abs(v)
            m = a if a > m else m
        mu = s / max(n, 1)
        ss = 0.0
        for r in range(n):
            x = col[r] - mu
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
    return pool_localities([sketch_block(block, options, rng=rng, det_frac=det_frac, covariates=covariates)], options)[
        0
    ]


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
    det_frac = det if det_frac is None else np.asarray(det_frac, dtype=np.float64)
    if covariates is not None:
        z_all, valid = standardise(block, covariates)
        block = np.asfortranarray(z_all)
        mean, norm, amax = np.zeros(g), valid.astype(np.float64), np.zeros(g)
    order, bounds, inv_norm = _tested_genes(norm, amax, det_frac, n, options.min_detected, _EDGES)
    gt = len(order)
    n_tests = gt * (gt - 1) // 2
    perm = rng.permutation(n)
    if gt < 2 or n < 2:
        empty = np.zeros(0, dtype=np.int32)
        return LocalitySketch(empty, empty.copy(), np.zeros(0, dtype=np.float32), n_tests, 0)
    z, z_null = ws.get("z", (n, gt)), ws.get("z_null", (n, gt))
    pi2 = np.concatenate([perm, perm])
    _write_tested(block, mean, inv_norm, order, pi2, z, z_null)
    dense = remove_dense(z, z_null, pi2, rng) if options.remove_dense else np.zeros((n, 0), dtype=np.float32)
    n_dense = int(dense.shape[1])
    c_obs, c_null = ws.get("c_obs", (gt, gt)), ws.get("c_null", (gt, gt))
    syrk_upper(z, c_obs)
    syrk_upper(z_null, c_null)
    level_bins, levels = scan_levels(n, int(round(options.min_abs_r * N_BINS)))
    if options.pooled:
        start = int(np.searchsorted(level_bins, np.ceil(POOL_START_SD * N_BINS / np.sqrt(n)), side="left"))
        start = min(start, len(level_bins) - 1)
        flags = (options.two_sided, options.robust)
        ia, ib, r, stat, stratum, null_codes, start_bin = pooled_candidates(
            c_obs, c_null, z, z_null, bounds, order, levels, level_bins, start, *flags
        )
        copies = [null_codes]
        for _ in range(options.n_null - 1):  # further independent permutations of the same locality
            pi2 = np.concatenate([rng.permutation(n)] * 2)
            null_copy(z, pi2, dense, z_null)
            syrk_upper(z_null, c_null)
            copies.append(pooled_null_codes(c_null, z_null, bounds, levels, level_bins, start, *flags))
        null_codes = np.concatenate(copies) if len(copies) > 1 else null_codes
        return LocalityCandidates(ia, ib, r, stat, stratum, null_codes, int(start_bin), int(n_tests), n_dense)
    ia, ib, r, null_at = significant_pairs(
        c_obs, c_null, z, z_null, bounds, order, levels, level_bins, options.fdr, options.two_sided, options.robust
    )
    return finish_sketch(ia, ib, r, int(n_tests), null_at, options, n_dense)


def finish_sketch(ia, ib, r, n_tests: int, null_at: int, options: SketchOptions, n_dense: int = 0) -> LocalitySketch:
    """A locality's significant pairs after the partner filter (``max_partners``)."""
    if options.max_partners is not None and len(r):
        keep = strongest_partners(ia, ib, r, options.max_partners)
        ia, ib, r = ia[keep], ib[keep], r[keep]
    return LocalitySketch(ia, ib, r, int(n_tests), int(null_at), n_dense)


def pool_localities(per_locality: list, options: SketchOptions) -> list[LocalitySketch]:
    """Significant pairs of every locality under thresholds pooled over all localities.

    With ``options.pooled`` each locality returns :class:`LocalityCandidates`; the knockoff+
    threshold of each pair stratum is then set over the histograms of every locality together
    (:func:`~lava_sc._core.scan.pooled_thresholds`), so the false discovery rate is controlled over
    all (locality, pair) discoveries. Sketches (already final) pass through unchanged.
    """
    cands = [c for c in per_locality if isinstance(c, LocalityCandidates)]
    if not cands:
        return per_locality
    start_bin = max(c.start_bin for c in cands)
    codes = {id(c): _codes(c.stat, c.stratum, options.two_sided) for c in cands}
    obs_codes = np.concatenate(list(codes.values()))
    null_codes = np.concatenate([c.null_codes for c in cands])
    keep_obs = obs_codes % N_BINS >= start_bin
    keep_null = null_codes % N_BINS >= start_bin
    first, _ = pooled_thresholds(
        obs_codes[keep_obs], null_codes[keep_null], N_STRATA, options.fdr, start_bin, null_copies=options.n_null
    )
    out = []
    for c in per_locality:
        if not isinstance(c, LocalityCandidates):
            out.append(c)
            continue
        keep = codes[id(c)] % N_BINS >= first[c.stratum]
        null_at = round(np.sum(c.null_codes % N_BINS >= first[c.null_codes // N_BINS]) / options.n_null)
        out.append(finish_sketch(c.gene_a[keep], c.gene_b[keep], c.r[keep], c.n_tests, null_at, options, c.n_dense))
    return out


def _codes(r: np.ndarray, stratum: np.ndarray, two_sided: bool) -> np.ndarray:
    stat = np.abs(r) if two_sided else r
    bins = np.minimum((stat.astype(np.float64) * N_BINS).astype(np.int64), N_BINS - 1)
    return stratum.astype(np.int64) * N_BINS + bins


@dataclass(frozen=True)
class SketchOptions:
    """Test settings shared by every locality (see :func:`locality_sketch`)."""

    fdr: float = 0.05
    min_detected: float = 0.1
    min_abs_r: float = 0.1
    two_sided: bool = False
    max_partners: int | None = 10
    remove_dense: bool = True
    pooled: bool = True
    robust: bool = True
    n_null: int = 1  # independent null permutations per locality (pooled thresholds only)


def locality_cells(membership: sp.csc_matrix, loc: int) -> np.ndarray:
    """Sorted member cells of one locality (a column of the cells x localities membership)."""
    return np.sort(membership.indices[membership.indptr[loc] : membership.indptr[loc + 1]])


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
        threads = blas_threads()
        return max(1, threads) if threads is not None else max(1, os.cpu_count() or 1)
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
    with one_blas_thread():
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
    return pool_localities(out, options)
