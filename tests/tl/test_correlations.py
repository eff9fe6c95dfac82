import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import lava_sc as lv
from lava_sc.tl._correlations import null_copies


@pytest.fixture(scope="module")
def pbmc_loc(pbmc):
    adata = pbmc.copy()
    # one placement (21 localities), as when these properties were measured; with the default 5 the
    # scaled-vs-log-normalised median |r| difference is 0.07 (clipping at 10 in X), not 0.04
    lv.tl.localities(adata, n_cells=100, n_placements=1)
    return adata


def run(adata, **kwargs):
    out = adata.copy()
    lv.tl.correlations(out, **kwargs)
    return out


def test_sketch_matches_a_direct_computation(pbmc_loc):
    """Without dense-component removal every stored value is the plain Pearson r in its locality."""
    adata = run(pbmc_loc, remove_dense=False)
    assert not adata.uns["lava"]["correlations"]["n_dense_removed"].any()
    slot = adata.uns["lava"]
    sketch, pairs, genes = slot["sketch"], slot["pairs"], slot["genes"]
    assert sketch.shape == (adata.obsm["lava_localities"].shape[1], len(pairs))
    assert list(genes) == list(adata.var_names[adata.var["highly_variable"]])
    # every stored value is the plain Pearson correlation in that locality
    member = adata.obsm["lava_localities"].tocsc()
    coo = sketch.tocoo()
    for k in range(0, coo.nnz, max(1, coo.nnz // 25)):
        loc, col = coo.row[k], coo.col[k]
        cells = member[:, loc].indices
        a = adata[cells, pairs["gene_a"].iloc[col]].X.ravel()
        b = adata[cells, pairs["gene_b"].iloc[col]].X.ravel()
        assert coo.data[k] == pytest.approx(np.corrcoef(a, b)[0, 1], abs=1e-4)
    assert (coo.data >= 0.1).all()  # alternative="greater" and min_abs_r
    np.testing.assert_array_equal(pairs["support"], np.diff(sketch.tocsc().indptr))


def test_default_sketch_is_pearson_where_nothing_dense_was_removed(pbmc_loc):
    adata = run(pbmc_loc)
    slot = adata.uns["lava"]
    removed = slot["correlations"]["n_dense_removed"]
    assert removed.any()  # real PBMC localities have dense components (their populations' differences)
    member = adata.obsm["lava_localities"].tocsc()
    coo = slot["sketch"].tocoo()
    checked = 0
    for k in np.flatnonzero(removed[coo.row] == 0)[:50]:
        loc, col = coo.row[k], coo.col[k]
        cells = member[:, loc].indices
        a = adata[cells, slot["pairs"]["gene_a"].iloc[col]].X.ravel()
        b = adata[cells, slot["pairs"]["gene_b"].iloc[col]].X.ravel()
        assert coo.data[k] == pytest.approx(np.corrcoef(a, b)[0, 1], abs=1e-4)
        checked += 1
    print(f"pbmc68k: dense components removed per locality {np.bincount(removed).tolist()}; {checked} checked")


def test_far_fewer_pairs_than_a_fixed_threshold(pbmc_loc):
    adata = run(pbmc_loc)
    member = adata.obsm["lava_localities"].tocsc()
    genes = adata.uns["lava"]["genes"]
    naive = 0
    raw = adata.raw.to_adata()[:, genes].X.toarray()
    for loc in range(member.shape[1]):
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.corrcoef(raw[member[:, loc].indices].T)
        naive += int((np.abs(r[np.triu_indices_from(r, 1)]) >= 0.3).sum())
    found = adata.uns["lava"]["sketch"].nnz
    print(f"pbmc68k: {found} calibrated discoveries vs {naive} locality pairs with |r| >= 0.3")
    assert found < naive / 2


def test_scaled_and_log_normalised_data_agree_on_dense_genes(pbmc_loc):
    """Correlations are per-gene affine invariant: X (scaled) and raw (log-normalised) give the same r."""
    genes = ["CD74", "HLA-DRA", "HLA-DPB1", "CD79A", "LYZ", "S100A9"]
    # one permutation, as when this was measured: with 'auto' (8 on 6 genes) more weak pairs pass in
    # localities where the clipping at 10 moves r most, and the median difference is 0.06
    scaled = run(pbmc_loc, genes=genes, n_null=1)
    raw = pbmc_loc.raw.to_adata()
    raw.obsm = pbmc_loc.obsm.copy()
    raw.uns["lava"] = pbmc_loc.uns["lava"]
    lognorm = run(raw, genes=genes, n_null=1)
    a, b = sketch_entries(scaled), sketch_entries(lognorm)
    common = sorted(set(a) & set(b))
    assert len(common) >= 0.8 * max(len(a), len(b))
    diff = np.abs(np.array([a[k] for k in common]) - np.array([b[k] for k in common]))
    # scaled X is clipped at 10, which moves single localities' r a little
    assert np.median(diff) < 0.05 and diff.max() < 0.3


def sketch_entries(adata) -> dict:
    """Each stored correlation, keyed by (locality, gene_a, gene_b)."""
    slot = adata.uns["lava"]
    coo = slot["sketch"].tocoo()
    ga, gb = slot["pairs"]["gene_a"].to_numpy(), slot["pairs"]["gene_b"].to_numpy()
    return {(int(loc), ga[c], gb[c]): float(r) for loc, c, r in zip(coo.row, coo.col, coo.data, strict=True)}


@pytest.mark.parametrize("fmt", ["csr", "csc", "dense"])
def test_sparse_and_dense_x_give_identical_sketches(planted, fmt):
    adata = planted[:1500].copy()
    lv.tl.localities(adata, n_cells=100)
    ref = run(adata)
    adata.X = {"csr": sp.csr_matrix, "csc": sp.csc_matrix, "dense": lambda m: m.toarray()}[fmt](adata.X)
    other = run(adata)
    assert (ref.uns["lava"]["sketch"] != other.uns["lava"]["sketch"]).nnz == 0


def test_x_is_untouched_and_only_documented_keys_are_added(pbmc_loc):
    adata = pbmc_loc.copy()
    before = adata.X.copy()
    obsm_before = set(adata.obsm)
    lv.tl.correlations(adata)
    np.testing.assert_array_equal(adata.X, before)
    assert set(adata.obsm) == obsm_before
    assert {"sketch", "pairs", "genes", "correlations", "params"} <= set(adata.uns["lava"])


def test_partial_out_removes_mixing_driven_marker_pairs(planted):
    """Localities straddling two cell types make each type's markers 'correlate'; partialling out the type fixes it."""
    adata = planted.copy()
    umap = adata.obsm["X_umap"].copy()
    t0, t1 = ((adata.obs["cell_type"] == t).to_numpy() for t in ("T0", "T1"))
    umap[t1] += umap[t0].mean(0) - umap[t1].mean(0) + np.array([2.0, 0.0])  # T1 overlaps T0's edge
    adata.obsm["X_umap"] = umap
    lv.tl.localities(adata, n_cells=150)
    markers = [g for g in adata.var_names if g.startswith(("mk_T0", "mk_T1"))]
    plain = run(adata, genes=markers)
    adjusted = run(adata, genes=markers, partial_out="cell_type")
    n_plain, n_adjusted = plain.uns["lava"]["sketch"].nnz, adjusted.uns["lava"]["sketch"].nnz
    print(f"marker associations in mixed localities: plain {n_plain}, partial {n_adjusted}")
    assert n_plain >= 20
    assert n_adjusted <= n_plain / 10
    assert adjusted.uns["lava"]["params"]["correlations"]["partial_out"] == "cell_type"


def test_partial_out_identity_pcs_keeps_planted_modules(planted):
    """PCs of a cell-identity representation (here: the marker genes) leave within-type modules intact."""
    adata = planted.copy()
    lv.tl.localities(adata, n_cells=150)
    x = adata[:, adata.var_names.str.startswith("mk_")].X.toarray()
    u, s, _ = np.linalg.svd(x - x.mean(0), full_matrices=False)
    adata.obsm["X_identity"] = u[:, :5] * s[:5]
    plain = run(adata).uns["lava"]["pairs"]
    out = run(adata, partial_out="X_identity", n_partial_components=5).uns["lava"]["pairs"]
    n_plain = int(plain["gene_a"].str.startswith("typeB").sum())
    n_out = int(out["gene_a"].str.startswith("typeB").sum())
    assert n_out >= 0.8 * n_plain > 50


def test_two_sided_finds_negative_associations(planted):
    adata = planted.copy()
    lv.tl.localities(adata, n_cells=150)
    adata.X = adata.X.toarray()
    rng = np.random.default_rng(0)
    anti = adata[:, "typeB_0"].X.ravel()
    adata.X[:, -1] = anti.max() - anti + rng.normal(0, 0.01, adata.n_obs).astype(np.float32)
    out = run(adata, alternative="two-sided")
    assert (out.uns["lava"]["sketch"].data < 0).any()
    assert (run(adata).uns["lava"]["sketch"].data > 0).all()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"genes": ["CD74", "NOT_A_GENE"]}, KeyError, "NOT_A_GENE"),
        ({"genes": "CD74"}, TypeError, "list of gene names"),
        ({"genes": ["CD74", "CD74"]}, ValueError, "twice"),
        ({"genes": ["CD74"]}, ValueError, "at least two"),
        ({"layer": "counts"}, KeyError, "layer=None"),
        ({"fdr": 0}, ValueError, "fdr"),
        ({"alternative": "less"}, ValueError, "alternative"),
        ({"partial_out": "batch"}, KeyError, "sc.pp.pca"),
        ({"n_null": 0}, ValueError, "`n_null` must be >= 1"),
        ({"n_null": 9}, ValueError, "`n_null` must be <= 8"),
        ({"n_null": "many"}, TypeError, "`n_null` must be 'auto' or an integer from 1 to 8"),
        ({"n_null": 2, "fdr_scope": "locality"}, ValueError, "n_null=1 \\(or 'auto'\\), or fdr_scope='all'"),
    ],
)
def test_bad_arguments(pbmc_loc, kwargs, error, match):
    with pytest.raises(error, match=match):
        run(pbmc_loc, **kwargs)


