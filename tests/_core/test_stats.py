"""The moderated variances of tl.differential: the prior fit, its leave-one-out use and the moderated Welch test."""

import numpy as np
import pytest
from scipy import special, stats

from lava_sc._core.stats import moderated, variance_priors, welch_treat


def hierarchical_variances(rng, n_groups: int, members: int, df: float, d0: float, scale_sd: float = 1.0):
    """Sample variances ``s^2 ~ sigma^2 chi^2_df / df``, ``1 / sigma^2 ~ chi^2_d0 / (d0 sigma_g^2)``,
    with each group's ``sigma_g^2`` log-normal (groups differ, members of a group scatter around it)."""
    group_var = np.exp(rng.normal(scale=scale_sd, size=(n_groups, 1)))
    true = group_var * d0 / rng.chisquare(d0, size=(n_groups, members))
    return true * rng.chisquare(df, size=(n_groups, members)) / df, np.full((n_groups, members), df)


@pytest.mark.parametrize("d0", [3.0, 10.0, 30.0])
def test_prior_degrees_of_freedom_are_recovered_within_groups(d0):
    """Groups whose variances differ by orders of magnitude do not hide how much members scatter."""
    rng = np.random.default_rng(int(d0))
    variances, df = hierarchical_variances(rng, 3000, 10, df=5.0, d0=d0, scale_sd=2.0)
    _, weight = variance_priors(variances, df)
    assert np.median(weight) == pytest.approx(d0, rel=0.2)  # below the cap: 9 peers x 5 = 45
    _, weight = variance_priors(variances[:, :3], df[:, :3])
    assert (weight <= 10).all() and (weight == min(10.0, weight.max())).all()  # capped at 2 peers x 5


def test_prior_scale_leaves_the_member_out():
    """Members that agree (d0 = inf): a member's prior is its peers' variance, whatever its own."""
    variances = np.vstack([[1.0, 2.0, 4.0], np.ones((50, 3)), [3.0, 3.0, 0.0]])
    df = np.vstack([[4.0, 4.0, 4.0], np.full((50, 3), 4.0), [2.0, 6.0, 5.0]])
    s0, weight = variance_priors(variances, df)
    shift = special.digamma(2.0) - np.log(2.0)  # E log(chi^2_4 / 4)
    assert s0[0, 0] == pytest.approx(np.exp(np.mean(np.log([2.0, 4.0]) - shift)))
    assert weight[0, 0] == 8.0  # d0 = inf, capped at the peers' 4 + 4
    changed = variances.copy()
    changed[0, 0] = 100.0
    s0_changed, _ = variance_priors(changed, df)
    assert s0_changed[0, 0] == pytest.approx(s0[0, 0]) and s0_changed[0, 1] > 2 * s0[0, 1]
    # a zero variance is not fitted on, but borrows from its group, with what the others know
    assert weight[-1, 2] == 8.0 and np.isfinite(s0[-1, 2])
    assert weight[-1, 0] == 6.0  # the zero variance adds nothing to what member 0 can borrow


def test_a_member_with_no_usable_peer_is_not_moderated():
    variances = np.array([[2.0, np.nan, np.nan], [1.0, 1.5, 0.8]])
    df = np.array([[3.0, 0.0, 0.0], [3.0, 3.0, 3.0]])
    s0, weight = variance_priors(variances, df)
    assert weight[0, 0] == 0 and np.isnan(s0[0, 0])
    value, d = moderated(np.array([2.0]), 3.0, (s0[0, :1], weight[0, :1]))
    assert value[0] == 2.0 and d[0] == 3.0
    # too few variances to fit a spread at all: no moderation anywhere
    s0, weight = variance_priors(np.array([[1.0, 2.0]]), np.array([[3.0, 3.0]]))
    assert (weight == 0).all()


def test_moderated_is_the_posterior_mean():
    value, d = moderated(np.array([0.5, 2.0]), 3.0, (np.array([1.0, 1.0]), np.array([6.0, np.inf])))
    assert value[0] == pytest.approx((6 * 1.0 + 3 * 0.5) / 9) and d[0] == 9
    assert value[1] == 1.0 and np.isinf(d[1])
    assert moderated(np.array([0.5]), 3.0, None) == (np.array([0.5]), 3.0)


def test_moderated_welch_by_hand():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(6, 2)), rng.normal(0.4, size=(2, 2))
    s0, w = np.array([0.8, 1.3]), np.array([4.0, 0.0])
    prior = ((s0, w), (s0 * 2, w + 1))
    t, p = welch_treat(x, y, prior=prior, max_df=7.5)
    for j in range(2):
        vx = (w[j] * s0[j] + 5 * x[:, j].var(ddof=1)) / (w[j] + 5) / 6
        vy = ((w[j] + 1) * 2 * s0[j] + 1 * y[:, j].var(ddof=1)) / (w[j] + 2) / 2
        dof = min((vx + vy) ** 2 / (vx**2 / (5 + w[j]) + vy**2 / (1 + w[j] + 1)), 7.5)
        d = x[:, j].mean() - y[:, j].mean()
        assert t[j] == pytest.approx(d / np.sqrt(vx + vy))
        assert p[j] == pytest.approx(2 * stats.t.sf(abs(t[j]), dof))
    # no prior weight and no cap: plain Welch
    t0, p0 = welch_treat(x, y, prior=((s0, np.zeros(2)), (s0, np.zeros(2))))
    ref = stats.ttest_ind(x, y, equal_var=False)
    np.testing.assert_allclose(t0, ref.statistic)
    np.testing.assert_allclose(p0, ref.pvalue)


def test_two_donors_borrowing_from_their_group_keep_the_false_positive_rate():
    """Null: one group's variance differs across modules; the reference has 2 donors, the other side 6.

    Plain Welch trusts the 2-donor variance (1 degree of freedom); the moderated test borrows the
    module's variance from the group's other condition, and with the cap on the degrees of freedom
    does not count that data twice."""
    rng = np.random.default_rng(0)
    n, m, alpha = 4000, 8, 0.05
    scale = np.exp(rng.normal(size=m))  # modules differ by orders of magnitude
    p_plain, p_moderated = [], []
    for _ in range(n // m):
        x, y, z = (rng.normal(size=(k, m)) * scale for k in (6, 2, 6))  # condition, reference, third condition
        sides = [x, y, z]
        variances = np.stack([s.var(axis=0, ddof=1) for s in sides], axis=1)  # modules x sides
        df = np.tile([5.0, 1.0, 5.0], (m, 1))
        s0, w = variance_priors(variances, df)
        total = df.sum(axis=1)
        p_moderated.append(welch_treat(x, y, prior=((s0[:, 0], w[:, 0]), (s0[:, 1], w[:, 1])), max_df=total)[1])
        p_plain.append(welch_treat(x, y)[1])
    rate = {k: float((np.concatenate(v) < alpha).mean()) for k, v in (("plain", p_plain), ("moderated", p_moderated))}
    print(f"\nfalse-positive rate at {alpha}, 6 vs 2 units, {n} tests: {rate}")
    assert 0.02 <= rate["moderated"] <= 0.07
