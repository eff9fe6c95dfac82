"""Hilbert-curve orders: a bijection of the grid whose consecutive indices are neighbours."""

import numpy as np
import pytest
from scipy.spatial import cKDTree

from lava_sc._core.ordering import bits_per_dim, grid_coordinates, hilbert_keys, hilbert_order


def full_grid(d, bits):
    axes = [np.arange(2**bits)] * d
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, d).astype(np.uint64)


@pytest.mark.parametrize(("d", "bits"), [(1, 5), (2, 1), (2, 5), (3, 3), (4, 2)])
def test_keys_are_a_bijection_whose_steps_are_unit_moves(d, bits):
    grid = full_grid(d, bits)
    keys = hilbert_keys(grid, bits)
    np.testing.assert_array_equal(np.sort(keys), np.arange(len(grid)))
    walk = grid[np.argsort(keys)].astype(np.int64)
    steps = np.abs(np.diff(walk, axis=0)).sum(axis=1)
    assert (steps == 1).all()  # the curve moves to a neighbouring grid cell at every step


def test_keys_that_do_not_fit_64_bits_are_refused():
    with pytest.raises(ValueError, match="64-bit"):
        hilbert_keys(np.zeros((3, 5), dtype=np.uint64), 13)


def test_grid_bits_shrink_with_the_dimension():
    assert [bits_per_dim(d) for d in (1, 2, 3, 4, 21)] == [16, 16, 16, 15, 3]


def test_grid_uses_one_scale_for_all_axes():
    q = grid_coordinates(np.array([[0.0, 0.0], [10.0, 1.0]]), 4)
    np.testing.assert_array_equal(q, [[0, 0], [15, 2]])  # 1/10 of the x range is 1.5 -> 2 grid steps
    np.testing.assert_array_equal(grid_coordinates(np.ones((4, 2)), 4), np.zeros((4, 2)))


def test_order_is_a_permutation_that_keeps_neighbours_close():
    rng = np.random.default_rng(0)
    points = np.concatenate([rng.normal(c, 1.0, (1500, 2)) for c in ([0, 0], [8, 3], [-5, 9])])
    order = hilbert_order(points)
    np.testing.assert_array_equal(np.sort(order), np.arange(len(points)))
    rank = np.empty(len(points), dtype=np.int64)
    rank[order] = np.arange(len(points))
    _, knn = cKDTree(points).query(points, k=11)
    gap = np.abs(rank[knn[:, 1:]] - rank[:, None]).mean()
    random_rank = rng.permutation(len(points))
    random_gap = np.abs(random_rank[knn[:, 1:]] - random_rank[:, None]).mean()
    assert gap < random_gap / 10  # ~1,500 for a random order, far below along the curve


def test_order_of_ties_and_degenerate_inputs():
    np.testing.assert_array_equal(hilbert_order(np.zeros((5, 2))), np.arange(5))
    assert hilbert_order(np.zeros((0, 2))).shape == (0,)
    with pytest.raises(ValueError, match="n x d"):
        hilbert_order(np.zeros(4))
