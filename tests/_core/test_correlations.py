"""The correlation kernel against simple reference computations and a null simulation."""

import numpy as np
import pytest

from lava_sc._core.correlations import gram, knockoff_thresholds, locality_sketch, pair_correlations, standardise


def sparse_null_block(rng, n=150, g=400):
    """Independent NB genes, from very sparse to dense, log1p-transformed (no association at all)."""
    mu = rng.uniform(-3.5, 1.5, g)
    counts = rng.negative_binomial(2, 2 / (2 + np.exp(mu)), size=(n, g))
    return np.log1p(counts).astype(np.float32)


def test_gram_matches_numpy_correlation():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 30))
    z, valid = standardise(x)
    r = gram(z)
    iu = np.triu_indices(30, 1)
    assert valid.all()
    np.testing.assert_allclose(r[iu], np.corrcoef(x.T)[iu], atol=1e-5)


def test_partial_correlation_removes_a_shared_covariate():
    rng = np.random.default_rng(1)
    c = rng.normal(size=(200, 1))
    noise = rng.normal(size=(200, 2))
    x = c + 0.3 * noise
    z_plain, _ = standardise(x)
    z_part, _ = standardise(x, covariates=c)
    assert gram(z_plain)[0, 1] > 0.8
    # what is left is the correlation of the independent parts (up to their chance overlap with c)
    np.testing.assert_allclose(gram(z_part)[0, 1], np.corrcoef(noise.T)[0, 1], atol=0.01)


def test_constant_genes_are_flagged_not_nan():
    x = np.ones((50, 3))
    x[:, 1] = np.arange(50)
    z, valid = standardise(x)
    assert valid.tolist() == [False, True, False]
    assert np.isfinite(z).all()


def test_pair_correlations_match_gram():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(60, 10))
    x[:, 3] += x[:, 1]
    z, _ = standardise(x)
    r = pair_correlations(x, np.array([1, 0]), np.array([3, 9]))
    np.testing.assert_allclose(r, [gram(z)[1, 3], gram(z)[0, 9]], atol=1e-5)


def test_knockoff_threshold_is_first_bin_meeting_the_fdr():
    h_obs = np.zeros((1, 10), dtype=np.int64)
    h_null = np.zeros((1, 10), dtype=np.int64)
    h_obs[0, 5:] = 10  # 50 observed values in bins 5..9
    h_null[0, 4] = 50  # nulls all below bin 5
    first, null_at = knockoff_thresholds(h_obs, h_null, 0.05, 0)
    assert first[0] == 5 and null_at == 0


def test_no_discoveries_on_sparse_null_data_where_a_fixed_threshold_finds_many():
    rng = np.random.default_rng(3)
    false_total, naive_total = 0, 0
    for _ in range(10):
        x = sparse_null_block(rng)
        sketch = locality_sketch(x, x > 0, rng=rng, min_detected=0.0, min_abs_r=0.0)
        false_total += len(sketch.r)
        r = np.corrcoef(x.T)
        naive_total += int((np.abs(r[np.triu_indices_from(r, 1)]) >= 0.3).sum())
    print(f"null data: {false_total} LAVA discoveries vs {naive_total} pairs with |r| >= 0.3 in 10 localities")
    assert naive_total > 50
    assert false_total <= 5


@pytest.mark.parametrize("two_sided", [False, True])
def test_planted_pairs_recovered_with_controlled_false_discovery_proportion(two_sided):
    rng = np.random.default_rng(4)
    fdp, power = [], []
    for _ in range(10):
        x = sparse_null_block(rng)
        factor = rng.normal(size=(len(x), 1))
        x[:, :20] = np.log1p(rng.poisson(np.exp(0.2 + 0.8 * factor + 0.4 * rng.normal(size=(len(x), 20)))))
        s = locality_sketch(x, x > 0, rng=rng, two_sided=two_sided)
        true = (s.gene_a < 20) & (s.gene_b < 20)
        fdp.append((~true).sum() / max(len(true), 1))
        power.append(true.sum() / 190)
    print(f"mean FDP {np.mean(fdp):.3f}, mean power {np.mean(power):.2f}")
    assert np.mean(fdp) <= 0.08
    assert np.mean(power) >= 0.7
