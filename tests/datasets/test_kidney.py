"""Tests for the SIMULATED kidney atlas: :func:`simulate_kidney`, :func:`kidney_gene_sets`, :func:`kidney`."""

from __future__ import annotations

import anndata
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

import lava_sc as lv
from lava_sc.datasets import _kidney_data, kidney, kidney_gene_sets, simulate_kidney

CELL_TYPES = ["PT", "TAL", "DCT", "CD", "EC", "Immune", "Fib"]
CONDITIONS = ["reference", "AKI", "CKD"]
PROGRAMS = ["injury", "homeostatic", "fibrosis", "gradient", "pt_segment", "interferon"]
LATENT_PROGRAMS = ["injury", "homeostatic", "fibrosis", "interferon"]  # the others are gradients
DISEASE = ["AKI", "CKD"]


@pytest.fixture(scope="module")
def small() -> anndata.AnnData:
    return simulate_kidney(n_cells=3000, umap=False, random_state=0)


@pytest.fixture(scope="module")
def atlas() -> anndata.AnnData:
    return kidney()


def _dense(x) -> np.ndarray:
    return x.toarray() if sparse.issparse(x) else np.asarray(x)


def _mean_pairwise_corr(x: np.ndarray) -> float:
    r = np.corrcoef(x.T)
    return float(np.nanmean(r[np.triu_indices(x.shape[1], 1)]))


def _check_layout(adata: anndata.AnnData, n_cells: int, n_donors: int, n_noise: int, module_size: int) -> None:
    assert adata.shape == (n_cells, 7 * 6 + 14 + len(PROGRAMS) * module_size + n_noise)
    assert adata.obs_names.is_unique and adata.var_names.is_unique
    obs = adata.obs
    for col in ("cell_type", "condition", "donor"):
        assert isinstance(obs[col].dtype, pd.CategoricalDtype), col
    assert list(obs["cell_type"].cat.categories) == CELL_TYPES
    assert list(obs["condition"].cat.categories) == CONDITIONS
    donors = [f"{p}{i}" for p in ("ref", "AKI", "CKD") for i in range(1, n_donors + 1)]
    assert list(obs["donor"].cat.categories) == donors
    # every donor in exactly one condition, and the right one; every donor has cells
    per_donor = obs.groupby("donor", observed=True)["condition"].nunique()
    assert (per_donor == 1).all() and len(per_donor) == len(donors)
    first = obs.groupby("donor", observed=True)["condition"].first()
    for donor, cond in first.items():
        assert donor.startswith({"reference": "ref"}.get(cond, cond))
    assert obs["donor"].value_counts().min() >= 0.5 * n_cells / len(donors) * 0.7
    # PT the most abundant type in every condition
    comp = pd.crosstab(obs["condition"], obs["cell_type"])
    assert (comp.idxmax(axis=1) == "PT").all()
    assert (obs["total_counts"] > 0).all()
    for p in PROGRAMS:
        assert obs[f"active_{p}"].dtype == bool, p
        assert obs[f"active_{p}"].any(), p

    assert sparse.issparse(adata.X) and adata.X.format == "csr" and adata.X.dtype == np.float32
    counts = adata.layers["counts"]
    assert sparse.issparse(counts) and counts.format == "csr" and np.issubdtype(counts.dtype, np.integer)
    c = _dense(counts).astype(np.float64)
    total = obs["total_counts"].to_numpy()[:, None]
    assert (total >= c.sum(1, keepdims=True)).all()
    np.testing.assert_allclose(_dense(adata.X), np.log1p(c / total * 1e4), rtol=1e-5, atol=1e-5)

    hvg = adata.var["highly_variable"]
    assert hvg.dtype == bool
    assert hvg[adata.var["gene_group"] != "noise"].all()
    if n_noise >= 50:
        assert 0.5 < hvg[adata.var["gene_group"] == "noise"].mean() < 1.0
    assert adata.obsm["X_pca"].shape[0] == n_cells and adata.obsm["X_pca"].shape[1] >= 10
    assert adata.obsm["X_umap"].shape == (n_cells, 2)
    assert np.isfinite(adata.obsm["X_umap"]).all()

    assert sorted(adata.uns["planted"]) == sorted(PROGRAMS)
    for p in PROGRAMS:
        genes = list(adata.uns["planted"][p]["genes"])
        assert len(genes) == module_size
        assert (adata.var.loc[genes, "planted_module"] == p).all()
    assert "SIMULATED" in adata.uns["simulation"]["description"]


