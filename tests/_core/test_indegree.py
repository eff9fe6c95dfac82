"""Tests for :mod:`lava_sc._core.indegree`: the grid's kNN statistics are the KD-tree's."""

from __future__ import annotations

import numpy as np
import pytest

from lava_sc._core import indegree
from lava_sc._core.knn import NeighbourIndex
from lava_sc._core.localities import neighbourhood_statistics


def kdtree_statistics(points, k):
    return neighbourhood_statistics(NeighbourIndex(points, method="exact"), k)


def embedding(shape, n, rng):
    if shape == "line":  # a flat bounding box: one row of cells
        return np.column_stack([rng.random(n), np.zeros(n)])
    if shape == "clusters":  # dense islands in empty space, of very different spreads
        return np.concatenate(
            [
                rng.normal(c, s, (n // 4, 2))
                for c, s in zip(rng.uniform(-50, 50, (4, 2)), [0.01, 0.1, 1, 5], strict=True)
            ]
        )
    if shape == "outlier":  # one cell far from the rest: its block widens to the whole grid
        return np.concatenate([rng.normal(size=(n - 1, 2)), [[1e4, -1e4]]])
    return rng.normal(size=(n, 2)) * [3.0, 1.0]


@pytest.mark.parametrize(
    ("shape", "n", "k"),
    [("normal", 5000, 200), ("normal", 3000, 5), ("line", 2000, 30), ("clusters", 8000, 100), ("outlier", 3000, 50)],
)
def test_same_in_degree_and_mean_distance_as_the_kdtree(shape, n, k):
    points = embedding(shape, n, np.random.default_rng(n + k))
    in_degree, mean_dist = indegree.grid_statistics(points, k)
    ref_degree, ref_dist = kdtree_statistics(points, k)
    np.testing.assert_array_equal(in_degree, ref_degree)
    np.testing.assert_allclose(mean_dist, ref_dist, rtol=1e-12)
    assert in_degree.sum() == n * k


def test_every_other_point_is_a_neighbour_when_k_is_n_minus_1():
    points = np.random.default_rng(1).random((60, 2)).astype(np.float32).astype(np.float64)
    in_degree, mean_dist = indegree.grid_statistics(points, 59)
    np.testing.assert_array_equal(in_degree, np.full(60, 59.0))
    full = np.sqrt(((points[:, None] - points[None]) ** 2).sum(-1)).sum(1) / 59
    np.testing.assert_allclose(mean_dist, full, rtol=1e-12)


def test_ties_and_duplicates_keep_k_neighbours_per_point():
    """On a lattice with every point doubled many distances tie at the k-th: each point still has
    exactly k neighbours, and its mean distance is the KD-tree's (ties share a distance)."""
    lattice = np.stack(np.meshgrid(np.arange(30.0), np.arange(30.0)), -1).reshape(-1, 2)
    points = np.concatenate([lattice, lattice])
    in_degree, mean_dist = indegree.grid_statistics(points, 12)
    assert in_degree.sum() == len(points) * 12
    np.testing.assert_allclose(mean_dist, kdtree_statistics(points, 12)[1], rtol=1e-12)


def test_coordinates_are_rounded_to_float32_as_the_kdtree_sees_them():
    rng = np.random.default_rng(3)
    points = rng.random((2000, 2)) + 1e3  # float32 rounding moves these by ~3e-5
    in_degree, mean_dist = indegree.grid_statistics(points, 40)
    ref_degree, ref_dist = kdtree_statistics(points, 40)
    np.testing.assert_array_equal(in_degree, ref_degree)
    np.testing.assert_allclose(mean_dist, ref_dist, rtol=1e-12)


def test_the_grid_stays_small_for_a_far_outlier():
    points = embedding("outlier", 4000, np.random.default_rng(0))
    low = points.min(axis=0)
    _, nx, ny = indegree.cell_size(points, low, 6.0)
    assert nx * ny <= indegree.MAX_CELLS_PER_POINT * len(points) + 16 + nx + ny


@pytest.mark.parametrize(("points", "k", "match"), [(np.zeros((10, 3)), 3, "2-d"), (np.ones((10, 2)), 10, "k=10")])
def test_bad_input(points, k, match):
    with pytest.raises(ValueError, match=match):
        indegree.grid_statistics(points, k)


def test_balanced_bounds_cover_every_cell_once():
    start = np.concatenate([[0], np.cumsum([0, 5, 0, 100, 1, 1, 0, 50])])
    bounds = indegree.balanced_bounds(start, 4)
    assert bounds[0] == 0 and bounds[-1] == len(start) - 1
    assert np.all(np.diff(bounds) > 0)
