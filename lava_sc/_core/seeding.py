"""Weighted greedy k-means++ seeding of the probes (as scikit-learn's, ``2 + log l`` trials per centre),
with a two-level spatial grid for 2-d embeddings so that a centre costs about the points near it."""

from __future__ import annotations

import numba
import numpy as np


def seed_centres(points, weights, n_localities: int, random_state: int, pool: int | None = None) -> np.ndarray:
    """Weighted greedy k-means++ seeds (on a uniform sample of ``pool`` points when given)."""
    points = np.asarray(points, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    n_trials = 2 + int(np.log(n_localities))
    if pool is not None and pool < len(points):
        rows = np.sort(np.random.default_rng(random_state).choice(len(points), pool, replace=False))
        points, weights = points[rows], weights[rows]
    uniforms = np.random.default_rng(random_state).random(1 + (n_localities - 1) * n_trials)
    kernel = _kmeans_plus_plus_2d if points.shape[1] == 2 else _kmeans_plus_plus
    return kernel(np.ascontiguousarray(points), weights, n_localities, uniforms, n_trials)


@numba.njit(cache=True)
def _kmeans_plus_plus(points, weights, k, uniforms, n_trials):
    """Greedy weighted k-means++: each centre is the best of ``n_trials`` candidates drawn with
    probability proportional to weight x squared distance to the closest centre so far (``uniforms``
    supplies the 1 + (k - 1) x n_trials random numbers in [0, 1))."""
    n, d = points.shape
    centres = np.empty((k, d))
    closest = np.empty(n)
    trial = np.empty(n)
    best = np.empty(n)
    cum = np.cumsum(weights)
    first = min(np.searchsorted(cum, uniforms[0] * cum[-1]), n - 1)
    draw = 1
    centres[0] = points[first]
    for i in range(n):
        s = 0.0
        for q in range(d):
            diff = points[i, q] - centres[0, q]
            s += diff * diff
        closest[i] = s
    for c in range(1, k):
        acc = 0.0
        for i in range(n):
            acc += weights[i] * closest[i]
            cum[i] = acc
        best_pot = np.inf
        best_idx = 0
        for _ in range(n_trials):
            cand = min(np.searchsorted(cum, uniforms[draw] * acc), n - 1)
            draw += 1
            pot = 0.0
            for i in range(n):
                s = 0.0
                for q in range(d):
                    diff = points[i, q] - points[cand, q]
                    s += diff * diff
                v = min(s, closest[i])
                trial[i] = v
                pot += weights[i] * v
            if pot < best_pot:
                best_pot = pot
                best_idx = cand
                best[:] = trial
        centres[c] = points[best_idx]
        closest[:] = best
    return centres


#: grid cells per side of a block of the 2-d k-means++ grid
_BLOCK = 8


@numba.njit(cache=True, inline="always")
def _rect_d2(x, y, x0, x1, y0, y1):
    """Squared distance from (x, y) to the rectangle [x0, x1] x [y0, y1]."""
    dx = max(x0 - x, 0.0, x - x1)
    dy = max(y0 - y, 0.0, y - y1)
    return dx * dx + dy * dy


@numba.njit(cache=True)
def _grid_layout(points):
    """Sort points into a g x g grid (about four points per cell): order, cell starts, origin, cell size."""
    n = points.shape[0]
    xmin, ymin = points[:, 0].min(), points[:, 1].min()
    g = max(1, int(np.sqrt(n / 4.0)))
    hx = (points[:, 0].max() - xmin) / g + 1e-12
    hy = (points[:, 1].max() - ymin) / g + 1e-12
    cell = np.empty(n, np.int64)
    for p in range(n):
        cx = min(int((points[p, 0] - xmin) / hx), g - 1)
        cy = min(int((points[p, 1] - ymin) / hy), g - 1)
        cell[p] = cy * g + cx
    order = np.argsort(cell, kind="mergesort")
    start = np.zeros(g * g + 1, np.int64)
    for p in range(n):
        start[cell[p] + 1] += 1
    for c in range(g * g):
        start[c + 1] += start[c]
    return order, start, g, xmin, ymin, hx, hy


@numba.njit(cache=True)
def _visit(x, y, grid, apply, reach2=np.inf):
    """Potential reduction if (x, y) became a centre, visiting only blocks and cells it can improve.

    ``grid`` = (points, weights, closest, cell starts, g, xmin, ymin, hx, hy, cell max, cell potential,
    block max, block potential). With ``apply`` the closest distances and the cell and block
    summaries are updated too. ``reach2`` bounds every block's largest closest distance: a block
    farther than its root cannot improve, so only the blocks within it are looked at (the same
    answer, without testing every block of a large grid at every trial: 3,969 at a million cells).
    """
    g, xmin, ymin, hx, hy = grid[4], grid[5], grid[6], grid[7], grid[8]
    nb = (g + _BLOCK - 1) // _BLOCK
    bi0, bi1, bj0, bj1 = 0, nb - 1, 0, nb - 1
    if reach2 < np.inf:  # one block of margin each side against rounding
        reach = np.sqrt(reach2)
        bi0 = max(0, int(np.floor((x - reach - xmin) / (_BLOCK * hx))) - 1)
        bi1 = min(nb - 1, int(np.floor((x + reach - xmin) / (_BLOCK * hx))) + 1)
        bj0 = max(0, int(np.floor((y - reach - ymin) / (_BLOCK * hy))) - 1)
        bj1 = min(nb - 1, int(np.floor((y + reach - ymin) / (_BLOCK * hy))) + 1)
    red = 0.0
    for bj in range(bj0, bj1 + 1):
        for bi in range(bi0, bi1 + 1):
            red = _visit_block(x, y, bi, bj, nb, grid, apply, red)
    return red


@numba.njit(cache=True, inline="always")
def _visit_block(x, y, bi, bj, nb, grid, apply, red):
    """:func:`_visit` on block (bi, bj): ``red`` plus the block's reduction (accumulated point by point)."""
    pts, w, closest, start, g, xmin, ymin, hx, hy, cell_max, cell_pot, block_max, block_pot = grid
    b = bj * nb + bi
    x0, y0 = xmin + bi * _BLOCK * hx, ymin + bj * _BLOCK * hy
    if _rect_d2(x, y, x0, x0 + _BLOCK * hx, y0, y0 + _BLOCK * hy) >= block_max[b]:
        return red
    for cy in range(bj * _BLOCK, min(bj * _BLOCK + _BLOCK, g)):
        for cx in range(bi * _BLOCK, min(bi * _BLOCK + _BLOCK, g)):
            c = cy * g + cx
            cx0, cy0 = xmin + cx * hx, ymin + cy * hy
            if _rect_d2(x, y, cx0, cx0 + hx, cy0, cy0 + hy) >= cell_max[c]:
                continue
            m, s = 0.0, 0.0
            for p in range(start[c], start[c + 1]):
                dx, dy = pts[p, 0] - x, pts[p, 1] - y
                d2 = dx * dx + dy * dy
                if d2 < closest[p]:
                    red += w[p] * (closest[p] - d2)
                    if apply:
                        closest[p] = d2
                m = max(m, closest[p])
                s += w[p] * closest[p]
            if apply:
                cell_max[c], cell_pot[c] = m, s
    if apply:
        _summarise_block(b, nb, g, cell_max, cell_pot, block_max, block_pot)
    return red


@numba.njit(cache=True)
def _summarise_block(b, nb, g, cell_max, cell_pot, block_max, block_pot):
    bi, bj = b % nb, b // nb
    m, s = 0.0, 0.0
    for cy in range(bj * _BLOCK, min(bj * _BLOCK + _BLOCK, g)):
        for cx in range(bi * _BLOCK, min(bi * _BLOCK + _BLOCK, g)):
            m = max(m, cell_max[cy * g + cx])
            s += cell_pot[cy * g + cx]
    block_max[b], block_pot[b] = m, s


@numba.njit(cache=True)
def _sample(u, w, closest, start, g, cell_pot, block_pot):
    """The point where the cumulative weight x closest distance (block, then cell, then point) passes ``u``."""
    nb = (g + _BLOCK - 1) // _BLOCK
    last = -1
    for b in range(nb * nb):
        if u >= block_pot[b]:
            u -= block_pot[b]
            continue
        bi, bj = b % nb, b // nb
        for cy in range(bj * _BLOCK, min(bj * _BLOCK + _BLOCK, g)):
            for cx in range(bi * _BLOCK, min(bi * _BLOCK + _BLOCK, g)):
                c = cy * g + cx
                if start[c + 1] > start[c]:
                    last = start[c + 1] - 1
                if u >= cell_pot[c]:
                    u -= cell_pot[c]
                    continue
                for p in range(start[c], start[c + 1]):
                    u -= w[p] * closest[p]
                    if u < 0:
                        return p
        return last  # rounding left u just above this block's total
    return last


@numba.njit(cache=True)
def _kmeans_plus_plus_2d(points, weights, k, uniforms, n_trials):
    """:func:`_kmeans_plus_plus` for 2-d points on a two-level grid (the same algorithm; points are
    visited in grid order, so the same draws pick other points).

    A trial centre only looks at the blocks and cells holding a point it would be closer to than
    that point's current centre, so a centre costs about the number of points near it instead of all
    points: seeding 15,000 probes among 100,000 cells takes under a second.
    """
    order, start, g, xmin, ymin, hx, hy = _grid_layout(points)
    pts, w = points[order], weights[order]
    n = len(pts)
    nb = (g + _BLOCK - 1) // _BLOCK
    cum = np.cumsum(w)
    first = min(np.searchsorted(cum, uniforms[0] * cum[-1]), n - 1)
    closest = np.full(n, np.inf)
    cell_max, cell_pot = np.full(g * g, np.inf), np.zeros(g * g)
    block_max, block_pot = np.full(nb * nb, np.inf), np.zeros(nb * nb)
    grid = (pts, w, closest, start, g, xmin, ymin, hx, hy, cell_max, cell_pot, block_max, block_pot)
    centres = np.empty((k, 2))
    centres[0] = pts[first]
    _visit(pts[first, 0], pts[first, 1], grid, True)
    draw = 1
    for c in range(1, k):
        total = block_pot.sum()
        reach2 = block_max.max()  # no point is farther than this from its closest centre
        best_red, best = -1.0, first
        for _ in range(n_trials):
            cand = _sample(uniforms[draw] * total, w, closest, start, g, cell_pot, block_pot)
            draw += 1
            red = _visit(pts[cand, 0], pts[cand, 1], grid, False, reach2)
            if red > best_red:
                best_red, best = red, cand
        centres[c] = pts[best]
        _visit(pts[best, 0], pts[best, 1], grid, True, reach2)
    return centres