def test_layout_small(small):
    _check_layout(small, 3000, 6, 300, 15)
    assert list(small.uns["planted"]["injury"]["genes"][:4]) == ["HAVCR1", "LCN2", "VCAM1", "SPP1"]
    assert {"LRP2", "UMOD", "AQP2", "PECAM1", "PTPRC", "COL1A1", "gene_0", "gene_299"} <= set(small.var_names)


def test_custom_sizes_and_padded_names():
    ad = simulate_kidney(n_cells=600, n_donors=2, n_noise_genes=5, module_size=18, umap=False, random_state=3)
    _check_layout(ad, 600, 2, 5, 18)
    assert list(ad.uns["planted"]["injury"]["genes"][-2:]) == ["INJ_16", "INJ_17"]
    ad = simulate_kidney(n_cells=500, n_donors=1, n_noise_genes=0, module_size=3, umap=False)
    assert not ad.var_names.str.startswith("gene_").any()


def test_active_cells_match_design(small):
    ct, cond = small.obs["cell_type"], small.obs["condition"]
    expected = {
        "injury": ct.isin(["PT", "TAL"]) & cond.isin(DISEASE),
        "homeostatic": (ct == "PT") & (cond == "reference"),
        "fibrosis": (ct == "Fib") & (cond == "CKD"),
        "gradient": ct == "CD",
        "pt_segment": ct == "PT",
        "interferon": ct == "Immune",
    }
    for p, mask in expected.items():
        np.testing.assert_array_equal(small.obs[f"active_{p}"], mask.to_numpy(), err_msg=p)
        spec = small.uns["planted"][p]
        assert set(spec["cell_types"]) == set(ct[mask].unique()), p
        assert set(spec["conditions"]) == set(cond[mask].unique()), p


def test_programs_carried_by_correlation_not_mean(small):
    x = _dense(small.X).astype(np.float64)
    pt = (small.obs["cell_type"] == "PT").to_numpy()
    markers = small.var_names.get_indexer(["LRP2", "CUBN", "SLC34A1", "SLC5A12", "SLC22A6", "HNF4A"])
    marker_shift = np.mean(x[pt][:, markers].mean(0) - x[~pt][:, markers].mean(0))
    assert marker_shift > 1.0
    for p in PROGRAMS:
        act = small.obs[f"active_{p}"].to_numpy()
        idx = small.var_names.get_indexer(small.uns["planted"][p]["genes"])
        assert _mean_pairwise_corr(x[act][:, idx]) > 0.2, p
        assert abs(_mean_pairwise_corr(x[~act][:, idx])) < 0.03, p
        if p in LATENT_PROGRAMS:  # gradients move the mean along their axis by construction
            mean_diff = np.abs(x[act][:, idx].mean(0) - x[~act][:, idx].mean(0)).mean()
            assert mean_diff < 0.1 * marker_shift, p


def test_injury_only_in_disease_pt_tal(small):
    x = _dense(small.X).astype(np.float64)
    idx = small.var_names.get_indexer(small.uns["planted"]["injury"]["genes"])
    ct, cond = small.obs["cell_type"], small.obs["condition"]
    for t in ("PT", "TAL"):
        for c in DISEASE:
            sel = ((ct == t) & (cond == c)).to_numpy()
            assert _mean_pairwise_corr(x[sel][:, idx]) > 0.25, (t, c)
        ref = ((ct == t) & (cond == "reference")).to_numpy()
        assert abs(_mean_pairwise_corr(x[ref][:, idx])) < 0.05, t
    other = (~ct.isin(["PT", "TAL"])).to_numpy()
    assert abs(_mean_pairwise_corr(x[other][:, idx])) < 0.05
    # the homeostatic program is the reverse: reference PT only
    idx = small.var_names.get_indexer(small.uns["planted"]["homeostatic"]["genes"])
    dis_pt = ((ct == "PT") & cond.isin(DISEASE)).to_numpy()
    assert abs(_mean_pairwise_corr(x[dis_pt][:, idx])) < 0.05


