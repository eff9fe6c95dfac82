import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scanpy as sc

import lava_sc as lv


@pytest.fixture(scope="module")
def planted_pca():
    """simulate_planted(n_cells=1000) with a PCA of all genes (its highly_variable column is all False)."""
    adata = lv.datasets.simulate_planted(n_cells=1000, random_state=0)
    sc.pp.pca(adata, n_comps=20, mask_var=None)
    return adata


def pca_callable(adata):
    """The PCA projection of adata as a plain function (what encoder='pca' computes in closed form)."""
    X = adata.X.toarray().astype(np.float64)
    mean = X.mean(axis=0)
    W = np.asarray(adata.varm["PCs"], dtype=np.float64)
    return lambda A: (A - mean) @ W


def test_planted_typeB_corpus(planted_pca):
    adata = planted_pca.copy()
    lv.explain.corpus_attribution(adata, "active_typeB")
    table = lv.get.attribution(adata, "cocoa")
    module = set(adata.uns["planted"]["typeB"])
    top = table.head(10)
    print("\nCOCOA top 10 (corpus = active_typeB, i.e. all T1 cells):")
    print(top.assign(planted_typeB=top["gene"].isin(module)).to_string())
    ranks = table.set_index("gene")["rank"]
    print("planted typeB genes in top 10:", int(top["gene"].isin(module).sum()))
    print("ranks of planted typeB genes:", sorted(ranks[list(module)].tolist()))
    print("completeness:", adata.uns["cocoa"]["completeness"])
    # The corpus is exactly the T1 cells; the genes that move cells towards it in PCA space are T1's
    # markers (typeB module genes carry only correlation, no mean shift, so they are not expected on top).
    assert {f"mk_T1_{i}" for i in range(5)} <= set(top["gene"])
    assert list(table.columns) == ["gene", "mean_attribution", "mean_abs_attribution", "rank"]
    assert table["rank"].tolist() == list(range(1, adata.n_vars + 1))
    # completeness of integrated gradients (every gene attributed)
    comp = adata.uns["cocoa"]["completeness"]
    delta = comp["mean_target"] - comp["mean_target_baseline"]
    assert comp["mean_attribution_sum"] == pytest.approx(delta, rel=1e-3)
    assert comp["max_abs_gap"] < 1e-3 * abs(delta) * 10
    np.testing.assert_allclose(
        adata.var["cocoa_attribution"].to_numpy()[adata.var_names.get_indexer(table["gene"])],
        table["mean_attribution"],
    )
    assert adata.obs["cocoa_set"].value_counts()["corpus"] == int(adata.obs["active_typeB"].sum())
    assert adata.obs["cocoa_target"].notna().sum() == int(adata.obs["active_typeB"].sum())
    assert adata.uns["cocoa"]["params"]["corpus_attribution"]["encoder"] == "pca"


def test_corpus_forms_agree(planted_pca):
    adata = planted_pca
    a = lv.explain.corpus_attribution(adata, "active_typeB", copy=True)
    b = lv.explain.corpus_attribution(adata, ("cell_type", "T1"), copy=True)
    c = lv.explain.corpus_attribution(adata, adata.obs["active_typeB"].to_numpy(), copy=True)
    d = lv.explain.corpus_attribution(adata, np.flatnonzero(adata.obs["active_typeB"]), copy=True)
    for other in (b, c, d):
        pd.testing.assert_frame_equal(lv.get.attribution(a, "cocoa"), lv.get.attribution(other, "cocoa"))
    assert "cocoa" not in adata.uns  # copy=True left the input alone


def test_callable_encoder_matches_pca(planted_pca):
    adata = planted_pca
    cells = np.flatnonzero(adata.obs["active_typeB"])[:6]
    genes = adata.var_names[[0, 5, 30, 200]]
    kw = dict(cells=cells, genes=genes, n_steps=8, store_cells=True, copy=True)
    exact = lv.explain.corpus_attribution(adata, "active_typeB", **kw)
    numeric = lv.explain.corpus_attribution(adata, "active_typeB", encoder=pca_callable(adata), **kw)
    np.testing.assert_allclose(numeric.layers["cocoa"], exact.layers["cocoa"], rtol=1e-4, atol=1e-8)
    assert np.count_nonzero(exact.layers["cocoa"].any(axis=1)) == len(cells)
    assert exact.var["cocoa_attribution"].notna().sum() == len(genes)


def test_gradient_x_input_and_mean_baseline(planted_pca):
    adata = planted_pca
    out = lv.explain.corpus_attribution(
        adata, "active_typeB", method="gradient_x_input", baseline="mean", copy=True, store_cells=True
    )
    # cosine similarity is scale invariant and f(mean) = 0 for a centred PCA: each cell's attributions sum to 0
    sums = out.layers["cocoa"][out.obs["active_typeB"].to_numpy()].sum(axis=1)
    np.testing.assert_allclose(sums, 0.0, atol=1e-5)
    with pytest.raises(ValueError, match="zero representation"):
        lv.explain.corpus_attribution(adata, "active_typeB", baseline="mean", copy=True)