def test_constant_and_nonfinite_genes(pbmc_loc):
    adata = pbmc_loc.copy()
    adata.X = adata.X.copy()
    adata.X[:, 0] = 1.0
    with pytest.raises(ValueError, match="constant"):
        run(adata, genes=[adata.var_names[0], adata.var_names[1]])
    adata.X[3, 2] = np.inf
    with pytest.raises(ValueError, match="NaN or inf"):
        run(adata)


def test_requires_localities(pbmc):
    with pytest.raises(KeyError, match=r"tl.localities"):
        lv.tl.correlations(pbmc.copy())


def test_non_numeric_x():
    import anndata as ad

    adata = ad.AnnData(pd.DataFrame({"a": ["x"] * 20, "b": ["y"] * 20}).to_numpy().astype(object))
    adata.obsm["X_umap"] = np.random.default_rng(0).normal(size=(20, 2))
    lv.tl.localities(adata, n_cells=10)
    with pytest.raises(TypeError, match="numeric"):
        lv.tl.correlations(adata)


def test_refuses_when_a_locality_would_not_fit_in_memory(monkeypatch, pbmc_loc):
    import os

    monkeypatch.setattr(os, "sysconf", lambda name: 1 if name == "SC_AVPHYS_PAGES" else 4096)
    with pytest.raises(MemoryError, match="fewer genes with `genes=`"):
        run(pbmc_loc)


