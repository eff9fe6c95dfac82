"""Orders of points along a Hilbert curve, so that points near each other in space get near ranks.

Used to lay out a store's rows (cells) along the embedding before it is written: a locality (the
cells nearest a probe) then sits in a few contiguous runs of rows, and a task that reads the rows of
a batch of neighbouring localities reads a few contiguous slices instead of touching the whole file.
"""

from __future__ import annotations

import numpy as np

#: bits of the Hilbert index (d dimensions x bits per dimension)
KEY_BITS = 63
#: grid resolution per dimension: 2**16 = 65,536 cells along each axis of a 2-d embedding
MAX_BITS_PER_DIM = 16
#: fewest grid bits per dimension that still order points meaningfully (8 x 8 x ... cells)
MIN_BITS_PER_DIM = 3


def bits_per_dim(n_dims: int) -> int:
    """Grid bits along each axis for ``n_dims`` dimensions: ``min(16, floor(63 / d))``."""
    return min(MAX_BITS_PER_DIM, KEY_BITS // max(int(n_dims), 1))


def grid_coordinates(points: np.ndarray, bits: int) -> np.ndarray:
    """Points quantised to the integer grid ``{0, ..., 2**bits - 1}`` along every axis (uint64).

    One scale for all axes, so the grid cells are squares (cubes) and the geometry is kept:
    ``q = floor((x - min) / span * (2**bits - 1) + 1/2)`` with ``span`` the largest axis range,
    which makes the grid (and the order) invariant to translating and uniformly scaling the points.
    """
    points = np.asarray(points, dtype=np.float64)
    low = points.min(axis=0)
    span = float((points.max(axis=0) - low).max())
    if span == 0.0:
        return np.zeros(points.shape, dtype=np.uint64)
    top = float((1 << bits) - 1)
    q = np.floor((points - low) * (top / span) + 0.5)
    return np.clip(q, 0.0, top).astype(np.uint64)


def hilbert_keys(grid: np.ndarray, bits: int) -> np.ndarray:
    """Hilbert-curve index of integer grid points (n x d, values < ``2**bits``; ``d * bits <= 64``).

    Skilling's algorithm (J. Skilling, "Programming the Hilbert curve", AIP Conf. Proc. 707, 2004):
    the axes are transformed in place to the "transposed" Hilbert index (undo the excess work of the
    reflected Gray code, level by level from the top bit, then Gray-encode), whose bits, interleaved
    from the top level down and axis by axis, are the curve's index. Consecutive indices are grid
    neighbours (differ by one along one axis), so a ball of cells maps to few runs of indices.
    """
    x = np.array(grid, dtype=np.uint64, copy=True)
    n, d = x.shape
    if d * bits > 64:
        raise ValueError(f"{d} dimensions x {bits} bits do not fit a 64-bit key.")
    top = np.uint64(1 << (bits - 1))
    # inverse undo of the excess work, from the top bit down
    q = top
    while q > np.uint64(1):
        p = q - np.uint64(1)
        for i in range(d):
            bit = (x[:, i] & q) != 0
            if i == 0:
                x[:, 0] ^= np.where(bit, p, np.uint64(0))
                continue
            swap = np.where(bit, np.uint64(0), (x[:, 0] ^ x[:, i]) & p)
            x[:, 0] ^= np.where(bit, p, swap)
            x[:, i] ^= swap
        q >>= np.uint64(1)
    # Gray encode
    for i in range(1, d):
        x[:, i] ^= x[:, i - 1]
    t = np.zeros(n, dtype=np.uint64)
    q = top
    while q > np.uint64(1):
        t ^= np.where((x[:, d - 1] & q) != 0, q - np.uint64(1), np.uint64(0))
        q >>= np.uint64(1)
    x ^= t[:, None]
    # interleave: bit b of axis i goes to position b * d + (d - 1 - i)
    key = np.zeros(n, dtype=np.uint64)
    for b in range(bits - 1, -1, -1):
        for i in range(d):
            key = (key << np.uint64(1)) | ((x[:, i] >> np.uint64(b)) & np.uint64(1))
    return key


def hilbert_order(points: np.ndarray) -> np.ndarray:
    """The permutation that sorts ``points`` (n x d, finite) along a Hilbert curve of their bounding box.

    Ties (points in one grid cell) keep their input order, so the result is deterministic.
    """
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2:
        raise ValueError(f"points must be an n x d array, got shape {points.shape}.")
    if len(points) == 0:
        return np.zeros(0, dtype=np.int64)
    bits = bits_per_dim(points.shape[1])
    keys = hilbert_keys(grid_coordinates(points, bits), bits)
    return np.argsort(keys, kind="stable").astype(np.int64)