def test_module_region_and_foil(planted_pca):
    adata = planted_pca.copy()
    act = pd.DataFrame(
        {"M1": adata.obs["active_typeB"].to_numpy(float), "M2": np.linspace(0, 1, adata.n_obs)},
        index=adata.obs_names,
    )
    adata.obsm["lava_activity"] = act
    adata.uns["lava"] = {"locality_activity": pd.DataFrame(np.zeros((3, 2)), columns=["M1", "M2"])}
    lv.explain.corpus_attribution(adata, {"module": "M1", "quantile": 0.5}, foil=("cell_type", "T0"), n_foil=50)
    roles = adata.obs["cocoa_set"].value_counts()
    assert roles["corpus"] == 200 and roles["foil"] == 50
    assert set(adata.obs.loc[adata.obs["cocoa_set"] == "foil", "cell_type"]) == {"T0"}
    params = adata.uns["cocoa"]["params"]["corpus_attribution"]
    assert "module M1" in params["corpus"] and params["n_foil"] == 50
    # the same random foil again for the same random_state
    again = lv.explain.corpus_attribution(
        adata, {"module": "M1", "quantile": 0.5}, foil=("cell_type", "T0"), n_foil=50, copy=True
    )
    assert (again.obs["cocoa_set"] == adata.obs["cocoa_set"]).all()
    with pytest.raises(KeyError, match="unknown module 'M9'.*M1"):
        lv.explain.corpus_attribution(adata, {"module": "M9"})
    with pytest.raises(KeyError, match="tl.modules"):
        lv.explain.corpus_attribution(planted_pca, {"module": "M1"})


def test_hvg_pca_attributes_only_its_genes():
    adata = lv.datasets.simulate_planted(n_cells=500, random_state=1)
    sc.pp.highly_variable_genes(adata, n_top_genes=60)
    sc.pp.pca(adata, n_comps=10)
    lv.explain.corpus_attribution(adata, ("cell_type", ["T1", "T2"]))
    table = lv.get.attribution(adata, "cocoa")
    hv = adata.var["highly_variable"].to_numpy()
    assert set(table["gene"]) == set(adata.var_names[hv])
    assert adata.var["cocoa_attribution"].isna().sum() == (~hv).sum()
    assert "highly_variable" in adata.uns["cocoa"]["params"]["corpus_attribution"]["genes"]
    with pytest.raises(ValueError, match="not in the PCA"):
        lv.explain.corpus_attribution(adata, ("cell_type", "T1"), genes=adata.var_names[~hv][:2], copy=True)


def test_bad_input(planted_pca):
    adata = planted_pca
    bare = lv.datasets.simulate_planted(n_cells=500, random_state=2)
    with pytest.raises(KeyError, match=r"sc\.pp\.pca"):
        lv.explain.corpus_attribution(bare, "active_typeB")
    with pytest.raises(ValueError, match="corpus .* is empty"):
        lv.explain.corpus_attribution(adata, np.zeros(adata.n_obs, dtype=bool))
    with pytest.raises(ValueError, match="both in the corpus .* and in the foil"):
        lv.explain.corpus_attribution(adata, ("cell_type", "T1"), foil=("cell_type", ["T1", "T2"]))
    with pytest.raises(ValueError, match="foil .* is empty"):
        lv.explain.corpus_attribution(adata, np.ones(adata.n_obs, dtype=bool))
    with pytest.raises(ValueError, match=r"level\(s\) \['PT'\] not found"):
        lv.explain.corpus_attribution(adata, ("cell_type", "PT"))
    with pytest.raises(TypeError, match="not boolean"):
        lv.explain.corpus_attribution(adata, "cell_type")
    with pytest.raises(KeyError, match="not a column"):
        lv.explain.corpus_attribution(adata, "nope")
    with pytest.raises(ValueError, match="one entry per cell"):
        lv.explain.corpus_attribution(adata, np.ones(3, dtype=bool))
    with pytest.raises(ValueError, match="`method`"):
        lv.explain.corpus_attribution(adata, "active_typeB", method="shap")
    with pytest.raises(ValueError, match="`baseline`"):
        lv.explain.corpus_attribution(adata, "active_typeB", baseline="median")
    with pytest.raises(TypeError, match="`encoder`"):
        lv.explain.corpus_attribution(adata, "active_typeB", encoder=3)
    with pytest.raises(KeyError, match="No attribution results under key 'cocoa'"):
        lv.get.attribution(adata, "cocoa")
    lava_like = adata.copy()
    lava_like.uns["lava"] = {"modules": pd.DataFrame()}
    with pytest.raises(ValueError, match="holds LAVA results"):
        lv.explain.corpus_attribution(lava_like, "active_typeB", key_added="lava")
    assert "cocoa" not in adata.uns and "cocoa_attribution" not in adata.var


def test_h5ad_round_trip(planted_pca, tmp_path):
    adata = planted_pca.copy()
    lv.explain.corpus_attribution(adata, ("cell_type", "T1"), store_cells=True, key_added="cocoa_T1")
    path = tmp_path / "cocoa.h5ad"
    adata.write_h5ad(path)
    back = ad.read_h5ad(path)
    pd.testing.assert_frame_equal(lv.get.attribution(back, "cocoa_T1"), lv.get.attribution(adata, "cocoa_T1"))
    np.testing.assert_array_equal(back.layers["cocoa_T1"], adata.layers["cocoa_T1"])
    assert back.layers["cocoa_T1"].dtype == np.float32
    pd.testing.assert_series_equal(back.obs["cocoa_T1_set"], adata.obs["cocoa_T1_set"])
    assert back.uns["cocoa_T1"]["params"]["corpus_attribution"]["n_corpus"] == 200
