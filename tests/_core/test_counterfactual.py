"""Kernels of discriminative attribution from counterfactuals (:mod:`lava_sc._core.counterfactual`)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit, logit

from lava_sc._core import counterfactual as cf


@pytest.fixture
def model():
    """A logistic regression with non-trivial standardisation."""
    rng = np.random.default_rng(0)
    g = 12
    return cf.LinearClassifier(
        mean=rng.normal(size=g), scale=rng.uniform(0.5, 2.0, g), coef=rng.normal(size=g), intercept=0.3
    )


@pytest.fixture
def pairs():
    rng = np.random.default_rng(1)
    return rng.normal(size=(7, 12)), rng.normal(size=(7, 12))


def test_integrated_gradients_on_logit_is_exact(model, pairs):
    x, x_cf = pairs
    expected = (x - x_cf) * model.weights  # (x - x') * w, w the weights on raw features
    for n_steps in (1, 5, 32):
        ig = cf.attribute(model, x, x_cf, method="integrated_gradients", target="logit", n_steps=n_steps)
        np.testing.assert_allclose(ig, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ig.sum(axis=1), model.logit(x) - model.logit(x_cf), rtol=1e-10)
    gxi = cf.attribute(model, x, x_cf, method="gradient_x_input", target="logit")
    np.testing.assert_allclose(gxi, expected, rtol=1e-12, atol=1e-12)


def test_weights_are_the_logit_gradient(model, pairs):
    x, _ = pairs
    eps = 1e-6
    numeric = np.array(
        [(model.logit(x[:1] + eps * e) - model.logit(x[:1] - eps * e))[0] / (2 * eps) for e in np.eye(12)]
    )
    np.testing.assert_allclose(numeric, model.weights, rtol=1e-6)


def test_integrated_gradients_on_probability_is_complete(model, pairs):
    x, x_cf = pairs
    ig = cf.attribute(model, x, x_cf, method="integrated_gradients", target="probability", n_steps=512)
    np.testing.assert_allclose(ig.sum(axis=1), model.proba(x) - model.proba(x_cf), atol=1e-5)
    # one common factor per pair: the ranking of features is that of the logit attributions
    ratio = ig / ((x - x_cf) * model.weights)
    np.testing.assert_allclose(ratio, ratio[:, :1] * np.ones_like(ratio), rtol=1e-10)


def test_hybrid_and_restored_bounds(model, pairs):
    x, x_cf = pairs
    g = x.shape[1]
    order = cf.attribution_order(cf.attribute(model, x, x_cf))
    curve = cf.mask_curve(model, x, x_cf, order, np.array([0, g]))
    np.testing.assert_allclose(curve[:, 0], 0.0, atol=1e-12)  # empty mask: the counterfactual itself
    np.testing.assert_allclose(curve[:, 1], 1.0, rtol=1e-10)  # full mask: the query itself
    # the linear shortcut equals evaluating the explicit hybrids
    sizes = np.arange(g + 1)
    fast = cf.mask_curve(model, x, x_cf, order, sizes)
    for k in sizes:
        mask = np.zeros_like(x, dtype=bool)
        np.put_along_axis(mask, order[:, :k], True, axis=1)
        p_h = model.proba(cf.hybrid(x, x_cf, mask))
        slow = cf.restored(p_h, model.proba(x), model.proba(x_cf))
        np.testing.assert_allclose(fast[:, k], slow, rtol=1e-9, atol=1e-12)


def test_set_restored_matches_hybrids(model, pairs):
    x, x_cf = pairs
    rng = np.random.default_rng(3)
    sets = rng.random((12, 4)) < 0.4
    sets[:, 0], sets[:, 1] = False, True
    got = cf.set_restored(model, x, x_cf, sets)
    np.testing.assert_allclose(got[:, 0], 0.0, atol=1e-12)
    np.testing.assert_allclose(got[:, 1], 1.0, rtol=1e-10)
    for j in range(4):
        p_h = model.proba(cf.hybrid(x, x_cf, np.broadcast_to(sets[:, j], x.shape)))
        np.testing.assert_allclose(got[:, j], (p_h - model.proba(x_cf)) / (model.proba(x) - model.proba(x_cf)))


def test_nearest_counterfactual_is_brute_force_nearest():
    rng = np.random.default_rng(4)
    query, pool = rng.normal(size=(40, 5)), rng.normal(size=(60, 5))
    idx, dist = cf.nearest_counterfactuals(query, pool)
    d = np.linalg.norm(query[:, None, :] - pool[None, :, :], axis=2)
    np.testing.assert_array_equal(idx, d.argmin(axis=1))
    np.testing.assert_allclose(dist, d.min(axis=1))


def test_mask_sizes_and_area():
    sizes = cf.mask_sizes(285, 20)
    assert sizes[0] == 0 and sizes[1] == 1 and sizes[-1] == 285
    assert np.all(np.diff(sizes) > 0) and len(sizes) <= 21
    assert list(cf.mask_sizes(3, 20)) == [0, 1, 2, 3]
    f = np.linspace(0, 1, 11)
    assert cf.area_under_curve(f, f) == pytest.approx(0.5)
    assert cf.area_under_curve(f, np.ones_like(f)) == pytest.approx(1.0)


def test_restored_is_exact_for_a_hand_made_pair():
    # one gene with weight 2, intercept 0: logit(x) = 2 x
    m = cf.LinearClassifier(mean=np.zeros(2), scale=np.ones(2), coef=np.array([2.0, 0.0]), intercept=0.0)
    x, x_cf = np.array([[1.0, 5.0]]), np.array([[-1.0, 0.0]])
    np.testing.assert_allclose(cf.attribute(m, x, x_cf), [[4.0, 0.0]])
    curve = cf.mask_curve(m, x, x_cf, np.array([[0, 1]]), np.array([0, 1, 2]))
    np.testing.assert_allclose(curve, [[0.0, 1.0, 1.0]])
    assert expit(2.0) == pytest.approx(m.proba(x)[0]) and logit(m.proba(x_cf)[0]) == pytest.approx(-2.0)


def _three_gene_data(seed=0, n=200, g=40):
    rng = np.random.default_rng(seed)
    y = np.r_[np.ones(n // 2), np.zeros(n // 2)].astype(int)
    x = rng.normal(size=(n, g))
    x[:, :3] += 2.0 * y[:, None]
    return x, y


def test_dac_attribution_beats_random_when_three_genes_separate():
    x, y = _three_gene_data()
    model = cf.fit_classifier(x, y, C=1.0)
    acc, folds = cf.heldout_accuracy(x, y, C=1.0)
    assert acc > 0.9 and folds == 5
    xa, xb = x[y == 1], x[y == 0]
    idx, _ = cf.nearest_counterfactuals(xa, xb)
    x_cf = xb[idx]
    keep = (model.proba(xa) > 0.5) & (model.proba(x_cf) < 0.5)
    attr = cf.attribute(model, xa[keep], x_cf[keep])
    assert set(np.argsort(-attr.mean(axis=0))[:3]) == {0, 1, 2}
    sizes = cf.mask_sizes(x.shape[1], 20)
    frac = sizes / x.shape[1]
    dac = cf.area_under_curve(
        frac, cf.mask_curve(model, xa[keep], x_cf[keep], cf.attribution_order(attr), sizes).mean(0)
    )
    rnd_order = cf.random_orders(int(keep.sum()), x.shape[1], np.random.default_rng(0))
    rnd = cf.area_under_curve(frac, cf.mask_curve(model, xa[keep], x_cf[keep], rnd_order, sizes).mean(0))
    print(f"DAC AUC {dac:.3f} vs random {rnd:.3f}")
    assert dac > rnd + 0.3


def test_heldout_accuracy_folds_for_tiny_groups():
    x, y = _three_gene_data(n=8, g=5)
    y = np.array([1, 1, 1, 1, 1, 1, 0, 0])
    _, folds = cf.heldout_accuracy(x, y)
    assert folds == 2
    with pytest.raises(ValueError, match="at least 2"):
        cf.heldout_accuracy(x, np.array([1] * 7 + [0]))
