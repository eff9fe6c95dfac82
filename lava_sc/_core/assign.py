"""Nearest centre of every point in 2-d, on grids: the assignment step of Lloyd.

A KD-tree query costs about half a microsecond per point whatever the number of centres (6,000
points against 90 centres: 3 ms), which made the assignment most of probe placement. Here the
points of a Lloyd run are sorted once into square cells (:class:`PointGrid`); at each iteration the
centres are bucketed into a grid of their own (about half a centre per cell), the centre nearest
each point cell's middle is found by searching square rings of centre cells, and the cell's points
are compared only with the centres that this bound allows: exact, and a few distance evaluations
per point.

The squared distance is accumulated as ``(x - cx)^2 + (y - cy)^2`` and its square root returned, as
:meth:`scipy.spatial.cKDTree.query` does, so the distances (and the assignments, away from exact
ties, which go to the lowest centre index here) are the KD-tree's.
"""

from __future__ import annotations

import os

import numba
import numpy as np

from .knn import run_in_chunks

#: centres per grid cell, on average
CENTRES_PER_CELL = 0.5
#: a :class:`PointGrid` assigns its points on threads from this many points (below, one call is faster)
THREADS_ABOVE = 50_000


def cells_of(points: np.ndarray, low: np.ndarray, size: float, nx: int, ny: int) -> np.ndarray:
    """Index ``cx * ny + cy`` of the square cell of side ``size`` (origin ``low``, ``nx`` x ``ny`` cells)
    holding each 2-d point; points on the far edges go to the last row or column."""
    cx = np.minimum(((points[:, 0] - low[0]) / size).astype(np.int64), nx - 1)
    cy = np.minimum(((points[:, 1] - low[1]) / size).astype(np.int64), ny - 1)
    return cx * ny + cy


def sort_into_cells(cell: np.ndarray, n_cells: int) -> tuple[np.ndarray, np.ndarray]:
    """The points ordered by cell (stable) and each cell's start in that order (``n_cells + 1`` entries):
    the points of cell ``c`` are ``order[start[c]:start[c + 1]]``."""
    order = np.argsort(cell, kind="stable")
    return order, np.concatenate([[0], np.cumsum(np.bincount(cell, minlength=n_cells))])


