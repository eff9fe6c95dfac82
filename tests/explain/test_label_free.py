import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scanpy as sc

import lava_sc as lv


@pytest.fixture(scope="module")
def planted_pca():
    adata = lv.datasets.simulate_planted(n_cells=600, random_state=0)
    sc.pp.pca(adata, n_comps=15, mask_var=None)
    return adata


@pytest.fixture(scope="module")
def small():
    """A small dense AnnData for the finite-difference (callable encoder) path."""
    rng = np.random.default_rng(3)
    X = rng.gamma(2.0, 0.5, size=(40, 10))
    adata = ad.AnnData(X, obs=pd.DataFrame({"group": list("ab") * 20}, index=[f"c{i}" for i in range(40)]))
    adata.var_names = [f"g{i}" for i in range(10)]
    return adata


def test_pca_closed_form(planted_pca):
    adata = lv.explain.label_free_importance(planted_pca, store_cells=True, copy=True)
    X = planted_pca.X.toarray().astype(np.float64)
    W = np.asarray(planted_pca.varm["PCs"], dtype=np.float64)
    Z = (X - X.mean(axis=0)) @ W
    expected = X * (Z @ W.T)  # zero baseline: (x - 0) * grad, grad = W f(x)
    np.testing.assert_allclose(adata.layers["label_free"], expected, rtol=1e-4, atol=1e-6)
    table = lv.get.attribution(adata, "label_free")
    mean = pd.Series(expected.mean(axis=0), index=adata.var_names)
    np.testing.assert_allclose(table["mean_attribution"], mean[table["gene"]].to_numpy(), rtol=1e-8)
    np.testing.assert_allclose(adata.obs["label_free_target"], np.sum(Z**2, axis=1), rtol=1e-8)
    assert "label_free" not in planted_pca.uns


def test_mean_baseline_sums_to_squared_norm(planted_pca):
    adata = lv.explain.label_free_importance(planted_pca, baseline="mean", store_cells=True, copy=True)
    X_pca = planted_pca.obsm["X_pca"].astype(np.float64)
    np.testing.assert_allclose(adata.layers["label_free"].sum(axis=1), np.sum(X_pca**2, axis=1), rtol=1e-3)
    comp = adata.uns["label_free"]["completeness"]
    assert comp["mean_target_baseline"] == pytest.approx(0.0, abs=1e-8)
    assert comp["max_abs_gap"] < 1e-8


def test_ig_equals_gradient_x_input_for_pca(planted_pca):
    ig = lv.explain.label_free_importance(planted_pca, baseline="mean", copy=True)
    gxi = lv.explain.label_free_importance(planted_pca, baseline="mean", method="gradient_x_input", copy=True)
    pd.testing.assert_frame_equal(lv.get.attribution(ig, "label_free"), lv.get.attribution(gxi, "label_free"))


def test_groups(planted_pca):
    adata = lv.explain.label_free_importance(planted_pca, groupby="cell_type", store_cells=True, copy=True)
    groups = lv.get.attribution(adata, "label_free", level="groups")
    assert list(groups.index) == ["T0", "T1", "T2", "T3", "T4"]
    cells = adata.obs["cell_type"].to_numpy() == "T3"
    expected = adata.layers["label_free"][cells].mean(axis=0)
    np.testing.assert_allclose(groups.loc["T3", adata.var_names].to_numpy(), expected, rtol=1e-5, atol=1e-7)
    # markers of a type are among its most important genes
    top = groups.loc["T1"].sort_values(ascending=False).index[:15]
    print("\nlabel-free top genes in T1:", list(top[:10]))
    print("overall top 10:", lv.get.attribution(adata, "label_free")["gene"].head(10).tolist())
    assert sum(g.startswith("mk_T1_") for g in top) >= 3
    with pytest.raises(KeyError, match="groupby"):
        lv.get.attribution(lv.explain.label_free_importance(planted_pca, copy=True), "label_free", level="groups")