def test_donor_effects(small):
    """Program strength varies by donor: the injury correlation is not identical across disease donors."""
    x = _dense(small.X).astype(np.float64)
    idx = small.var_names.get_indexer(small.uns["planted"]["injury"]["genes"])
    act = small.obs["active_injury"].to_numpy()
    donors = small.obs["donor"].to_numpy()
    per_donor = [_mean_pairwise_corr(x[act & (donors == d)][:, idx]) for d in np.unique(donors[act])]
    assert len(per_donor) == 12  # 6 AKI + 6 CKD donors
    assert min(per_donor) > 0.2
    assert max(per_donor) - min(per_donor) > 0.02


def test_deterministic():
    a = simulate_kidney(n_cells=900, umap=False, random_state=7)
    b = simulate_kidney(n_cells=900, umap=False, random_state=7)
    c = simulate_kidney(n_cells=900, umap=False, random_state=8)
    assert (a.X != b.X).nnz == 0
    assert (a.layers["counts"] != b.layers["counts"]).nnz == 0
    pd.testing.assert_frame_equal(a.obs, b.obs)
    pd.testing.assert_frame_equal(a.var, b.var)
    np.testing.assert_array_equal(a.obsm["X_umap"], b.obsm["X_umap"])
    np.testing.assert_allclose(np.abs(a.obsm["X_pca"]), np.abs(b.obsm["X_pca"]), rtol=1e-4, atol=1e-4)
    assert (a.X != c.X).nnz > 0


def test_synthetic_layout_geometry(small):
    emb = np.asarray(small.obsm["X_umap"])
    ct, cond = small.obs["cell_type"].to_numpy(), small.obs["condition"].to_numpy()
    centres = {t: emb[ct == t].mean(0) for t in CELL_TYPES}
    assert np.linalg.norm(centres["PT"] - centres["TAL"]) > 25
    for t in ("TAL", "Fib"):
        ref = emb[(ct == t) & (cond == "reference")].mean(0)
        for c in DISEASE:
            assert 2.0 < np.linalg.norm(emb[(ct == t) & (cond == c)].mean(0) - ref) < 4.0


def test_roundtrip_h5ad(small, tmp_path):
    path = tmp_path / "kidney.h5ad"
    small.write_h5ad(path, compression="gzip")
    back = anndata.read_h5ad(path)
    assert (back.X != small.X).nnz == 0
    assert (back.layers["counts"] != small.layers["counts"]).nnz == 0
    pd.testing.assert_frame_equal(back.obs, small.obs)
    pd.testing.assert_frame_equal(back.var, small.var)
    for p in PROGRAMS:
        for field in ("genes", "cell_types", "conditions"):
            assert list(back.uns["planted"][p][field]) == list(small.uns["planted"][p][field])
    assert set(back.uns["simulation"]) == set(small.uns["simulation"])


def test_shipped_atlas_layout(atlas):
    _check_layout(atlas, 6000, 6, 300, 15)
    assert atlas.uns["simulation"]["umap"]
    assert "lava" not in atlas.uns and not any(k.startswith("lava") for k in atlas.obsm)
    # same data as the simulator at its defaults (the shipped copy only drops the kNN graph)
    ref = simulate_kidney(n_cells=6000, umap=False)
    assert (ref.layers["counts"] != atlas.layers["counts"]).nnz == 0
    pd.testing.assert_frame_equal(ref.obs, atlas.obs)


def test_shipped_atlas_umap_clusters(atlas):
    from sklearn.neighbors import NearestNeighbors

    emb = np.asarray(atlas.obsm["X_umap"], dtype=np.float64)
    ct, cond = atlas.obs["cell_type"].to_numpy(), atlas.obs["condition"].to_numpy()
    nn = NearestNeighbors(n_neighbors=16).fit(emb).kneighbors(emb, return_distance=False)[:, 1:]
    assert (ct[nn] == ct[:, None]).mean() > 0.98  # cell types are separate clusters
    centres = {t: emb[ct == t].mean(0) for t in CELL_TYPES}
    pt_rms = np.sqrt(((emb[ct == "PT"] - centres["PT"]) ** 2).sum(1).mean())
    assert np.linalg.norm(centres["PT"] - centres["TAL"]) > 3 * pt_rms
    # disease cells form a nearby sub-cluster of their type
    assert (cond[nn] == cond[:, None]).mean() > 0.7
    for t in ("PT", "TAL"):
        ref = emb[(ct == t) & (cond == "reference")].mean(0)
        for c in DISEASE:
            d = np.linalg.norm(emb[(ct == t) & (cond == c)].mean(0) - ref)
            assert 0.5 < d < np.linalg.norm(centres["PT"] - centres["TAL"]) / 2, (t, c)