class PointGrid:
    """The points of a Lloyd run sorted once into square cells, so that each iteration finds, per cell,
    the few centres that can be nearest to any of its points (see :meth:`nearest`)."""

    def __init__(self, points: np.ndarray, n_centres: int):
        self.points = np.ascontiguousarray(points, dtype=np.float64)
        low, high = self.points.min(axis=0), self.points.max(axis=0)
        span = np.maximum(high - low, 1e-12)
        size = float(np.sqrt(span[0] * span[1] / max(1.0, n_centres / CENTRES_PER_CELL)))
        self.size = max(size, float(span.max()) / 4096)
        self.low = low
        self.nx, self.ny = (int(min(4096, np.floor(w / self.size) + 1)) for w in span)
        self.order, self.start = sort_into_cells(
            cells_of(self.points, low, self.size, self.nx, self.ny), self.nx * self.ny
        )

    def nearest(self, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Distance to, and index of, the nearest of ``centres`` for each of the grid's points.

        For a cell with centre ``m`` and half-diagonal ``h``, and ``c0`` the centre nearest ``m``, every
        point ``x`` of the cell has its nearest centre within ``|x - c0| <= h + |m - c0|``: only the
        centres that close to the cell's rectangle are compared, point by point.
        """
        centres = np.ascontiguousarray(centres, dtype=np.float64)
        x0, y0 = float(self.low[0]), float(self.low[1])
        grid = centre_grid(self.points, centres)
        n = len(self.points)
        dist, idx = np.empty(n), np.empty(n, dtype=np.intp)
        n_cells = self.nx * self.ny
        geometry = (x0, y0, self.size, self.nx, self.ny)

        def run(lo, hi):
            _assign_by_cell(self.points, self.order, self.start, *geometry, centres, *grid, dist, idx, lo, hi)

        threads = os.cpu_count() or 1
        run_in_chunks(n_cells, n_cells if n < THREADS_ABOVE else -(-n_cells // (4 * threads)), run)
        return dist, idx


def centre_grid(points: np.ndarray, centres: np.ndarray):
    """The centres bucketed into an ``nx`` x ``ny`` grid over the bounding box of points and centres:
    (order of the centres by cell, cell starts, x0, y0, cell size, nx, ny)."""
    return _bucket(points, centres, CENTRES_PER_CELL)


@numba.njit(cache=True)
def _bucket(points, centres, per_cell):
    """Counting sort of the centres into square cells of about ``per_cell`` centres each, over the
    bounding box of points and centres."""
    k = centres.shape[0]
    x0, y0, x1, y1 = np.inf, np.inf, -np.inf, -np.inf
    for a in (points, centres):
        for i in range(a.shape[0]):
            x0, x1 = min(x0, a[i, 0]), max(x1, a[i, 0])
            y0, y1 = min(y0, a[i, 1]), max(y1, a[i, 1])
    wx, wy = max(x1 - x0, 1e-12), max(y1 - y0, 1e-12)
    size = np.sqrt(wx * wy / max(1.0, k / per_cell))
    size = max(size, max(wx, wy) / 4096.0)  # a flat box: at most 4096 cells a side
    nx = min(4096, int(wx / size) + 1)
    ny = min(4096, int(wy / size) + 1)
    cell = np.empty(k, np.int64)
    start = np.zeros(nx * ny + 1, np.int64)
    for j in range(k):
        cx = min(max(int((centres[j, 0] - x0) / size), 0), nx - 1)
        cy = min(max(int((centres[j, 1] - y0) / size), 0), ny - 1)
        cell[j] = cx * ny + cy
        start[cell[j] + 1] += 1
    for c in range(nx * ny):
        start[c + 1] += start[c]
    fill = start[:-1].copy()
    order = np.empty(k, np.int64)
    for j in range(k):  # stable: centres of a cell in index order
        order[fill[cell[j]]] = j
        fill[cell[j]] += 1
    return order, start, x0, y0, size, nx, ny


@numba.njit(cache=True, nogil=True, inline="always")
def _closer(d2, j, best, best_j):
    """Whether centre ``j`` at squared distance ``d2`` beats the best so far (ties: the lower index)."""
    return d2 < best or (d2 == best and j < best_j)


@numba.njit(cache=True, nogil=True)
def _assign(points, centres, order, start, x0, y0, size, nx, ny, dist, idx, lo, hi):
    """Nearest centre of points ``lo:hi`` by ring search on the centre grid (see the module docstring)."""
    for i in range(lo, hi):
        px, py = points[i, 0], points[i, 1]
        gx = min(max(int((px - x0) / size), 0), nx - 1)
        gy = min(max(int((py - y0) / size), 0), ny - 1)
        best, best_j = np.inf, -1
        r = 0
        while True:
            for cx in range(max(gx - r, 0), min(gx + r, nx - 1) + 1):
                edge_x = cx == gx - r or cx == gx + r
                for cy in range(max(gy - r, 0), min(gy + r, ny - 1) + 1):
                    if not edge_x and cy != gy - r and cy != gy + r:
                        continue  # inside the ring: searched at a smaller r
                    c = cx * ny + cy
                    for t in range(start[c], start[c + 1]):
                        j = order[t]
                        dx = px - centres[j, 0]
                        dy = py - centres[j, 1]
                        d2 = dx * dx + dy * dy
                        if _closer(d2, j, best, best_j):
                            best, best_j = d2, j
            # every centre outside the searched block is at least `gap` away
            gap = min(
                px - (x0 + (gx - r) * size),
                x0 + (gx + r + 1) * size - px,
                py - (y0 + (gy - r) * size),
                y0 + (gy + r + 1) * size - py,
            )
            covers_all = gx - r <= 0 and gy - r <= 0 and gx + r >= nx - 1 and gy + r >= ny - 1
            if covers_all or (best_j >= 0 and gap > 0 and gap * gap >= best):
                break
            r += 1
        dist[i] = np.sqrt(best)
        idx[i] = best_j


@numba.njit(cache=True, nogil=True)
def _assign_by_cell(
    points, porder, pstart, px0, py0, psize, pnx, pny, centres, order, start, x0, y0, size, nx, ny, dist, idx, lo, hi
):
    """Nearest centre of the points in point cells ``lo:hi``: per cell, the candidates within the bound
    of :meth:`PointGrid.nearest`, then each point against those candidates only."""
    one_d = np.empty(1)
    one_i = np.empty(1, np.int64)
    probe = np.empty((1, 2))
    k = centres.shape[0]
    candidates = np.empty(k, np.int64)
    for c in range(lo, hi):
        if pstart[c + 1] == pstart[c]:
            continue
        gx, gy = c // pny, c % pny
        mx, my = px0 + (gx + 0.5) * psize, py0 + (gy + 0.5) * psize
        probe[0, 0], probe[0, 1] = mx, my
        _assign(probe, centres, order, start, x0, y0, size, nx, ny, one_d, one_i, 0, 1)
        reach = one_d[0] + 0.7071067811865476 * psize * (1.0 + 1e-9)
        rx0, rx1 = px0 + gx * psize, px0 + (gx + 1) * psize
        ry0, ry1 = py0 + gy * psize, py0 + (gy + 1) * psize
        # centre-grid cells that can hold a centre within `reach` of the point cell's rectangle
        ax0 = min(max(int((rx0 - reach - x0) / size), 0), nx - 1)
        ax1 = min(max(int((rx1 + reach - x0) / size), 0), nx - 1)
        ay0 = min(max(int((ry0 - reach - y0) / size), 0), ny - 1)
        ay1 = min(max(int((ry1 + reach - y0) / size), 0), ny - 1)
        m = 0
        reach2 = reach * reach
        for cx in range(ax0, ax1 + 1):
            for cy in range(ay0, ay1 + 1):
                cc = cx * ny + cy
                for t in range(start[cc], start[cc + 1]):
                    j = order[t]
                    ddx = max(rx0 - centres[j, 0], 0.0, centres[j, 0] - rx1)
                    ddy = max(ry0 - centres[j, 1], 0.0, centres[j, 1] - ry1)
                    if ddx * ddx + ddy * ddy <= reach2:
                        candidates[m] = j
                        m += 1
        for t in range(pstart[c], pstart[c + 1]):
            i = porder[t]
            qx, qy = points[i, 0], points[i, 1]
            best, best_j = np.inf, -1
            for u in range(m):
                j = candidates[u]
                dx = qx - centres[j, 0]
                dy = qy - centres[j, 1]
                d2 = dx * dx + dy * dy
                if _closer(d2, j, best, best_j):
                    best, best_j = d2, j
            dist[i] = np.sqrt(best)
            idx[i] = best_j
