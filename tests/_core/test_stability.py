"""Kernels of the stability assay: Hungarian module matching and the kNN-overlap distance."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from lava_sc._core.stability import (
    activity_correlation,
    jaccard_matrix,
    knn_indices,
    knn_jaccard,
    knn_overlap_distance,
    match_modules,
)


def test_jaccard_matrix_by_hand():
    jac = jaccard_matrix([{"a", "b"}, {"c"}], [{"a", "b", "c"}, {"d"}, set()])
    np.testing.assert_allclose(jac, [[2 / 3, 0, 0], [1 / 3, 0, 0]])
    assert jaccard_matrix([], [{"a"}]).shape == (0, 1)


def test_hungarian_finds_the_optimum_greedy_misses():
    # Greedy would pair A1-B1 (5/7) and leave A2-B2 (0); the optimum pairs A1-B2 (3/7) and A2-B1 (4/6).
    ref = {"A1": list("abcdef"), "A2": list("abcg")}
    other = {"B1": list("abcdeg"), "B2": list("defh")}
    match = match_modules(ref, other)
    np.testing.assert_allclose(match.jaccard, [[5 / 7, 3 / 7], [4 / 6, 0.0]])
    assert sorted((a, b) for a, b, _ in match.pairs) == [("A1", "B2"), ("A2", "B1")]
    assert match.mean_jaccard == pytest.approx((3 / 7 + 4 / 6) / 2)
    assert match.change == pytest.approx(1 - (3 / 7 + 4 / 6) / 2)
    assert match.n_matched == 2 and match.unmatched_a == [] and match.unmatched_b == []


def test_unequal_counts_leave_modules_unmatched_and_count_as_zero():
    ref = {"M1": ["a", "b", "c"], "M2": ["d", "e", "f"], "M3": ["g", "h", "i"]}
    other = {"X": ["d", "e", "f"], "Y": ["a", "b", "c", "z"]}
    match = match_modules(ref, other)
    assert dict((a, b) for a, b, _ in match.pairs) == {"M1": "Y", "M2": "X"}
    assert match.unmatched_a == ["M3"] and match.unmatched_b == []
    assert (match.n_a, match.n_b, match.n_matched) == (3, 2, 2)
    # the unmatched reference module counts as Jaccard 0 over max(3, 2) modules
    assert match.mean_jaccard == pytest.approx((1.0 + 3 / 4) / 3)
    # and the other way round the surplus is on the other side
    back = match_modules(other, ref)
    assert back.unmatched_b == ["M3"] and back.mean_jaccard == pytest.approx(match.mean_jaccard)


def test_matching_agrees_with_brute_force():
    rng = np.random.default_rng(0)
    genes = [f"g{i}" for i in range(12)]
    for _ in range(20):
        ref = {f"R{i}": list(rng.choice(genes, rng.integers(2, 6), replace=False)) for i in range(3)}
        other = {f"O{i}": list(rng.choice(genes, rng.integers(2, 6), replace=False)) for i in range(4)}
        match = match_modules(ref, other)
        best = max(sum(match.jaccard[r, c] for r, c in enumerate(perm)) for perm in itertools.permutations(range(4), 3))
        assert sum(j for _, _, j in match.pairs) == pytest.approx(best)


def test_identical_disjoint_and_empty_module_sets():
    mods = {"M1": ["a", "b"], "M2": ["c", "d", "e"]}
    same = match_modules(mods, {"N1": ["c", "d", "e"], "N2": ["b", "a"]})
    assert same.change == 0.0 and same.mean_jaccard == 1.0 and same.n_matched == 2
    disjoint = match_modules({"M1": ["a", "b"]}, {"N1": ["c", "d"]})
    assert disjoint.change == 1.0 and disjoint.n_matched == 0  # an assigned pair with nothing shared is no match
    assert disjoint.unmatched_a == ["M1"] and disjoint.unmatched_b == ["N1"]
    assert match_modules({}, {}).change == 0.0
    assert match_modules(mods, {}).change == 1.0
    assert match_modules({}, mods).unmatched_b == ["M1", "M2"]


def test_activity_correlation():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(50, 3))
    assert activity_correlation(a, a) == pytest.approx(1.0)
    assert activity_correlation(a, -a) == pytest.approx(-1.0)
    assert activity_correlation(a, 2 * a + 1) == pytest.approx(1.0)
    b = a.copy()
    b[:, 0] = 0.0  # a constant column has no correlation: averaged over the others
    assert activity_correlation(a, b) == pytest.approx(1.0)
    assert np.isnan(activity_correlation(np.zeros((5, 0)), np.zeros((5, 0))))
    with pytest.raises(ValueError, match="same shape"):
        activity_correlation(a, a[:, :2])


def test_knn_overlap_zero_for_identical_and_similar_embeddings():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 2))
    assert knn_overlap_distance(x, x) == 0.0
    rot = np.array([[0.0, -1.0], [1.0, 0.0]])
    assert knn_overlap_distance(x, 3 * x @ rot + 5) == pytest.approx(0.0)  # rigid motion and scale keep neighbours


def test_knn_overlap_positive_for_a_perturbed_embedding():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 2))
    d = knn_overlap_distance(x, x + rng.normal(scale=0.05, size=x.shape))
    assert 0.0 < d < 0.6
    d_more = knn_overlap_distance(x, x + rng.normal(scale=0.3, size=x.shape))
    assert d < d_more < 1.0


def test_knn_overlap_one_for_unrelated_embeddings():
    # 16 x 16 cells: in A a cell's 15 neighbours are its row, in B its column; they share nothing but the cell.
    n = 16
    row, col = np.divmod(np.arange(n * n), n)
    jitter = np.random.default_rng(0).normal(scale=0.01, size=(n * n, 2))
    a = np.column_stack([row * 100.0, np.zeros(n * n)]) + jitter
    b = np.column_stack([col * 100.0, np.zeros(n * n)]) + jitter
    assert knn_overlap_distance(a, b, k=15) == 1.0


def test_knn_indices_exclude_self_even_with_duplicates():
    x = np.array([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [5.0, 5.0], [6.0, 6.0]])
    idx = knn_indices(x, 2)
    assert idx.shape == (5, 2)
    assert not (idx == np.arange(5)[:, None]).any()
    assert set(idx[0]) == {1, 2}
    np.testing.assert_array_equal(knn_jaccard(idx, idx), np.ones(5))
    with pytest.raises(ValueError, match="at least"):
        knn_indices(x, 5)
    with pytest.raises(ValueError, match="same cells"):
        knn_overlap_distance(x, x[:4])
