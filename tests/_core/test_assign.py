"""Tests for :mod:`lava_sc._core.assign`: the grid assignment is the KD-tree's nearest centre."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

from lava_sc._core import assign


def kdtree(points, centres):
    return cKDTree(centres).query(points, k=1)


def nearest_centres(points, centres):
    """One assignment, as Lloyd makes it: a grid of the points, then the nearest of the centres."""
    return assign.PointGrid(points, len(centres)).nearest(centres)


@pytest.mark.parametrize(
    ("n", "k", "shape"),
    [(6000, 90, "normal"), (3000, 1, "normal"), (2000, 7, "line"), (5000, 400, "clusters"), (4000, 60, "far")],
)
def test_same_distances_and_centres_as_a_kdtree(n, k, shape):
    rng = np.random.default_rng(k)
    if shape == "line":  # a flat bounding box
        points = np.column_stack([rng.random(n), np.zeros(n)])
    elif shape == "clusters":  # dense islands and empty space, centres where the points are
        points = np.concatenate([rng.normal(c, 0.01, (n // 5, 2)) for c in rng.uniform(-50, 50, (5, 2))])
    else:
        points = rng.normal(size=(n, 2)) * [3.0, 1.0]
    centres = points[rng.choice(len(points), k, replace=False)] + 1e-3
    if shape == "far":  # centres well outside the points' box
        centres = centres * 40.0
    dist, idx = nearest_centres(points, centres)
    ref_dist, ref_idx = kdtree(points, centres)
    np.testing.assert_array_equal(dist, ref_dist)
    np.testing.assert_array_equal(idx, ref_idx)


def test_ties_go_to_the_lowest_centre_index():
    points = np.array([[0.0, 0.0], [1.0, 1.0]])
    centres = np.array([[2.0, 2.0], [0.5, 0.5], [0.5, 0.5]])  # a duplicated centre
    dist, idx = nearest_centres(points, centres)
    assert idx.tolist() == [1, 1]
    np.testing.assert_allclose(dist, np.sqrt(0.5))


def test_chunks_on_threads_give_the_one_call_answer(monkeypatch):
    rng = np.random.default_rng(0)
    points, centres = rng.random((40_000, 2)), rng.random((700, 2))
    whole = nearest_centres(points, centres)  # below THREADS_ABOVE: one call
    monkeypatch.setattr(assign, "THREADS_ABOVE", 1000)
    chunked = nearest_centres(points, centres)
    for a, b in zip(whole, chunked, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(whole[1], kdtree(points, centres)[1])


@pytest.mark.parametrize(("n", "k"), [(6000, 90), (20_000, 300), (60_000, 900), (500, 1)])
def test_point_grid_gives_the_kdtree_answer_iteration_after_iteration(n, k):
    """Lloyd's use: one grid of the points, centres that move between calls (and some far outside)."""
    rng = np.random.default_rng(n)
    points = np.concatenate(
        [rng.normal(c, s, (n // 4, 2)) for c, s in zip(rng.uniform(-9, 9, (4, 2)), (0.05, 0.5, 1, 3), strict=True)]
    )
    grid = assign.PointGrid(points, k)
    centres = points[rng.choice(len(points), k, replace=False)]
    for step in range(3):
        dist, idx = grid.nearest(centres)
        ref_dist, ref_idx = kdtree(points, centres)
        np.testing.assert_array_equal(dist, ref_dist)
        np.testing.assert_array_equal(idx, ref_idx)
        centres = centres + rng.normal(0, 0.3 * (step + 1), centres.shape)
