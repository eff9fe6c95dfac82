"""kNN in-degree and mean distance to the k nearest neighbours of every point of a 2-d embedding, on a grid.

Probe placement needs, for every cell ``j``, its ``k`` nearest other cells (``k`` = cells per
locality, 200 by default) only through two sums: the mean distance to them, and, for every cell
``i``, how many cells count it among their ``k`` nearest (the in-degree). A KD-tree query returns
the sorted neighbour lists, which costs about 0.15 µs per neighbour and thread: 31 s for a million
cells at ``k = 200`` on two cores, a third of ``tl.localities``.

Here the points are sorted once into small square cells (about ``0.03 k`` points each, sized to the
points, not to the bounding box, so dense clusters set the cell size). All points of a cell share
one candidate set: the points of the smallest block of ``(2R + 1)^2`` cells around it that holds
``1.5 (k + 1)`` points (a summed-area table counts them). For each point the ``k``-th smallest squared distance among the candidates is
found by selection, not sorting; it bounds the true one, so a disc of that radius around the point
holds all its ``k`` nearest, and if that disc reaches beyond the block the block is widened to cover
it and the cell done again. The answer is exact: the same neighbours as the KD-tree, up to the
choice among points tied at the ``k``-th distance, and the same mean distances up to the order of
summation (tested against :class:`~lava_sc._core.knn.NeighbourIndex`).
"""

from __future__ import annotations

import os

import numba
import numpy as np

from .assign import cells_of, sort_into_cells
from .knn import run_in_chunks

#: points per grid cell aimed at, as a share of k (at least ``MIN_CELL_POINTS``): small cells make a
#: block fit the disc of a cell's k nearest closely (measured at 100,000 cells, k = 200: 0.5 of k took
#: 1.0 s, 1/8 0.86 s, 1/16 0.46 s, 0.03 0.37 s, 0.015 0.35 s; KD-tree 2.4 s)
CELL_SHARE = 0.03
MIN_CELL_POINTS = 2.0
#: the first block tried holds this many times k + 1 points, so that few cells need a second, wider
#: block (the disc of the k nearest is smaller than the square block around it, but not by much)
BLOCK_SHARE = 1.5
#: refinements of the cell size towards that occupancy (as seen from an average point)
SIZE_ROUNDS = 3
#: grid cells allowed per point: a far outlier cannot make the grid larger than this
MAX_CELLS_PER_POINT = 4


def grid_statistics(points: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """In-degree and mean distance to the ``k`` nearest other points, of every point of a 2-d set.

    in_degree_i = #{j != i : i is among the k nearest of j};  mean_dist_j = (1/k) sum of |x_j - x_i|
    over those k nearest. Coordinates are rounded to float32 first, as the KD-tree of
    :class:`~lava_sc._core.knn.NeighbourIndex` sees them; distances are computed in float64.
    """
    pts = np.ascontiguousarray(points, dtype=np.float32).astype(np.float64)
    n = len(pts)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"grid_statistics needs 2-d points, got shape {pts.shape}.")
    if not 1 <= k <= n - 1:
        raise ValueError(f"k={k} must lie in [1, n_points - 1] = [1, {n - 1}].")
    low = pts.min(axis=0)
    size, nx, ny = cell_size(pts, low, max(k * CELL_SHARE, MIN_CELL_POINTS))
    order, start = sort_into_cells(cells_of(pts, low, size, nx, ny), nx * ny)
    counts = np.diff(start)
    table = np.zeros((nx + 1, ny + 1), dtype=np.int64)  # summed-area table of the counts
    table[1:, 1:] = counts.reshape(nx, ny).cumsum(axis=0).cumsum(axis=1)
    bounds = balanced_bounds(start, 4 * (os.cpu_count() or 1))
    partial = np.zeros((len(bounds) - 1, n), dtype=np.int32)
    mean_dist = np.empty(n)
    geometry = (float(low[0]), float(low[1]), size, nx, ny)

    def run(lo: int, hi: int) -> None:
        for part in range(lo, hi):
            _cell_statistics(
                pts, order, start, table, *geometry, k, bounds[part], bounds[part + 1], partial[part], mean_dist
            )

    run_in_chunks(len(bounds) - 1, 1, run)
    return partial.sum(axis=0, dtype=np.float64), mean_dist


def cell_size(points: np.ndarray, low: np.ndarray, target: float) -> tuple[float, int, int]:
    """Side of square cells holding about ``target`` points as seen from an average point
    (sum of squared counts / n), and the grid's shape; at most ``MAX_CELLS_PER_POINT`` cells a point."""
    n = len(points)
    span = np.maximum(points.max(axis=0) - low, 1e-300)
    floor = float(np.sqrt(span[0] * span[1] / (MAX_CELLS_PER_POINT * n + 16)))
    floor = max(floor, float(span.max()) / (MAX_CELLS_PER_POINT * n + 16))  # a flat set: cells a row
    size = max(floor, float(np.sqrt(span[0] * span[1] * target / n)))
    for _ in range(SIZE_ROUNDS):
        nx, ny = _shape(span, size)
        counts = np.bincount(cells_of(points, low, size, nx, ny), minlength=nx * ny).astype(np.float64)
        seen = float(counts @ counts) / n
        size = max(floor, size * float(np.sqrt(target / max(seen, 1.0))))
    nx, ny = _shape(span, size)
    return size, nx, ny


