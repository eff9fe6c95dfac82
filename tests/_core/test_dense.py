"""Dense-component removal and pooled thresholds: what they remove, what they keep, calibration."""

import numpy as np
import pytest
import scipy.sparse as sp

from lava_sc._core.correlations import SketchOptions, locality_sketch, sketch_localities, standardise
from lava_sc._core.dense import dense_components, participation, remove_dense, top_eigenpairs

N, N_GENES, N_PROGRAM = 200, 600, 12


def locality(rng, *, state=0.25, n_state=2, program=0.9, n_program=N_PROGRAM, n=N, n_genes=N_GENES):
    """Log-normal-ish expression: a dense rank-``n_state`` state on every gene, a program on the first genes."""
    log_mean = rng.uniform(-1.5, 1.5, n_genes) + rng.standard_normal((n, n_state)) @ (
        state * rng.standard_normal((n_state, n_genes))
    )
    log_mean[:, :n_program] += program * rng.standard_normal((n, 1))
    counts = rng.poisson(np.exp(log_mean))
    return np.log1p(counts).astype(np.float32)


def standardised(x, rng):
    z, _ = standardise(x)
    z = np.asfortranarray(z)
    perm = rng.permutation(len(x))
    pi2 = np.concatenate([perm, perm])
    z_null = np.asfortranarray(
        np.column_stack([z[pi2[k % len(x) : k % len(x) + len(x)], k] for k in range(z.shape[1])])
    )
    return z, z_null, pi2


def test_top_eigenpairs_match_a_full_decomposition():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((120, 400))
    x[:, :50] += 3 * rng.standard_normal((120, 1))
    x[:, 50:300] += 1.5 * rng.standard_normal((120, 1))
    gram = x @ x.T
    vals, vecs = top_eigenpairs(gram, 2, rng)
    ref_vals, ref_vecs = np.linalg.eigh(gram)
    np.testing.assert_allclose(vals, ref_vals[::-1][:2], rtol=1e-6)
    np.testing.assert_allclose(np.abs(np.sum(vecs * ref_vecs[:, ::-1][:, :2], axis=0)), 1.0, atol=1e-6)


def test_participation_counts_the_genes_a_component_is_spread_over():
    for m in (1, 12, 300):
        v = np.zeros((1000, 1))
        v[:m] = 1 / np.sqrt(m)
        assert participation(v)[0] == pytest.approx(m)


def test_the_state_is_found_and_the_program_is_not():
    rng = np.random.default_rng(1)
    x = locality(rng)
    z, z_null, _ = standardised(x, rng)
    u = dense_components(z, z_null, rng)
    assert u.shape[1] == 2  # the rank-2 state
    np.testing.assert_allclose(u.T @ u, np.eye(2), atol=1e-8)
    program_score = z[:, :N_PROGRAM].sum(axis=1)
    # the program's direction in cell space is not among the removed ones
    assert np.linalg.norm(u.T @ program_score) / np.linalg.norm(program_score) < 0.3


def test_no_state_nothing_removed():
    rng = np.random.default_rng(2)
    z, z_null, pi2 = standardised(locality(rng, state=0.0), rng)
    assert dense_components(z, z_null, rng).shape[1] == 0
    before = z.copy()
    assert remove_dense(z, z_null, pi2, rng).shape[1] == 0
    np.testing.assert_array_equal(z, before)


def test_removal_keeps_the_program_and_drops_state_pairs():
    rng = np.random.default_rng(3)
    x = locality(rng, state=0.3)
    z, z_null, pi2 = standardised(x, rng)
    r_before = z.T @ z
    assert remove_dense(z, z_null, pi2, rng).shape[1] == 2
    r_after = z.T @ z
    iu = np.triu_indices(N_GENES, 1)
    background = (iu[0] >= N_PROGRAM) & (iu[1] >= N_PROGRAM)
    program = (iu[0] < N_PROGRAM) & (iu[1] < N_PROGRAM)
    assert np.abs(r_before[iu][background]).mean() > 1.5 * np.abs(r_after[iu][background]).mean()
    assert r_after[iu][program].mean() > 0.8 * r_before[iu][program].mean()
    np.testing.assert_allclose(np.linalg.norm(z, axis=0), 1.0, atol=1e-4)
    # the null lives in the same subspace: orthogonal to the removed directions, unit columns
    np.testing.assert_allclose(np.linalg.norm(z_null, axis=0), 1.0, atol=1e-4)


def test_default_sketch_keeps_the_program_and_drops_the_state():
    rng = np.random.default_rng(4)
    x = locality(rng, state=0.3)
    kept = locality_sketch(x, x > 0, rng=np.random.default_rng(0), max_partners=None)
    again = locality_sketch(x, x > 0, rng=np.random.default_rng(0), max_partners=None)
    np.testing.assert_array_equal(kept.r, again.r)  # deterministic
    in_program = (kept.gene_a < N_PROGRAM) & (kept.gene_b < N_PROGRAM)
    assert in_program.sum() >= 0.8 * N_PROGRAM * (N_PROGRAM - 1) / 2
    assert (~in_program).sum() <= 0.1 * len(kept.r) + 1
    assert kept.n_dense == 2


def test_dense_state_alone_is_calibrated():
    """A dense state and no program: after removal, very few pairs are called (pooled over localities)."""
    rng = np.random.default_rng(5)
    n_loc, size = 10, 150
    x = np.vstack([locality(rng, state=0.3, program=0.0, n=size, n_genes=400) for _ in range(n_loc)])
    membership = sp.csc_matrix((np.ones(n_loc * size), (np.arange(n_loc * size), np.repeat(np.arange(n_loc), size))))
    with_removal = sketch_localities(x, membership, SketchOptions(max_partners=None), random_state=0)
    without = sketch_localities(x, membership, SketchOptions(max_partners=None, remove_dense=False), random_state=0)
    found = sum(len(s.r) for s in with_removal)
    tests = sum(s.n_tests for s in with_removal)
    print(f"dense state only: {found} pairs after removal, {sum(len(s.r) for s in without)} without, of {tests} tests")
    assert found <= 0.001 * tests
    assert sum(len(s.r) for s in without) > 20 * max(found, 1)


def test_pooled_thresholds_find_a_small_program_that_no_single_locality_can_report():
    """6 genes = 15 pairs per locality: knockoff+ needs 1 / fdr = 20 discoveries in one locality."""
    rng = np.random.default_rng(6)
    n_loc, size = 12, 150
    x = np.vstack([locality(rng, state=0.0, program=0.8, n_program=6, n=size, n_genes=300) for _ in range(n_loc)])
    membership = sp.csc_matrix((np.ones(n_loc * size), (np.arange(n_loc * size), np.repeat(np.arange(n_loc), size))))
    pooled = sketch_localities(x, membership, SketchOptions(max_partners=None), random_state=0)
    single = sketch_localities(x, membership, SketchOptions(max_partners=None, pooled=False), random_state=0)
    program = sum(int(((s.gene_a < 6) & (s.gene_b < 6)).sum()) for s in pooled)
    other = sum(int(((s.gene_a >= 6) | (s.gene_b >= 6)).sum()) for s in pooled)
    assert sum(len(s.r) for s in single) == 0
    assert program >= 0.7 * 15 * n_loc
    assert other <= 0.1 * (program + other) + 1  # false discoveries within the fdr
