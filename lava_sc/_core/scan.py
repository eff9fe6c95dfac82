"""From the two Gram matrices of a locality to its significant pairs: scan, knockoff thresholds, selection.

The scan reads the upper triangles of the observed and the null Gram matrix (genes sorted by
detection stratum, Fortran order) in two passes:

1. Count, per pair stratum, the observed and the null statistics at or above a few *levels*
   (``min_abs_r`` and multiples of the null standard deviation 1/sqrt(n)): vectorised comparisons,
   no histogram. The level interval [L_m, L_m+1) cannot hold the stratum's knockoff threshold when
   even its most favourable estimate, (1 + #null >= L_m+1) / #observed >= L_m, is above the FDR;
   the stratum's *start* is the lowest level whose interval is not ruled out.
2. Histogram, and collect as candidates, only the statistics at or above the start: only column
   segments whose pass-1 count at the start level is not zero are read again, skipping blocks of
   entries whose maximum is below the start.

Bins below the start cannot hold the threshold, so the thresholds, the discoveries and the null
count at the threshold are exactly those of a full histogram from ``min_abs_r`` up; the second pass
touches few entries, because the start is usually several null standard deviations up.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numba
import numpy as np

#: histogram bins of the statistic in [0, 1]
N_BINS = 1000
#: levels (in null standard deviations, 1 / sqrt(n cells)) the first pass counts at, above min_abs_r
LEVELS_SD = (2.5, 3.0, 3.5, 4.5)
#: entries the second pass skips at once when none reaches the start
BLOCK = 16


@lru_cache(maxsize=64)
def scan_levels(n_cells: int, min_bin: int) -> tuple[np.ndarray, np.ndarray]:
    """The first pass's levels: in bins (int64, ascending, the first is ``min_bin``) and as float32.

    The float32 level ``t`` of bin level ``L`` is the smallest float32 with ``t * N_BINS >= L`` in
    float64, so ``stat >= t`` holds exactly when the statistic's bin is at least ``L``. A zero
    statistic is never counted (the first float32 level is positive even when ``min_bin`` is 0).
    Cached: callers must not write to the arrays.
    """
    sd_bins = N_BINS / math.sqrt(max(n_cells, 1))
    above = {math.ceil(k * sd_bins) for k in LEVELS_SD}
    bins = np.array(sorted({min_bin} | {b for b in above if min_bin < b < N_BINS - 1}), dtype=np.int64)
    levels = np.array([_float32_level(max(float(b), 1e-30)) for b in bins], dtype=np.float32)
    return bins, levels


def _float32_level(level: float) -> np.float32:
    t = np.float32(level / N_BINS)
    up, down = np.float32(np.inf), np.float32(-np.inf)
    while float(t) * N_BINS < level:
        t = np.nextafter(t, up)
    while float(np.nextafter(t, down)) * N_BINS >= level:
        t = np.nextafter(t, down)
    return t


@numba.njit(cache=True, nogil=True, inline="always")
def _stat(v, two_sided):
    return abs(v) if two_sided else v


@numba.njit(cache=True, nogil=True, inline="always")
def _count_levels(seg, levels, two_sided, counts, s, seg_counts):
    """``seg_counts[m] = #{stat(seg) >= levels[m]}``, added to ``counts[s, m]`` (a contiguous 1-d
    slice, so the loop vectorises)."""
    for m in range(len(levels)):
        t = levels[m]
        k = 0
        if two_sided:
            for i in range(len(seg)):
                k += abs(seg[i]) >= t
        else:
            for i in range(len(seg)):
                k += seg[i] >= t
        counts[s, m] += k
        seg_counts[m] = k


@numba.njit(cache=True, nogil=True, inline="always", fastmath=True)
def _block_max(seg, i, two_sided):
    mx = _stat(seg[i], two_sided)
    for q in range(1, BLOCK):
        v = _stat(seg[i + q], two_sided)
        mx = v if v > mx else mx
    return mx


@numba.njit(cache=True, nogil=True, inline="always")
def _tail_positions(seg, t, two_sided, idx):
    """Positions in ``seg`` whose statistic is at least ``t`` into ``idx``; returns their number."""
    k = 0
    i = 0
    n = len(seg)
    while i + BLOCK <= n:
        if _block_max(seg, i, two_sided) >= t:
            for q in range(BLOCK):
                idx[k] = i + q
                k += _stat(seg[i + q], two_sided) >= t
        i += BLOCK
    while i < n:
        idx[k] = i
        k += _stat(seg[i], two_sided) >= t
        i += 1
    return k


@numba.njit(cache=True, nogil=True, fastmath=True)
def _shifted_once_more(z_null, i, j):
    """Null correlation of genes i and j after shifting gene j one more cell."""
    n = z_null.shape[0]
    acc = z_null[n - 1, i] * z_null[0, j]
    for r in range(n - 1):
        acc += z_null[r, i] * z_null[r + 1, j]
    return acc


@numba.njit(cache=True, nogil=True)
def _stratum_of(bounds, i):
    a = 0
    while bounds[a + 1] <= i:
        a += 1
    return a


@numba.njit(cache=True, nogil=True)
def _count_pass(c_obs, c_null, z_null, bounds, levels, two_sided, observed=True):
    """Pass 1: per pair stratum, observed and null counts at or above each level, and the same per
    column segment (column j, row stratum a), so pass 2 reads only segments that reach the start.
    ``observed=False`` counts the null only (a further null copy of a locality already scanned).

    Pairs whose null columns got the same cyclic shift (j - i a multiple of n) were paired with
    themselves in ``c_null``; their null value is replaced by one more shift of gene j, and the
    replacements are returned as (stratum, old statistic, new statistic).
    """
    n_strata = len(bounds) - 1
    n_levels = len(levels)
    n = z_null.shape[0]
    obs = np.zeros((n_strata * n_strata, n_levels), dtype=np.int64)
    null = np.zeros((n_strata * n_strata, n_levels), dtype=np.int64)
    seg_obs = np.zeros((c_obs.shape[0], n_strata, n_levels), dtype=np.int32)
    seg_null = np.zeros((c_obs.shape[0], n_strata, n_levels), dtype=np.int32)
    n_fix = 0
    for j in range(c_obs.shape[0]):
        n_fix += j // n
    fix_s = np.empty(n_fix, dtype=np.int64)
    fix_ij = np.empty((n_fix, 2), dtype=np.int64)
    fix_old = np.empty(n_fix, dtype=np.float32)
    fix_new = np.empty(n_fix, dtype=np.float32)
    f = 0
    for b in range(n_strata):
        for j in range(bounds[b], bounds[b + 1]):
            for a in range(b + 1):
                i0, i1 = bounds[a], min(bounds[a + 1], j)
                if i1 > i0:
                    if observed:
                        _count_levels(c_obs[i0:i1, j], levels, two_sided, obs, a * n_strata + b, seg_obs[j, a])
                    _count_levels(c_null[i0:i1, j], levels, two_sided, null, a * n_strata + b, seg_null[j, a])
            i = j - n
            while i >= 0:
                s = _stratum_of(bounds, i) * n_strata + b
                old = _stat(c_null[i, j], two_sided)
                new = _stat(np.float32(_shifted_once_more(z_null, i, j)), two_sided)
                for m in range(n_levels):
                    null[s, m] += (new >= levels[m]) - (old >= levels[m])
                fix_s[f], fix_old[f], fix_new[f] = s, old, new
                fix_ij[f, 0], fix_ij[f, 1] = i, j
                f += 1
                i -= n
    return obs, null, seg_obs, seg_null, fix_s, fix_ij, fix_old, fix_new


@numba.njit(cache=True, nogil=True, fastmath=True)
def leave_one_out(z, i, j, shift, v, two_sided):
    """Statistic of pair (i, j) robust to one cell: its correlation after removing the cell whose
    removal lowers it most, ``min(r, min_c r_(-c))`` (two-sided: the same on ``|r|``, towards 0).

    ``r_(-c)`` is Pearson's r of columns ``i`` and ``j`` of ``z`` without row ``c`` (column ``j`` read
    ``shift`` rows on, cyclically, as the null's self-paired columns are), from the columns' sums:
    ``cov = (S_xy - x_c y_c) - (S_x - x_c)(S_y - y_c) / (n - 1)`` and likewise the variances. A pair
    carried by a single cell (a doublet, an outlier) falls to about 0; a pair spread over many cells
    keeps nearly all of ``r``. ``v`` is the pair's r from the Gram matrix.
    """
    n = z.shape[0]
    sx = 0.0
    sy = 0.0
    sxx = 0.0
    syy = 0.0
    sxy = 0.0
    for c in range(n):
        x = z[c, i]
        y = z[(c + shift) % n, j]
        sx += x
        sy += y
        sxx += x * x
        syy += y * y
        sxy += x * y
    sign = -1.0 if (two_sided and v < 0) else 1.0
    low = sign * v
    m = n - 1.0
    for c in range(n):
        x = z[c, i]
        y = z[(c + shift) % n, j]
        ax = sx - x
        ay = sy - y
        vx = (sxx - x * x) - ax * ax / m
        vy = (syy - y * y) - ay * ay / m
        if vx <= 0.0 or vy <= 0.0:  # a column that only one cell made vary
            return np.float32(0.0)
        r = sign * ((sxy - x * y) - ax * ay / m) / math.sqrt(vx * vy)
        low = r if r < low else low
    if low < 0.0:
        low = 0.0
    return np.float32(sign * low)


@numba.njit(cache=True, nogil=True)
def _starts(obs, null, fdr):
    """Per stratum, the index of the lowest level whose interval is not ruled out (see module doc)."""
    n_strata, n_levels = obs.shape
    start = np.zeros(n_strata, dtype=np.int64)
    for s in range(n_strata):
        m = 0
        while m < n_levels - 1 and 1.0 + null[s, m + 1] > fdr * obs[s, m] * (1.0 + 1e-9):
            m += 1
        start[s] = m
    return start


@numba.njit(cache=True, nogil=True)
def _scan(
    c_obs,
    c_null,
    z_obs,
    z_null,
    bounds,
    levels,
    level_bins,
    n_bins,
    two_sided,
    fdr,
    robust,
    forced_start=-1,
    observed=True,
):
    """Histograms (from each stratum's start up), observed candidates and start bins of one locality.

    ``forced_start >= 0`` starts every stratum at that level instead of the lowest level not ruled
    out by this locality's own counts (pooled thresholds are set over all localities).
    ``observed=False`` (with ``forced_start``) reads the null only: no observed counts or candidates.

    With ``robust`` the statistic of every pair at or above the start, observed and null alike, is
    its :func:`leave_one_out` value (``z_obs`` / ``z_null``: the columns behind the two Gram
    matrices); the start is still found on r, which the robust statistic never exceeds.

    Returns ``h_obs``, ``h_null`` (strata x bins), the candidates' row, column, r, statistic and
    stratum, and the start bin of each stratum (bins below it were not histogrammed and cannot hold
    the threshold).
    """
    n_strata = len(bounds) - 1
    obs, null, seg_obs, seg_null, fix_s, fix_ij, fix_old, fix_new = _count_pass(
        c_obs, c_null, z_null, bounds, levels, two_sided, observed
    )
    start = _starts(obs, null, fdr)
    if forced_start >= 0:
        start[:] = forced_start
    t_start = levels[start]
    n_cand = 0
    for s in range(len(start)):
        n_cand += obs[s, start[s]]
    h_obs = np.zeros((n_strata * n_strata, n_bins), dtype=np.int64)
    h_null = np.zeros((n_strata * n_strata, n_bins), dtype=np.int64)
    ci = np.empty(n_cand, dtype=np.int32)
    cj = np.empty(n_cand, dtype=np.int32)
    cv = np.empty(n_cand, dtype=np.float32)
    ct = np.empty(n_cand, dtype=np.float32)
    cs = np.empty(n_cand, dtype=np.int32)
    idx = np.empty(c_obs.shape[0] + BLOCK, dtype=np.int64)
    k = 0
    for b in range(n_strata):
        for j in range(bounds[b], bounds[b + 1]):
            for a in range(b + 1):
                s = a * n_strata + b
                i0, i1 = bounds[a], min(bounds[a + 1], j)
                if seg_obs[j, a, start[s]] > 0:
                    seg = c_obs[i0:i1, j]
                    for q in range(_tail_positions(seg, t_start[s], two_sided, idx)):
                        v = seg[idx[q]]
                        t = leave_one_out(z_obs, i0 + idx[q], j, 0, v, two_sided) if robust else v
                        ci[k], cj[k], cv[k], ct[k], cs[k] = i0 + idx[q], j, v, t, s
                        h_obs[s, min(int(_stat(t, two_sided) * n_bins), n_bins - 1)] += 1
                        k += 1
                if seg_null[j, a, start[s]] > 0:
                    seg = c_null[i0:i1, j]
                    for q in range(_tail_positions(seg, t_start[s], two_sided, idx)):
                        t = seg[idx[q]]
                        if robust:
                            t = leave_one_out(z_null, i0 + idx[q], j, 0, t, two_sided)
                        h_null[s, min(int(_stat(t, two_sided) * n_bins), n_bins - 1)] += 1
    for q in range(len(fix_s)):
        s = fix_s[q]
        old, new = fix_old[q], fix_new[q]
        if old >= t_start[s]:
            if robust:
                old = _stat(
                    leave_one_out(z_null, fix_ij[q, 0], fix_ij[q, 1], 0, c_null[fix_ij[q, 0], fix_ij[q, 1]], two_sided),
                    two_sided,
                )
            h_null[s, min(int(old * n_bins), n_bins - 1)] -= 1
        if new >= t_start[s]:
            if robust:
                v = _shifted_once_more(z_null, fix_ij[q, 0], fix_ij[q, 1])
                new = _stat(leave_one_out(z_null, fix_ij[q, 0], fix_ij[q, 1], 1, v, two_sided), two_sided)
            h_null[s, min(int(new * n_bins), n_bins - 1)] += 1
    return h_obs, h_null, ci[:k], cj[:k], cv[:k], ct[:k], cs[:k], level_bins[start]  # k == n_cand


@numba.njit(cache=True, nogil=True)
def _knockoff(h_obs, h_null, fdr, start, null_copies=1):
    n_strata, n_bins = h_obs.shape
    first = np.full(n_strata, n_bins, dtype=np.int64)
    null_at = 0
    for s in range(n_strata):
        obs_tail, null_tail, best_null = 0, 0, 0
        for b in range(n_bins - 1, start[s] - 1, -1):
            obs_tail += h_obs[s, b]
            null_tail += h_null[s, b]
            if obs_tail > 0 and (1.0 + null_tail) / null_copies / obs_tail <= fdr:
                first[s], best_null = b, null_tail
        if first[s] < n_bins:
            null_at += best_null
    return first, null_at


def knockoff_thresholds(
    h_obs: np.ndarray, h_null: np.ndarray, fdr: float, min_bin, null_copies: int = 1
) -> tuple[np.ndarray, int]:
    """First histogram bin per stratum at which (1 + null exceedances) / observed exceedances <= fdr.

    Only bins at or above ``min_bin`` (one int, or one per stratum) qualify. Strata where no
    threshold qualifies get ``n_bins`` (nothing selected). Also returns the number of null
    exceedances at the chosen thresholds (an estimate of false discoveries). ``h_null`` may hold
    ``R = null_copies`` independent null draws of the same tests; the estimate is then
    ``(1 + #null) / R / #observed``, the permutation p-value's ``(1 + #null >= t) / (R T + 1)``
    (Phipson & Smyth 2010) times the ``T`` tests, which for ``R = 1`` is knockoff+'s.
    """
    start = np.broadcast_to(np.asarray(min_bin, dtype=np.int64), (h_obs.shape[0],))
    first, null_at = _knockoff(h_obs, h_null, float(fdr), np.ascontiguousarray(start), int(null_copies))
    return first, int(null_at)


@numba.njit(cache=True, nogil=True)
def select_pairs(ci, cj, cv, ct, cs, first, order, n_bins, two_sided):
    """Candidates whose statistic ``ct`` is at or above their stratum's threshold, as gene indices
    (``order`` maps tested positions to genes) with ``gene_a < gene_b``, sorted by ``(gene_b,
    gene_a)``, with their r ``cv``."""
    keep = np.empty(len(cv), dtype=np.bool_)
    for q in range(len(cv)):
        keep[q] = min(int(_stat(ct[q], two_sided) * n_bins), n_bins - 1) >= first[cs[q]]
    n_keep = keep.sum()
    ia = np.empty(n_keep, dtype=np.int32)
    ib = np.empty(n_keep, dtype=np.int32)
    r = np.empty(n_keep, dtype=np.float32)
    key = np.empty(n_keep, dtype=np.int64)
    width = np.int64(order.max()) + 1 if len(order) else 1
    k = 0
    for q in range(len(cv)):
        if keep[q]:
            a, b = order[ci[q]], order[cj[q]]
            ia[k], ib[k], r[k] = min(a, b), max(a, b), cv[q]
            key[k] = np.int64(ib[k]) * width + ia[k]
            k += 1
    sort = np.argsort(key)
    return ia[sort], ib[sort], r[sort]


@numba.njit(cache=True, nogil=True)
def significant_pairs(c_obs, c_null, z_obs, z_null, bounds, order, levels, level_bins, fdr, two_sided, robust):
    """Scan, knockoff thresholds and selection of one locality in one call: the significant pairs
    (``gene_a < gene_b``, sorted by ``(gene_b, gene_a)``), their r, and the null count at the
    thresholds."""
    h_obs, h_null, ci, cj, cv, ct, cs, start = _scan(
        c_obs, c_null, z_obs, z_null, bounds, levels, level_bins, N_BINS, two_sided, fdr, robust
    )
    first, null_at = _knockoff(h_obs, h_null, fdr, start)
    ia, ib, r = select_pairs(ci, cj, cv, ct, cs, first, order, N_BINS, two_sided)
    return ia, ib, r, null_at


@numba.njit(cache=True, nogil=True)
def pooled_candidates(c_obs, c_null, z_obs, z_null, bounds, order, levels, level_bins, start_level, two_sided, robust):
    """One locality's share of a pooled test: every observed pair at or above ``levels[start_level]``
    (gene indices ``gene_a < gene_b``, r, stratum) and the null statistics' codes
    ``stratum * N_BINS + bin`` from the same level up. The thresholds are set later over the
    histograms of all localities (:func:`pooled_thresholds`)."""
    h_obs, h_null, ci, cj, cv, ct, cs, start = _scan(
        c_obs, c_null, z_obs, z_null, bounds, levels, level_bins, N_BINS, two_sided, 1.0, robust, start_level
    )
    null_codes = _codes_of(h_null)
    ia = np.empty(len(cv), dtype=np.int32)
    ib = np.empty(len(cv), dtype=np.int32)
    key = np.empty(len(cv), dtype=np.int64)
    width = np.int64(order.max()) + 1 if len(order) else 1
    for q in range(len(cv)):
        a, b = order[ci[q]], order[cj[q]]
        ia[q], ib[q] = min(a, b), max(a, b)
        key[q] = np.int64(ib[q]) * width + ia[q]
    sort = np.argsort(key)
    return ia[sort], ib[sort], cv[sort], ct[sort], cs[sort], null_codes, start[0]


@numba.njit(cache=True, nogil=True)
def pooled_null_codes(c_null, z_null, bounds, levels, level_bins, start_level, two_sided, robust):
    """The null codes of :func:`pooled_candidates` alone, for a further null copy of a locality."""
    h_null = _scan(
        c_null, c_null, z_null, z_null, bounds, levels, level_bins, N_BINS, two_sided, 1.0, robust, start_level, False
    )[1]
    return _codes_of(h_null)


@numba.njit(cache=True, nogil=True)
def _codes_of(h_null):
    """``stratum * N_BINS + bin`` of every count of a strata x bins histogram."""
    codes = np.empty(h_null.sum(), dtype=np.int32)
    k = 0
    for s in range(h_null.shape[0]):
        for b in range(h_null.shape[1]):
            for _ in range(h_null[s, b]):
                codes[k] = s * N_BINS + b
                k += 1
    return codes


def pooled_thresholds(
    obs_codes: np.ndarray, null_codes: np.ndarray, n_strata: int, fdr: float, start_bin: int, null_copies: int = 1
):
    """Knockoff+ thresholds per stratum over the pooled histograms of all localities.

    ``obs_codes`` / ``null_codes`` are ``stratum * N_BINS + bin`` of every observed / null statistic at
    or above ``start_bin``. The threshold of a stratum is the smallest bin ``t >= start_bin`` with
    ``(1 + #null >= t) / #observed >= t <= fdr``, counted over every locality: the false discovery
    rate is controlled over all (locality, pair) discoveries, so a program whose pairs are too few to
    pass in one locality (fewer than 1 / fdr) is found where it recurs. With ``null_copies``
    independent permutations per locality the estimate is ``(1 + #null) / null_copies / #observed``.
    """
    size = n_strata * N_BINS
    h_obs = np.bincount(obs_codes, minlength=size).reshape(n_strata, N_BINS)
    h_null = np.bincount(null_codes, minlength=size).reshape(n_strata, N_BINS)
    return knockoff_thresholds(h_obs, h_null, fdr, start_bin, null_copies)


@numba.njit(cache=True, nogil=True)
def strongest_partners(gene_a, gene_b, r, max_partners):
    """Mask of pairs that are among the ``max_partners`` strongest of at least one of their two genes
    (ties: the earlier pair first)."""
    n_pairs = len(r)
    genes = np.concatenate((gene_a, gene_b))
    minus_strength = -np.abs(np.concatenate((r, r)))
    by_strength = np.argsort(minus_strength, kind="mergesort")
    order = by_strength[np.argsort(genes[by_strength], kind="mergesort")]
    keep = np.zeros(2 * n_pairs, dtype=np.bool_)
    rank = 0
    for q in range(len(order)):
        rank = rank + 1 if q > 0 and genes[order[q]] == genes[order[q - 1]] else 0
        keep[order[q]] = rank < max_partners
    return keep[:n_pairs] | keep[n_pairs:]