def _shape(span: np.ndarray, size: float) -> tuple[int, int]:
    return int(span[0] / size) + 1, int(span[1] / size) + 1


def balanced_bounds(start: np.ndarray, parts: int) -> np.ndarray:
    """Cell indices that split the cells into ``parts`` runs of about equal numbers of points."""
    n_cells, n = len(start) - 1, int(start[-1])
    cuts = np.searchsorted(start, np.linspace(0, n, parts + 1)[1:-1])
    return np.unique(np.concatenate([[0], np.clip(cuts, 0, n_cells), [n_cells]]))


@numba.njit(cache=True, nogil=True, inline="always")
def _block_count(table, gx, gy, r, nx, ny):
    """Points in the cells [gx - r, gx + r] x [gy - r, gy + r], clipped to the grid."""
    x0, x1 = max(gx - r, 0), min(gx + r, nx - 1) + 1
    y0, y1 = max(gy - r, 0), min(gy + r, ny - 1) + 1
    return table[x1, y1] - table[x0, y1] - table[x1, y0] + table[x0, y0]


@numba.njit(cache=True, nogil=True)
def _gather(order, start, gx, gy, r, nx, ny, out):
    """Indices of the points of the block of radius ``r`` around cell (gx, gy) into ``out``; their number."""
    m = 0
    y0, y1 = max(gy - r, 0), min(gy + r, ny - 1)
    for cx in range(max(gx - r, 0), min(gx + r, nx - 1) + 1):
        for t in range(start[cx * ny + y0], start[cx * ny + y1 + 1]):  # a column of cells is contiguous
            out[m] = order[t]
            m += 1
    return m


@numba.njit(cache=True, nogil=True)
def _select(values, m, rank):
    """The ``rank``-th smallest (0-based) of ``values[:m]``, which are reordered (Hoare's quickselect)."""
    lo, hi = 0, m - 1
    while lo < hi:
        pivot = values[(lo + hi) // 2]
        i, j = lo, hi
        while i <= j:
            while values[i] < pivot:
                i += 1
            while values[j] > pivot:
                j -= 1
            if i <= j:
                values[i], values[j] = values[j], values[i]
                i += 1
                j -= 1
        if rank <= j:
            hi = j
        elif rank >= i:
            lo = i
        else:
            break
    return values[rank]


@numba.njit(cache=True, nogil=True)
def _distances(pts, i, cand, m, row, scratch):
    """Squared distances from point i to the m candidates (``inf`` to itself) into ``row`` and ``scratch``."""
    xi, yi = pts[i, 0], pts[i, 1]
    for u in range(m):
        j = cand[u]
        dx, dy = xi - pts[j, 0], yi - pts[j, 1]
        row[u] = np.inf if j == i else dx * dx + dy * dy
        scratch[u] = row[u]


@numba.njit(cache=True, nogil=True)
def _first_block(table, gx, gy, nx, ny, need):
    """Smallest block radius around cell (gx, gy) whose cells hold ``need`` points (or the whole grid)."""
    whole = max(nx, ny)
    r = 1
    while r < whole and _block_count(table, gx, gy, r, nx, ny) < need:
        r += 1
    return r


@numba.njit(cache=True, nogil=True)
def _cell_statistics(pts, order, start, table, x0, y0, size, nx, ny, k, lo, hi, in_degree, mean_dist):
    """In-degree contributions and mean distances of the points of cells ``lo:hi`` (see the module docstring)."""
    n = pts.shape[0]
    cand, wide = np.empty(n, np.int64), np.empty(n, np.int64)
    row, scratch = np.empty(n), np.empty(n)
    whole = max(nx, ny)
    for c in range(lo, hi):
        a, b = start[c], start[c + 1]
        if a == b:
            continue
        gx, gy = c // ny, c % ny
        r = _first_block(table, gx, gy, nx, ny, BLOCK_SHARE * (k + 1))
        m = _gather(order, start, gx, gy, r, nx, ny, cand)
        for t in range(a, b):
            i = order[t]
            _distances(pts, i, cand, m, row, scratch)
            limit = _select(scratch, m, k - 1)
            # a disc of radius sqrt(limit) around the point holds its k nearest: if it reaches beyond the
            # block, search the block that covers it
            reach = int(np.sqrt(limit) / size) + 1
            if reach > r and r < whole:
                mw = _gather(order, start, gx, gy, min(reach, whole), nx, ny, wide)
                _distances(pts, i, wide, mw, row, scratch)
                limit = _select(scratch, mw, k - 1)
                mean_dist[i] = _take(row, wide, mw, limit, k, in_degree)
            else:
                mean_dist[i] = _take(row, cand, m, limit, k, in_degree)


@numba.njit(cache=True, nogil=True)
def _take(row, cand, m, limit, k, in_degree):
    """Count the k nearest (those strictly nearer than ``limit``, then ties up to k) in ``in_degree``;
    their mean distance."""
    total, taken = 0.0, 0
    for u in range(m):
        if row[u] < limit:
            in_degree[cand[u]] += 1
            total += np.sqrt(row[u])
            taken += 1
    for u in range(m):
        if taken == k:
            break
        if row[u] == limit:
            in_degree[cand[u]] += 1
            total += np.sqrt(limit)
            taken += 1
    return total / k