def test_uses_fewer_threads_when_only_those_fit_in_memory(monkeypatch):
    import os

    from lava_sc.tl._correlations import check_memory

    per_thread = 200 * 1000 * 12 + 1000 * 1000 * 16
    pages = int(2.5 * per_thread / 0.8 / 4096) + 1  # room for two threads, not three
    monkeypatch.setattr(os, "sysconf", lambda name: pages if name == "SC_AVPHYS_PAGES" else 4096)
    assert check_memory(200, 1000, 8) == 2
    assert check_memory(200, 1000, 1) == 1


def test_null_permutations_follow_the_data_size(pbmc_loc):
    """'auto': several permutations on small data (pbmc68k_reduced: 21 localities), one on an atlas."""
    assert run(pbmc_loc).uns["lava"]["params"]["correlations"]["n_null_used"] == 1  # the default: 1
    adata = run(pbmc_loc, n_null="auto")
    record = adata.uns["lava"]["params"]["correlations"]
    assert record["n_null"] == "auto" and 2 <= record["n_null_used"] <= 8
    assert null_copies("auto", 1000, 1000, True) == 1  # 5e8 tests per permutation
    assert null_copies("auto", 20, 50, True) == 8  # capped
    assert null_copies("auto", 20, 50, False) == 1  # per-locality thresholds: one permutation
