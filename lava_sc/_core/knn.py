"""k-nearest-neighbour search in an embedding: exact KD-tree for low dimensions, pynndescent above."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy.spatial import cKDTree

#: embeddings with at most this many dimensions use an exact KD-tree
EXACT_MAX_DIMS = 10
#: query points per KD-tree task; Ctrl-C waits for at most one such chunk per thread
QUERY_CHUNK = 16_384


#: an embedding is re-framed before the float32 cast when its coordinates exceed this in magnitude, or
#: when its offset exceeds this many times its spread (float32 keeps about 7 significant digits)
FLOAT32_MAX_MAGNITUDE = 1e6
FLOAT32_MAX_OFFSET = 1e3


def float32_frame(points: np.ndarray) -> tuple[np.ndarray, float]:
    """A centre and a scale that make ``(points - centre) / scale`` safe to cast to float32.

    Ordinary embeddings get the identity (centre 0, scale 1), so their results are unchanged. An
    embedding scaled by 1e300 (inf in float32) or offset by 1e8 (cells 8 units apart collapse in
    float32) is centred on the middle of its range and divided by its largest half-range. Nearest neighbours
    and probe placement are invariant to this map.
    """
    points = np.asarray(points, dtype=np.float64)
    identity = (np.zeros(points.shape[1]), 1.0)
    if len(points) == 0:
        return identity
    low, high = points.min(axis=0), points.max(axis=0)
    centre = low / 2 + high / 2  # halves first: no overflow near the float64 limit
    spread = float((high / 2 - low / 2).max())
    if spread == 0 or not np.isfinite(spread):
        return identity
    extreme = (
        float(np.abs(points).max()) > FLOAT32_MAX_MAGNITUDE or float(np.abs(centre).max()) > FLOAT32_MAX_OFFSET * spread
    )
    return (centre, spread) if extreme else identity


def kdtree_query(tree: cKDTree, points: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``tree.query(points, k)`` in chunks on our own threads, interruptible.

    scipy's ``workers=-1`` runs the query on C++ threads that keep reading ``points`` after the main
    thread takes a KeyboardInterrupt, and the process then segfaults. Here each chunk is one
    single-threaded query (it releases the GIL, so chunks run in parallel); on Ctrl-C the chunks not
    started are cancelled and the running ones finish before the interrupt propagates.
    Returns ``(dist, idx)`` as ``cKDTree.query`` does.
    """
    n = len(points)
    if n <= QUERY_CHUNK:
        return tree.query(points, k=k)
    shape = (n,) if k == 1 else (n, k)
    dist, idx = np.empty(shape), np.empty(shape, dtype=np.intp)

    def one(start: int, stop: int) -> None:
        dist[start:stop], idx[start:stop] = tree.query(points[start:stop], k=k)

    run_in_chunks(n, QUERY_CHUNK, one)
    return dist, idx


def run_in_chunks(n: int, chunk: int, work) -> None:
    """``work(lo, hi)`` over ``range(n)`` in chunks of ``chunk``, on threads when there is more than one.

    ``work`` must release the GIL to run in parallel (numba ``nogil`` kernels, cKDTree queries). On
    Ctrl-C the chunks not started are cancelled and the running ones finish before the interrupt
    propagates, so no thread keeps writing into arrays the caller has dropped.
    """
    if n <= chunk:
        work(0, n)
        return
    starts = range(0, n, chunk)
    with ThreadPoolExecutor(max_workers=min(os.cpu_count() or 1, len(starts))) as pool:
        futures = [pool.submit(work, s, min(n, s + chunk)) for s in starts]
        try:
            for future in futures:
                future.result()
        except BaseException:
            for future in futures:
                future.cancel()
            raise


class NeighbourIndex:
    """Nearest-neighbour index over the rows of ``data``.

    Parameters
    ----------
    data
        Points, shape ``(n_points, n_dims)``.
    method
        ``"auto"`` (exact for ``n_dims <= 10`` or fewer than 20,000 points, pynndescent otherwise),
        ``"exact"`` or ``"pynndescent"``.
    n_neighbors
        Neighbours the approximate index is built for (pynndescent only).
    random_state
        Seed of pynndescent's random projection trees.
    """

    def __init__(self, data: np.ndarray, *, method: str = "auto", n_neighbors: int = 30, random_state: int = 0):
        self.data = np.ascontiguousarray(data, dtype=np.float32)
        if method == "auto":
            small = data.shape[1] <= EXACT_MAX_DIMS or data.shape[0] < 20_000
            method = "exact" if small else "pynndescent"
        self.method = method
        if method == "exact":
            low_dim = data.shape[1] <= EXACT_MAX_DIMS
            if low_dim:
                self._index = cKDTree(self.data)
            else:
                from sklearn.neighbors import NearestNeighbors  # imported here: ~0.6 s that --help need not pay

                self._index = NearestNeighbors(algorithm="brute").fit(self.data)
        elif method == "pynndescent":
            from pynndescent import NNDescent

            self._index = NNDescent(
                self.data,
                n_neighbors=max(n_neighbors, 10),
                random_state=random_state,
                n_jobs=1,
                compressed=False,
            )
            self._index.prepare()
        else:
            raise ValueError(f"Unknown kNN method {method!r}; use 'auto', 'exact' or 'pynndescent'.")

    def query(self, points: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Indices and distances of the ``k`` nearest data points to each row of ``points``, nearest first."""
        points = np.ascontiguousarray(points, dtype=np.float32)
        if isinstance(self._index, cKDTree):
            dist, idx = kdtree_query(self._index, points, k)
            if k == 1:
                dist, idx = dist[:, None], idx[:, None]
        elif self.method == "exact":
            dist, idx = self._index.kneighbors(points, n_neighbors=k)
        else:
            idx, dist = self._index.query(points, k=k)
        return idx.astype(np.int64), dist.astype(np.float64)

    def self_neighbours(self, k: int, rows: slice | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest other points of the data points in ``rows`` (the point itself excluded)."""
        rows = slice(0, len(self.data)) if rows is None else rows
        idx, dist = self.query(self.data[rows], k + 1)
        own = idx == np.arange(len(self.data))[rows][:, None]
        # drop the point itself; where a duplicate displaced it, drop the last column instead
        keep = ~own
        keep[~own.any(axis=1), -1] = False
        return idx[keep].reshape(len(idx), k), dist[keep].reshape(len(idx), k)
