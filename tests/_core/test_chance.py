"""The min_support="auto" threshold: chance recurrence with uneven genes and overlapping localities."""

import numpy as np
import pytest
from scipy.stats import poisson

from lava_sc._core.chance import RECURRENCE_FDR, chance_support, uniform_chance_support

N_GENES = 400
PROGRAMME_GENES = np.arange(45)  # three programmes of 15 genes: 0-14, 15-29, 30-44


def simulated_support(scale: float, *, programme_support: float, size: float = 5.0, seed: int = 0):
    """Support of every gene pair: chance pairs negative binomial with mean ``scale * w_a * w_b``
    (genes' propensities log-normal, programme genes twice as prone), programme pairs Poisson."""
    rng = np.random.default_rng(seed)
    w = rng.lognormal(0.0, 0.6, N_GENES)
    w[PROGRAMME_GENES] *= 2.0
    ga, gb = np.triu_indices(N_GENES, 1)
    mean = scale * w[ga] * w[gb]
    support = rng.negative_binomial(size, size / (size + mean))
    real = (ga < 45) & (gb < 45) & (ga // 15 == gb // 15)
    support[real] = rng.poisson(programme_support, real.sum())
    found = support > 0
    return support[found], ga[found], gb[found], real[found]


def chance_share(threshold, support, real):
    kept = support >= threshold
    return (kept & ~real).sum() / max(kept.sum(), 1)


@pytest.mark.parametrize("scale", [0.03, 0.15, 0.5])
def test_few_chance_pairs_pass_however_many_localities(scale):
    """Chance support grows with the number of localities (scale); the threshold follows it."""
    support, ga, gb, real = simulated_support(scale, programme_support=60.0)
    threshold = chance_support(support, ga, gb, N_GENES)
    assert (support[real] >= threshold).mean() > 0.99
    assert chance_share(threshold, support, real) <= 2 * RECURRENCE_FDR


def test_uniform_rate_lets_clustered_uneven_chance_pairs_through():
    """What the model is for: at many localities the uniform Poisson rate admits mostly chance pairs."""
    support, ga, gb, real = simulated_support(0.5, programme_support=60.0)
    n_pairs = N_GENES * (N_GENES - 1) / 2
    uniform = uniform_chance_support(float(np.sum(support == 1)), n_pairs)
    threshold = chance_support(support, ga, gb, N_GENES)
    assert chance_share(uniform, support, real) > 0.3
    assert threshold > uniform


def test_threshold_rises_with_the_chance_rate():
    thresholds = [chance_support(*simulated_support(s, programme_support=60.0)[:3], N_GENES) for s in (0.03, 0.15, 0.5)]
    assert thresholds == sorted(thresholds) and thresholds[0] < thresholds[-1]


def test_small_data_keeps_weakly_recurring_programmes():
    """A few localities: programme pairs recur 2-5 times, chance pairs about once; 2 keeps them."""
    rng = np.random.default_rng(1)
    ga, gb = np.triu_indices(N_GENES, 1)
    support = rng.poisson(0.002, len(ga))
    real = (ga < 45) & (gb < 45) & (ga // 15 == gb // 15)
    support[real] = 2 + rng.poisson(1.5, real.sum())
    found = support > 0
    assert chance_support(support[found], ga[found], gb[found], N_GENES) == 2


def test_no_single_discoveries_gives_the_floor():
    assert chance_support(np.array([5, 7]), np.array([0, 1]), np.array([1, 2]), 10) == 2
    assert chance_support(np.array([], dtype=int), np.array([], dtype=int), np.array([], dtype=int), 10) == 2


def test_uniform_rule_is_the_poisson_tail():
    n_pairs, n_once = 499_500.0, 32_000.0
    s = uniform_chance_support(n_once, n_pairs)
    lam = n_once / n_pairs
    assert n_pairs * poisson.sf(s - 1, lam) < 1 <= n_pairs * poisson.sf(s - 2, lam)


def test_dense_recurrence_at_every_support_does_not_drown_the_programmes():
    """State genes co-vary in every locality (support spread over 1-40, not chance-like): the fit
    cannot tell them from chance, and the threshold must stop before it discards the programmes."""
    rng = np.random.default_rng(2)
    ga, gb = np.triu_indices(N_GENES, 1)
    support = rng.poisson(0.02, len(ga))
    state = (ga >= 100) & (gb >= 100) & (ga < 250) & (gb < 250)
    support[state] = np.minimum(rng.geometric(0.15, state.sum()), 40)
    real = (ga < 45) & (gb < 45) & (ga // 15 == gb // 15)
    support[real] = rng.poisson(60.0, real.sum())
    found = support > 0
    threshold = chance_support(support[found], ga[found], gb[found], N_GENES)
    assert (support[real] >= threshold).mean() > 0.99
