"""Kernels of the module step: gene scores and sides of signed modules."""

import numpy as np
import scipy.sparse as sp

from lava_sc._core.modules import gene_scores, gene_sides, placement_majority


def signed_module(n_plus=4, n_minus=3, rng=None):
    """All pairs of n_plus + n_minus genes: correlated within a half, anti-correlated across."""
    rng = rng or np.random.default_rng(0)
    side = np.r_[np.ones(n_plus), -np.ones(n_minus)]
    ga, gb = np.triu_indices(len(side), 1)
    weight = side[ga] * side[gb] * rng.uniform(0.3, 0.6, len(ga))
    return ga, gb, weight, side


def test_anti_correlated_pairs_count_for_the_score():
    ga, gb, weight, _ = signed_module()
    score = gene_scores(ga, gb, weight, 7)
    assert np.all(score > 0.5) and score.max() == 1.0
    np.testing.assert_allclose(score, gene_scores(ga, gb, np.abs(weight), 7))


def test_sides_are_the_two_halves_oriented_to_the_hub():
    rng = np.random.default_rng(1)
    for trial in range(20):
        ga, gb, weight, side = signed_module(int(rng.integers(2, 8)), int(rng.integers(2, 8)), rng)
        n = len(side)
        sides = gene_sides(ga, gb, weight, n + 2)  # two genes outside the module
        hub = int(np.argmax(gene_scores(ga, gb, weight, n)))
        assert sides[hub] == 1, trial
        np.testing.assert_array_equal(sides[:n], side * side[hub])
        np.testing.assert_array_equal(sides[n:], 0)


def test_a_module_of_correlated_pairs_is_all_positive_even_with_a_sparse_graph():
    ga, gb = np.array([0, 1, 2, 3]), np.array([1, 2, 3, 4])  # a chain
    sides = gene_sides(ga, gb, np.full(4, 0.4), 6)
    np.testing.assert_array_equal(sides, [1, 1, 1, 1, 1, 0])
    assert gene_sides(np.array([], int), np.array([], int), np.array([]), 3).tolist() == [0, 0, 0]


def test_a_pair_passes_where_more_than_half_the_placements_find_it():
    # 4 localities: 0 and 1 in placement 0, 2 in placement 1, 3 shared by placements 1 and 2
    in_placement = np.array([[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 1, 1]], dtype=bool)
    sketch = sp.csr_matrix(
        np.array(
            [
                [0.5, 0.5, 0.0, 0.5],  # pair 0: placement 0 only (twice), pair 1: placements 0 and 1
                [0.5, 0.0, 0.0, 0.0],
                [0.0, 0.5, 0.0, 0.0],
                [0.0, 0.0, 0.5, 0.5],  # pair 2: locality 3 alone is in two placements; pair 3: all three
            ]
        )
    )
    np.testing.assert_array_equal(placement_majority(sketch, in_placement), [False, True, True, True])
    one = np.ones((4, 1), dtype=bool)  # one placement: anything found passes
    np.testing.assert_array_equal(placement_majority(sketch, one), [True, True, True, True])