def test_callable_nonlinear_completeness(small):
    rng = np.random.default_rng(0)
    W = rng.normal(size=(10, 3))

    def encoder(A):
        return np.tanh(0.4 * A @ W - 0.2)

    adata = lv.explain.label_free_importance(small, encoder=encoder, n_steps=48, groupby="group", copy=True)
    comp = adata.uns["label_free"]["completeness"]
    delta = comp["mean_target"] - comp["mean_target_baseline"]
    assert comp["mean_attribution_sum"] == pytest.approx(delta, rel=1e-3)
    assert comp["max_abs_gap"] < 1e-3 * max(abs(delta), 1e-12) * 10
    assert adata.uns["label_free"]["params"]["label_free_importance"]["encoder"] == "callable encoder"
    assert adata.uns["label_free"]["groups"].shape == (2, 10)


def test_callable_pca_matches_closed_form(small):
    adata = small.copy()
    sc.pp.pca(adata, n_comps=4)
    X = adata.X.astype(np.float64)
    mean, W = X.mean(axis=0), np.asarray(adata.varm["PCs"], dtype=np.float64)
    exact = lv.explain.label_free_importance(adata, store_cells=True, copy=True)
    numeric = lv.explain.label_free_importance(adata, encoder=lambda A: (A - mean) @ W, store_cells=True, copy=True)
    np.testing.assert_allclose(numeric.layers["label_free"], exact.layers["label_free"], rtol=1e-4, atol=1e-7)
    sub = lv.explain.label_free_importance(adata, genes=["g2", "g5"], store_cells=True, copy=True)
    np.testing.assert_allclose(sub.layers["label_free"][:, [2, 5]], exact.layers["label_free"][:, [2, 5]], rtol=1e-6)
    assert sub.var["label_free_attribution"].notna().sum() == 2


def test_bad_input(planted_pca, small):
    with pytest.raises(KeyError, match=r"sc\.pp\.pca"):
        lv.explain.label_free_importance(small)
    with pytest.raises(KeyError, match="groupby"):
        lv.explain.label_free_importance(planted_pca, groupby="tissue")
    with pytest.raises(KeyError, match="not in adata.var_names"):
        lv.explain.label_free_importance(planted_pca, genes=["XIST"])
    with pytest.raises(ValueError, match="one value per gene"):
        lv.explain.label_free_importance(planted_pca, baseline=np.zeros(3))
    with pytest.raises(ValueError, match="n_steps"):
        lv.explain.label_free_importance(planted_pca, n_steps=0)
    with pytest.raises(ValueError, match="cells x dimensions"):
        lv.explain.label_free_importance(small, encoder=lambda A: A[:1])
    assert "label_free" not in planted_pca.uns


def test_h5ad_round_trip(planted_pca, tmp_path):
    adata = lv.explain.label_free_importance(planted_pca, groupby="cell_type", store_cells=True, copy=True)
    path = tmp_path / "lf.h5ad"
    adata.write_h5ad(path)
    back = ad.read_h5ad(path)
    pd.testing.assert_frame_equal(lv.get.attribution(back, "label_free"), lv.get.attribution(adata, "label_free"))
    pd.testing.assert_frame_equal(
        lv.get.attribution(back, "label_free", level="groups"),
        lv.get.attribution(adata, "label_free", level="groups"),
    )
    np.testing.assert_array_equal(back.layers["label_free"], adata.layers["label_free"])
    assert back.uns["label_free"]["params"]["label_free_importance"]["groupby"] == "cell_type"


def test_warns_when_pca_does_not_match_expression(planted_pca):
    import io

    buf = io.StringIO()
    old_file, old_verbosity = sc.settings.logfile, sc.settings.verbosity
    sc.settings.logfile, sc.settings.verbosity = buf, 2
    try:
        subset = planted_pca[planted_pca.obs["cell_type"].isin(["T1", "T2"])].copy()
        lv.explain.label_free_importance(subset)  # gene means of the subset are not the PCA's centre
        lv.explain.label_free_importance(planted_pca, copy=True)
    finally:
        sc.settings.logfile, sc.settings.verbosity = old_file, old_verbosity
    assert buf.getvalue().count("differs from the PCA projection") == 1