def test_lava_recovers_injury(atlas):
    adata = atlas.copy()
    lv.tl.modules(adata, random_state=0)
    genes = lv.get.module_genes(adata)
    planted = set(adata.uns["planted"]["injury"]["genes"])
    jaccard = {
        m: len(planted & set(g)) / len(planted | set(g)) for m, g in genes.groupby("module", observed=True)["gene"]
    }
    best = max(jaccard, key=jaccard.get)
    assert jaccard[best] >= 0.6, jaccard
    activity = lv.get.activity(adata)[best]
    obs = adata.obs
    pt_tal = obs["cell_type"].isin(["PT", "TAL"])
    disease = activity[pt_tal & obs["condition"].isin(DISEASE)].mean()
    reference = activity[pt_tal & (obs["condition"] == "reference")].mean()
    assert disease > 2 * reference and disease - reference > 0.05, (disease, reference)


def test_kidney_missing_file(monkeypatch, tmp_path):
    monkeypatch.setattr(_kidney_data, "_atlas_candidates", lambda: [tmp_path / "nope.h5ad"])
    with pytest.raises(FileNotFoundError, match="simulate_kidney"):
        kidney()


def test_gene_sets():
    sets = kidney_gene_sets()
    assert sets == kidney_gene_sets()
    assert sets != kidney_gene_sets(random_state=1)
    decoys = [k for k in sets if k.startswith("DECOY_")]
    assert len(decoys) == 40
    assert all(10 <= len(sets[k]) <= 20 for k in decoys)
    assert all(len(set(v)) == len(v) for v in sets.values())
    for ct in CELL_TYPES:
        assert f"{ct.upper()}_MARKERS_SIM" in sets
    ad = simulate_kidney(n_cells=900, umap=False)
    genes = set(ad.var_names)
    planted = {p: set(ad.uns["planted"][p]["genes"]) for p in PROGRAMS}
    # one set per program: close to, not identical with, the planted genes
    for name, p in [("INJURY_RESPONSE_SIM", "injury"), ("FIBROSIS_ECM_SIM", "fibrosis")]:
        members = set(sets[name])
        assert len(members & planted[p]) / len(members | planted[p]) >= 0.7, name
        assert members != planted[p]
    assert set(sets["PT_MARKERS_SIM"]) <= genes
    all_program_genes = set().union(*planted.values())
    for k in decoys:
        assert set(sets[k]) <= genes - all_program_genes, k
    assert len(kidney_gene_sets(n_decoys=0)) == len(sets) - 40


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_cells": 100}, "n_cells.*at least 900"),
        ({"n_cells": 1000, "n_donors": 8}, "n_cells.*at least 1200"),
        ({"n_donors": 0}, "n_donors.*at least 1"),
        ({"module_size": 2}, "module_size.*at least 3"),
        ({"n_noise_genes": -1}, "n_noise_genes.*at least 0"),
        ({"random_state": -5}, "random_state"),
    ],
)
def test_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        simulate_kidney(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [{"n_cells": 6000.0}, {"n_donors": "4"}, {"module_size": 1.5}, {"random_state": None}, {"umap": "yes"}],
)
def test_bad_types(kwargs):
    (name,) = kwargs
    with pytest.raises(TypeError, match=name):
        simulate_kidney(**kwargs)


def test_gene_sets_bad_args():
    with pytest.raises(ValueError, match="n_decoys"):
        kidney_gene_sets(n_decoys=-1)
    with pytest.raises(TypeError, match="random_state"):
        kidney_gene_sets(random_state=1.5)


def test_keyword_only():
    with pytest.raises(TypeError):
        simulate_kidney(900)  # type: ignore[misc]


def test_gene_tables_ship_with_the_package():
    """The tables live in a data file of the package (so a wheel carries them) and name distinct genes."""
    from importlib import resources

    from lava_sc.datasets import _kidney

    assert resources.files("lava_sc.datasets").joinpath("kidney_genes.json").is_file()
    markers = [g for genes in _kidney._MARKERS.values() for g in genes]
    programs = [g for spec in _kidney._PROGRAMS.values() for g in spec["genes"]]
    assert len(set(markers + programs)) == len(markers + programs)
    assert set(_kidney._PROGRAMS) == set(_kidney._SET_NAMES) == set(_kidney._UNMEASURED)
