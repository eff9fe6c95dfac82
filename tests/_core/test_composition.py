"""Tests for :mod:`lava_sc._core.composition` (group mix of localities and of module activity)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from lava_sc._core.composition import (
    MIXED_BELOW,
    PRESENT_FRACTION,
    locality_composition,
    mixed_support,
    top_groups,
)

# cells 0-3: group 0, 4-6: group 1, 7-8: group 2, 9: missing (NaN category)
CODES = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, -1])
LOCALITIES = [
    [0, 1, 2, 3],  # L0 pure group 0
    [2, 3, 4, 5],  # L1 half 0, half 1
    [4, 7, 8, 9],  # L2 one of group 1, two of group 2, one missing cell
    [9],  # L3 only a missing cell
    [0, 4, 7],  # L4 evenly mixed over the three groups
]


def membership(sets, n_cells=10, fmt="csr"):
    rows = np.concatenate([np.asarray(s) for s in sets])
    cols = np.concatenate([np.full(len(s), j) for j, s in enumerate(sets)])
    return sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_cells, len(sets))).asformat(fmt)


def test_exact_fractions_purity_entropy():
    comp = locality_composition(membership(LOCALITIES), CODES, 3)
    expected = np.array([[1, 0, 0], [0.5, 0.5, 0], [0, 1 / 3, 2 / 3], [np.nan] * 3, [1 / 3, 1 / 3, 1 / 3]], dtype=float)
    np.testing.assert_allclose(comp.fractions, expected, equal_nan=True)
    np.testing.assert_allclose(comp.n_labelled, [4, 4, 3, 0, 3])
    np.testing.assert_allclose(comp.purity, [1, 0.5, 2 / 3, np.nan, 1 / 3], equal_nan=True)
    h2 = -(1 / 3 * np.log2(1 / 3) + 2 / 3 * np.log2(2 / 3))
    np.testing.assert_allclose(comp.entropy, [0, 1, h2, np.nan, np.log2(3)], equal_nan=True)
    np.testing.assert_array_equal(comp.n_groups_present, [1, 2, 2, 0, 3])
    np.testing.assert_array_equal(comp.dominant, [0, 0, 2, -1, 0])  # L1 tie: lowest code


def test_pure_localities_have_purity_one_and_zero_entropy():
    comp = locality_composition(membership([[0, 1, 2, 3], [4, 5, 6], [7, 8]]), CODES, 3)
    np.testing.assert_array_equal(comp.purity, [1, 1, 1])
    np.testing.assert_array_equal(comp.entropy, [0, 0, 0])
    np.testing.assert_array_equal(comp.dominant, [0, 1, 2])
    np.testing.assert_array_equal(comp.n_groups_present, [1, 1, 1])


def test_entropy_is_maximal_for_evenly_mixed():
    rng = np.random.default_rng(0)
    n_groups, n_cells = 4, 400
    codes = np.repeat(np.arange(n_groups), n_cells // n_groups)
    even = [np.r_[0:25, 100:125, 200:225, 300:325]]
    others = [rng.choice(n_cells, size=100, replace=False) for _ in range(50)]
    comp = locality_composition(membership(even + others, n_cells), codes, n_groups)
    assert comp.entropy[0] == pytest.approx(np.log2(n_groups))
    assert comp.purity[0] == pytest.approx(1 / n_groups)
    assert (comp.entropy[1:] < comp.entropy[0]).all()
    assert (comp.purity[1:] > comp.purity[0]).all()


def test_missing_group_cells_are_ignored():
    m = membership(LOCALITIES)
    with_missing = locality_composition(m, CODES, 3)
    dropped = locality_composition(m[:9], CODES[:9], 3)  # the missing cell removed altogether
    np.testing.assert_allclose(with_missing.fractions, dropped.fractions, equal_nan=True)
    np.testing.assert_allclose(with_missing.entropy, dropped.entropy, equal_nan=True)
    assert np.isnan(with_missing.purity[3]) and with_missing.dominant[3] == -1


def test_present_threshold_is_inclusive():
    assert PRESENT_FRACTION == 0.1
    codes = np.array([1] + [0] * 9 + [1] + [0] * 10)  # 1 of 10 in group 1, then 1 of 11
    comp = locality_composition(membership([np.arange(10), np.arange(10, 21)], 21), codes, 2)
    np.testing.assert_array_equal(comp.n_groups_present, [2, 1])
    assert (
        locality_composition(membership([np.arange(10)], 21), codes, 2, present_fraction=0.2).n_groups_present[0] == 1
    )


@pytest.mark.parametrize("fmt", ["csc", "coo", "dense"])
def test_formats_agree_and_match_a_loop(fmt):
    rng = np.random.default_rng(1)
    n_cells, n_groups = 300, 5
    codes = rng.integers(-1, n_groups, size=n_cells)
    sets = [rng.choice(n_cells, size=40, replace=False) for _ in range(30)]
    m = membership(sets, n_cells)
    comp = locality_composition(m.toarray() if fmt == "dense" else m.asformat(fmt), codes, n_groups)
    for j, s in enumerate(sets):
        labelled = codes[s][codes[s] >= 0]
        frac = np.bincount(labelled, minlength=n_groups) / len(labelled)
        np.testing.assert_allclose(comp.fractions[j], frac)
        assert comp.purity[j] == pytest.approx(frac.max())
        nz = frac[frac > 0]
        assert comp.entropy[j] == pytest.approx(-(nz * np.log2(nz)).sum())


def test_bad_input():
    m = membership(LOCALITIES)
    with pytest.raises(ValueError, match="one code per cell"):
        locality_composition(m, CODES[:5], 3)
    with pytest.raises(ValueError, match=r"\[-1, 3\)"):
        locality_composition(m, np.r_[CODES[:-1], 3], 3)
    with pytest.raises(TypeError, match="integer group codes"):
        locality_composition(m, CODES.astype(float), 3)
    bad = m.copy()
    bad.data[0] = -1.0
    with pytest.raises(ValueError, match="non-negative"):
        locality_composition(bad, CODES, 3)


def test_mixed_support_extremes_and_weighted_purity():
    purity = np.array([1.0, 0.5, 2 / 3, np.nan, 1 / 3])
    activity = np.zeros((5, 5))
    activity[[1, 2, 4], 0] = [1.0, 2.0, 0.5]  # only in mixed localities
    activity[0, 1] = 3.0  # only in the pure one
    activity[[0, 1], 2] = [1.0, 3.0]  # a quarter pure, three quarters mixed
    activity[:, 3] = [2.0, -5.0, -1.0, 0.0, -3.0]  # negative activity is not support
    activity[3, 4] = 7.0  # only where the purity is unknown
    res = mixed_support(activity, purity)
    np.testing.assert_allclose(res.mixed_share, [1.0, 0.0, 0.75, 0.0, np.nan], equal_nan=True)
    np.testing.assert_allclose(res.mean_purity[1:4], [1.0, (1 + 3 * 0.5) / 4, 1.0])
    np.testing.assert_allclose(res.mean_purity[0], (0.5 + 2 * 2 / 3 + 0.5 / 3) / 3.5)
    np.testing.assert_allclose(res.mass, [3.5, 3.0, 4.0, 2.0, 0.0])
    assert MIXED_BELOW == 0.8
    # purity 2/3 counts as mixed at 0.8, pure at 0.6
    np.testing.assert_allclose(mixed_support(activity, purity, mixed_below=0.6).mixed_share[0], 1.5 / 3.5)
    with pytest.raises(ValueError, match="one purity per locality"):
        mixed_support(activity, purity[:4])


def test_top_groups_constructed():
    codes = np.array([0, 0, 1, 1, 1, -1])
    activity = np.array(
        [
            [1.0, -1.0, 0.0],
            [1.0, 3.0, 0.0],
            [4.0, -2.0, 0.0],
            [2.0, -2.0, 0.0],
            [0.0, -2.0, 0.0],
            [100.0, 50.0, 0.0],  # the missing cell: left out everywhere
        ],
        dtype=np.float32,
    )
    res = top_groups(activity, codes, 3)  # group 2 has no cells
    np.testing.assert_array_equal(res.n_cells, [2, 3, 0])
    np.testing.assert_allclose(res.mean, [[1, 2, np.nan], [1, -2, np.nan], [0, 0, np.nan]], equal_nan=True)
    np.testing.assert_allclose(res.share, [[0.25, 0.75, 0], [1, 0, 0], [np.nan] * 3], equal_nan=True)
    np.testing.assert_allclose(res.lift[0], [0.25 / 0.4, 0.75 / 0.6, np.nan], equal_nan=True)
    np.testing.assert_array_equal(res.top, [1, 0, 0])
    np.testing.assert_allclose(res.top_share, [0.75, 1.0, np.nan], equal_nan=True)
    np.testing.assert_array_equal(res.order[0], [1, 0, 2])


def test_top_groups_share_sums_to_one():
    rng = np.random.default_rng(2)
    codes = rng.integers(-1, 6, size=2000)
    res = top_groups(rng.normal(size=(2000, 4)), codes, 6)
    np.testing.assert_allclose(res.share.sum(axis=1), 1.0)
    with pytest.raises(ValueError, match="one code per cell"):
        top_groups(np.zeros((5, 2)), codes, 6)
    with pytest.raises(ValueError, match="NaN or inf"):
        top_groups(np.full((2000, 1), np.nan), codes, 6)
