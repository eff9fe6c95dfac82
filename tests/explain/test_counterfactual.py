"""Tests for :func:`lava_sc.explain.counterfactual_attribution` and :func:`lava_sc.get.counterfactual`."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import lava_sc as lv


def three_gene_adata(n: int = 200, g: int = 40, seed: int = 0, shift: float = 3.0) -> ad.AnnData:
    """Two groups that differ in the mean of genes g0, g1, g2 only (sparse, non-negative X)."""
    rng = np.random.default_rng(seed)
    group = np.repeat(["A", "B"], n // 2)
    x = rng.gamma(2.0, 1.0, size=(n, g))
    x[group == "A", :3] += shift
    adata = ad.AnnData(
        X=sp.csr_matrix(x.astype(np.float32)),
        obs=pd.DataFrame(
            {"group": pd.Categorical(group), "batch": rng.choice(["b1", "b2"], n)}, index=[f"c{i}" for i in range(n)]
        ),
        var=pd.DataFrame(index=[f"g{i}" for i in range(g)]),
    )
    return adata


@pytest.fixture(scope="module")
def dac():
    adata = three_gene_adata()
    lv.explain.counterfactual_attribution(adata, "group", group_a="A", group_b="B", random_state=0)
    return adata


def test_three_separating_genes_top_the_attribution(dac):
    res = dac.uns["dac"]
    genes = lv.get.counterfactual(dac)
    print(genes.head(5).to_string())
    print(f"DAC AUC {res['dac_auc']:.3f}, random {res['random_auc']:.3f}, accuracy {res['classifier_accuracy']:.3f}")
    assert list(genes.columns) == ["gene", "weight", "mean_attribution", "mean_abs_attribution", "top_fraction"]
    assert set(genes["gene"][:3]) == {"g0", "g1", "g2"}
    assert res["classifier_accuracy"] > 0.9
    assert res["dac_auc"] > res["random_auc"] + 0.2
    assert len(genes) == dac.n_vars
    assert (genes["top_fraction"].between(0, 1)).all()


def test_curve_runs_from_counterfactual_to_query(dac):
    curve = lv.get.counterfactual(dac, table="curve")
    assert list(curve.columns) == ["mask_size", "mask_fraction", "restored_attribution", "restored_random"]
    assert curve["mask_size"].iloc[0] == 0 and curve["mask_size"].iloc[-1] == dac.n_vars
    np.testing.assert_allclose(curve.iloc[0, 2:], 0.0, atol=1e-12)
    np.testing.assert_allclose(curve.iloc[-1, 2:], 1.0, rtol=1e-9)
    assert len(curve) <= 21 and curve["mask_size"].is_monotonic_increasing
    auc = np.trapezoid(curve["restored_attribution"], curve["mask_fraction"])
    assert dac.uns["dac"]["dac_auc"] == pytest.approx(auc)


def test_pairs_are_nearest_other_group_cells_in_pca():
    adata = three_gene_adata(seed=1)
    rng = np.random.default_rng(5)
    adata.obsm["X_pca"] = rng.normal(size=(adata.n_obs, 12))
    lv.explain.counterfactual_attribution(adata, "group", group_a="A", group_b="B", n_pcs=8, max_cells=30)
    pairs = lv.get.counterfactual(adata, table="pairs")
    assert len(pairs) == 30 and pairs["query"].is_unique
    pca = adata.obsm["X_pca"][:, :8]
    b = np.flatnonzero(adata.obs["group"] == "B")
    q = adata.obs_names.get_indexer(pairs["query"])
    assert (adata.obs["group"].iloc[q] == "A").all()
    d = np.linalg.norm(pca[q][:, None] - pca[b][None], axis=2)
    np.testing.assert_array_equal(pairs["counterfactual"].to_numpy(), adata.obs_names[b[d.argmin(1)]].to_numpy())
    np.testing.assert_allclose(pairs["distance"], d.min(1))
    assert adata.uns["dac"]["params"]["counterfactual_attribution"]["pca"].startswith("obsm['X_pca']")


def test_pca_computed_without_x_pca(dac):
    assert dac.uns["dac"]["params"]["counterfactual_attribution"]["pca"].startswith("computed")


def test_methods_and_targets_agree_on_the_ranking(dac):
    adata = three_gene_adata()
    lv.explain.counterfactual_attribution(
        adata, "group", group_a="A", group_b="B", method="gradient_x_input", key_added="gxi"
    )
    lv.explain.counterfactual_attribution(
        adata, "group", group_a="A", group_b="B", target="probability", n_steps=8, key_added="prob"
    )
    ig = lv.get.counterfactual(dac)
    gxi = lv.get.counterfactual(adata, "gxi")
    pd.testing.assert_frame_equal(ig, gxi, rtol=1e-10)  # exact for the logit
    pd.testing.assert_frame_equal(
        lv.get.counterfactual(dac, table="curve"), lv.get.counterfactual(adata, "prob", table="curve"), rtol=1e-8
    )


def test_deterministic_subsample_and_cells_restriction():
    adata = three_gene_adata()
    a = lv.explain.counterfactual_attribution(
        adata, "group", group_a="A", group_b="B", max_cells=20, random_state=3, copy=True
    )
    b = lv.explain.counterfactual_attribution(
        adata, "group", group_a="A", group_b="B", max_cells=20, random_state=3, copy=True
    )
    assert "dac" not in adata.uns  # copy=True leaves the input alone
    pd.testing.assert_frame_equal(lv.get.counterfactual(a, table="pairs"), lv.get.counterfactual(b, table="pairs"))
    assert len(lv.get.counterfactual(a, table="pairs")) == 20
    in_b1 = adata.obs["batch"] == "b1"
    lv.explain.counterfactual_attribution(adata, "group", group_a="A", group_b="B", cells=in_b1)
    pairs = lv.get.counterfactual(adata, table="pairs")
    batch = adata.obs["batch"]
    assert (batch[pairs["query"]] == "b1").all() and (batch[pairs["counterfactual"]] == "b1").all()
    assert adata.uns["dac"]["params"]["counterfactual_attribution"]["n_cells_a"] == int(
        (in_b1 & (adata.obs["group"] == "A")).sum()
    )


def test_input_not_modified():
    adata = three_gene_adata()
    before = adata.X.copy()
    lv.explain.counterfactual_attribution(adata, "group", group_a="A", group_b="B")
    assert (adata.X != before).nnz == 0
    assert set(adata.uns) == {"dac"} and len(adata.obsm) == 0


def test_bad_input():
    adata = three_gene_adata()
    with pytest.raises(ValueError, match="not a level"):
        lv.explain.counterfactual_attribution(adata, "group", group_a="A", group_b="C")
    with pytest.raises(KeyError, match="not found in adata.obs"):
        lv.explain.counterfactual_attribution(adata, "nope", group_a="A", group_b="B")
    with pytest.raises(ValueError, match="must differ"):
        lv.explain.counterfactual_attribution(adata, "group", group_a="A", group_b="A")
    tiny = adata.copy()
    tiny.obs["group"] = pd.Categorical(np.where(np.arange(tiny.n_obs) == 0, "C", tiny.obs["group"].astype(str)))
    with pytest.raises(ValueError, match="at least 2 cells"):
        lv.explain.counterfactual_attribution(tiny, "group", group_a="C", group_b="B")
    with pytest.raises(ValueError, match="`method`"):
        lv.explain.counterfactual_attribution(adata, "group", group_a="A", group_b="B", method="shap")
    with pytest.raises(KeyError, match="not in adata.var_names"):
        lv.explain.counterfactual_attribution(adata, "group", group_a="A", group_b="B", genes=["g0", "nope"])
    with pytest.raises(ValueError, match="`C`"):
        lv.explain.counterfactual_attribution(adata, "group", group_a="A", group_b="B", C=0)
    with pytest.raises(KeyError, match="not found"):
        lv.explain.counterfactual_attribution(adata, "group", group_a="A", group_b="B", layer="counts")
    with pytest.raises(KeyError, match="explain.counterfactual_attribution"):
        lv.get.counterfactual(adata)
    lv.explain.counterfactual_attribution(adata, "group", group_a="A", group_b="B")
    with pytest.raises(ValueError, match="`table`"):
        lv.get.counterfactual(adata, table="modules")


def test_inseparable_groups_raise():
    rng = np.random.default_rng(0)
    adata = three_gene_adata(shift=0.0)
    adata.obs["group"] = pd.Categorical(rng.permutation(adata.obs["group"].to_numpy()))
    # fully regularised: every cell gets p ~ 0.5, no pair flips the classifier's call
    with pytest.raises(ValueError, match="nothing to attribute"):
        lv.explain.counterfactual_attribution(adata, "group", group_a="A", group_b="B", C=1e-6)
    assert "dac" not in adata.uns


def test_h5ad_round_trip(dac, tmp_path):
    path = tmp_path / "dac.h5ad"
    dac.write_h5ad(path)
    back = ad.read_h5ad(path)
    for table in ("genes", "curve", "pairs"):
        pd.testing.assert_frame_equal(lv.get.counterfactual(back, table=table), lv.get.counterfactual(dac, table=table))
    for scalar in ("dac_auc", "random_auc", "classifier_accuracy", "n_pairs"):
        assert back.uns["dac"][scalar] == pytest.approx(dac.uns["dac"][scalar])
    assert back.uns["dac"]["params"]["counterfactual_attribution"]["group_a"] == "A"


def test_groups_by_position_still_work_with_a_future_warning():
    adata = three_gene_adata()
    new = lv.explain.counterfactual_attribution(adata, "group", group_a="A", group_b="B", copy=True)
    with pytest.warns(FutureWarning, match="group_a=, group_b= by keyword"):
        old = lv.explain.counterfactual_attribution(adata, "group", "A", "B", copy=True)
    pd.testing.assert_frame_equal(lv.get.counterfactual(new), lv.get.counterfactual(old))
    with pytest.raises(TypeError, match="both by position and by keyword"):
        lv.explain.counterfactual_attribution(adata, "group", "A", group_a="A", group_b="B")
