"""Tests for :func:`lava_sc._core.score.module_set_activity` (module activity in arbitrary cell sets)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from lava_sc._core.score import module_locality_activity, module_set_activity


def sets_membership(n_cells: int, sets: list[np.ndarray]) -> sp.csc_matrix:
    rows = np.concatenate(sets)
    cols = np.concatenate([np.full(len(s), j) for j, s in enumerate(sets)])
    return sp.csc_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_cells, len(sets)))


def data(seed=0, n=120):
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n, 1))
    x = np.abs(np.c_[latent + rng.normal(scale=0.5, size=(n, 3)), rng.normal(size=(n, 2))]).astype(np.float32)
    x[rng.random(x.shape) < 0.2] = 0.0
    ga, gb = np.array([0, 0, 1, 3]), np.array([1, 2, 2, 4])
    module, weight = np.array([0, 0, 0, 1]), np.array([1.0, 0.5, 2.0, 1.0])
    sets = [np.arange(0, 40), np.arange(30, 100), np.arange(100, 120)]
    return x, sets_membership(n, sets), sets, ga, gb, module, weight


@pytest.mark.parametrize("sparse", [False, True])
def test_without_covariates_is_the_locality_kernel(sparse):
    x, membership, _, ga, gb, module, weight = data()
    matrix = sp.csr_matrix(x) if sparse else x
    got = module_set_activity(matrix, membership, ga, gb, module, weight, 2, min_detected=0.3)
    want = module_locality_activity(matrix, membership, ga, gb, module, weight, 2, min_detected=0.3)
    np.testing.assert_array_equal(got, want)


def test_covariates_give_weighted_partial_correlations():
    x, membership, sets, ga, gb, module, weight = data(seed=1)
    cov = np.random.default_rng(5).normal(size=(len(x), 2))
    got = module_set_activity(x, membership, ga, gb, module, weight, 2, min_detected=0.0, covariates=cov)
    for j, cells in enumerate(sets):
        design = np.c_[np.ones(len(cells)), cov[cells]]
        y = x[cells].astype(np.float64)
        resid = y - design @ np.linalg.lstsq(design, y, rcond=None)[0]
        r = np.array([np.corrcoef(resid[:, a], resid[:, b])[0, 1] for a, b in zip(ga, gb, strict=True)])
        want = [np.average(r[module == m], weights=weight[module == m]) for m in (0, 1)]
        np.testing.assert_allclose(got[j], want, atol=1e-5)
    # covariates that explain nothing change nothing
    plain = module_set_activity(x, membership, ga, gb, module, weight, 2, min_detected=0.0)
    flat = module_set_activity(
        x, membership, ga, gb, module, weight, 2, min_detected=0.0, covariates=np.zeros((120, 0))
    )
    np.testing.assert_allclose(flat, plain, atol=1e-6)


def test_detection_rule_and_bad_weights():
    x, membership, _, ga, gb, module, weight = data(seed=2)
    x[:40, 3] = 0.0  # gene 3 undetected in the first set: module 1 (pair 3-4) counts 0 there
    cov = np.zeros((120, 1))
    act = module_set_activity(x, membership, ga, gb, module, weight, 2, min_detected=0.1, covariates=cov)
    assert act[0, 1] == 0.0 and act[1, 1] != 0.0
    with pytest.raises(ValueError, match="non-zero weight"):
        module_set_activity(x, membership, ga, gb, module, np.array([0.0, 0.0, 0.0, 0.0]), 2, covariates=cov)


def test_signed_weights_give_a_bounded_activity():
    """A two-sided module (one positive, one negative pair) in a set where both pairs follow their sign:
    the activity is sum w r / sum |w| = 1, not a blow-up from a near-zero sum of weights."""
    rng = np.random.default_rng(0)
    z = rng.standard_normal(200)
    x = np.column_stack([z, z, -z + 1e-3 * rng.standard_normal(200)]).astype(np.float32) + 5
    membership = sp.csc_matrix(np.ones((200, 1)))
    act = module_set_activity(x, membership, [0, 0], [1, 2], [0, 0], [0.5, -0.49], 1, min_detected=0.0)
    assert act[0, 0] > 0.99 and act[0, 0] <= 1.0 + 1e-9
