"""Tests for :func:`lava_sc.datasets._simulate.simulate_planted`."""

from __future__ import annotations

import time

import anndata
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from lava_sc.datasets._simulate import simulate_planted

MODULES = ["shared", "typeB", "gradient", "disease_T4"]


@pytest.fixture(scope="module")
def adata() -> anndata.AnnData:
    return simulate_planted()


def _dense(x) -> np.ndarray:
    return x.toarray() if sparse.issparse(x) else np.asarray(x)


def _mean_pairwise_corr(adata: anndata.AnnData, genes, mask) -> float:
    x = _dense(adata[mask, list(genes)].X).astype(np.float64)
    r = np.corrcoef(x.T)
    iu = np.triu_indices(len(genes), 1)
    return float(np.nanmean(r[iu]))


def test_shapes_and_layout(adata):
    n_genes = 5 * 5 + 4 * 15 + 200
    assert adata.shape == (4000, n_genes)
    assert adata.var_names.is_unique
    assert adata.obs_names.is_unique

    # obs
    for col in ("cell_type", "condition"):
        assert isinstance(adata.obs[col].dtype, pd.CategoricalDtype)
    assert list(adata.obs["cell_type"].cat.categories) == ["T0", "T1", "T2", "T3", "T4"]
    assert list(adata.obs["condition"].cat.categories) == ["control", "disease"]
    counts_per_group = adata.obs.groupby(["cell_type", "condition"], observed=True).size()
    assert len(counts_per_group) == 10
    assert counts_per_group.min() >= 390
    assert counts_per_group.max() <= 410
    assert (adata.obs["depth"] > 0).all()
    for m in MODULES:
        assert adata.obs[f"active_{m}"].dtype == bool
    ct, cond = adata.obs["cell_type"], adata.obs["condition"]
    np.testing.assert_array_equal(adata.obs["active_shared"], ct.isin(["T0", "T2"]) & (cond == "disease"))
    np.testing.assert_array_equal(adata.obs["active_typeB"], ct == "T1")
    np.testing.assert_array_equal(adata.obs["active_gradient"], ct == "T3")
    np.testing.assert_array_equal(adata.obs["active_disease_T4"], (ct == "T4") & (cond == "disease"))

    # X and counts
    assert sparse.issparse(adata.X)
    assert adata.X.format == "csr"
    assert adata.X.dtype == np.float32
    counts = adata.layers["counts"]
    assert sparse.issparse(counts)
    assert counts.format == "csr"
    assert np.issubdtype(counts.dtype, np.integer)
    assert counts.data.min() >= 0
    c = _dense(counts).astype(np.float64)
    total = adata.obs["total_counts"].to_numpy()[:, None]
    assert (total >= c.sum(1, keepdims=True)).all()
    expected = np.log1p(c / total * 1e4)
    np.testing.assert_allclose(_dense(adata.X), expected, rtol=1e-5, atol=1e-5)

    # embedding
    assert adata.obsm["X_umap"].shape == (4000, 2)
    assert np.isfinite(adata.obsm["X_umap"]).all()

    # var
    assert set(adata.var.columns) >= {"planted_module", "highly_variable"}
    assert not adata.var["highly_variable"].any()
    assert set(adata.var["planted_module"]) == {"none", *MODULES}
    assert adata.var_names[0] == "mk_T0_0"
    assert (adata.var["planted_module"] == "none").sum() == 25 + 200
    assert adata.var_names[-1] == "noise_199"

    # uns
    assert sorted(adata.uns["planted"]) == sorted(MODULES)
    for m in MODULES:
        genes = list(adata.uns["planted"][m])
        assert genes == [f"{m}_{i}" for i in range(15)]
        assert (adata.var.loc[genes, "planted_module"] == m).all()
    sim = adata.uns["simulation"]
    assert sim["n_cells"] == 4000
    assert sim["module_size"] == 15
    assert sim["random_state"] == 0
    assert all(v is not None for v in sim.values())


def test_custom_sizes():
    ad = simulate_planted(n_cells=600, n_noise_genes=7, module_size=4, random_state=3)
    assert ad.shape == (600, 25 + 4 * 4 + 7)
    assert all(len(v) == 4 for v in ad.uns["planted"].values())
    assert ad.var_names[-1] == "noise_6"


def test_no_noise_genes():
    ad = simulate_planted(n_cells=500, n_noise_genes=0)
    assert not ad.var_names.str.startswith("noise").any()


def test_deterministic():
    a = simulate_planted(n_cells=1000, random_state=7)
    b = simulate_planted(n_cells=1000, random_state=7)
    c = simulate_planted(n_cells=1000, random_state=8)
    assert (a.X != b.X).nnz == 0
    assert (a.layers["counts"] != b.layers["counts"]).nnz == 0
    np.testing.assert_array_equal(a.obsm["X_umap"], b.obsm["X_umap"])
    pd.testing.assert_frame_equal(a.obs, b.obs)
    assert (a.X != c.X).nnz > 0


def test_fast():
    start = time.perf_counter()
    simulate_planted()
    assert time.perf_counter() - start < 2.0


def test_modules_carried_by_correlation_not_mean(adata):
    x = _dense(adata.X)
    t0 = (adata.obs["cell_type"] == "T0").to_numpy()
    markers = adata.var_names.get_indexer([f"mk_T0_{i}" for i in range(5)])
    marker_shift = np.mean(x[t0][:, markers].mean(0) - x[~t0][:, markers].mean(0))
    assert marker_shift > 1.0

    for m in MODULES:
        act = adata.obs[f"active_{m}"].to_numpy()
        genes = list(adata.uns["planted"][m])
        idx = adata.var_names.get_indexer(genes)
        mean_diff = np.abs(x[act][:, idx].mean(0) - x[~act][:, idx].mean(0))
        if m != "gradient":  # a gradient shifts means along its axis by construction
            assert mean_diff.mean() < 0.1 * marker_shift, m
        assert _mean_pairwise_corr(adata, genes, act) > 0.15, m
        assert abs(_mean_pairwise_corr(adata, genes, ~act)) < 0.05, m


def test_shared_module_in_t0_disease(adata):
    genes = list(adata.uns["planted"]["shared"])
    obs = adata.obs
    t0_dis = ((obs["cell_type"] == "T0") & (obs["condition"] == "disease")).to_numpy()
    t2_dis = ((obs["cell_type"] == "T2") & (obs["condition"] == "disease")).to_numpy()
    t0_ctl = ((obs["cell_type"] == "T0") & (obs["condition"] == "control")).to_numpy()
    assert _mean_pairwise_corr(adata, genes, t0_dis) > 0.15
    assert _mean_pairwise_corr(adata, genes, t2_dis) > 0.15
    assert abs(_mean_pairwise_corr(adata, genes, t0_ctl)) < 0.05


def test_noise_genes_have_wide_detection(adata):
    noise = adata.var_names.str.startswith("noise_")
    det = np.asarray((adata.layers["counts"][:, noise] > 0).mean(0)).ravel()
    assert det.min() < 0.1
    assert det.max() > 0.9
    assert ((det >= 0.02) & (det <= 0.1)).sum() >= 10


def test_embedding_geometry(adata):
    emb = np.asarray(adata.obsm["X_umap"])
    ct = adata.obs["cell_type"].to_numpy()
    cond = adata.obs["condition"].to_numpy()
    centres = {t: emb[ct == t].mean(0) for t in ["T0", "T1", "T2", "T3", "T4"]}
    blob_sd = emb[(ct == "T0") & (cond == "control")].std(0).max()
    assert np.linalg.norm(centres["T0"] - centres["T2"]) > 5 * blob_sd

    # shared active regions (T0 / T2 disease) are far apart
    c0 = emb[(ct == "T0") & (cond == "disease")].mean(0)
    c2 = emb[(ct == "T2") & (cond == "disease")].mean(0)
    assert np.linalg.norm(c0 - c2) > 5 * blob_sd

    # disease offset from control within a type: adjacent, ~3 units
    for t in ["T0", "T1", "T2", "T4"]:
        dis = emb[(ct == t) & (cond == "disease")].mean(0)
        ctl = emb[(ct == t) & (cond == "control")].mean(0)
        d = np.linalg.norm(dis - ctl)
        assert 2.0 < d < 4.0

    # T3 is elongated: its largest principal sd is ~4
    t3 = emb[ct == "T3"]
    sds = np.sqrt(np.linalg.eigvalsh(np.cov(t3.T)))
    assert sds.max() > 3.5
    assert sds.max() > 1.8 * sds.min()


def test_gradient_follows_embedding_axis(adata):
    emb = np.asarray(adata.obsm["X_umap"])
    t3 = (adata.obs["cell_type"] == "T3").to_numpy()
    pts = emb[t3] - emb[t3].mean(0)
    axis = np.linalg.eigh(np.cov(pts.T))[1][:, -1]
    pos = pts @ axis
    genes = list(adata.uns["planted"]["gradient"])
    score = _dense(adata[t3, genes].X).mean(1)
    assert abs(np.corrcoef(pos, score)[0, 1]) > 0.5


def test_roundtrip_h5ad(adata, tmp_path):
    path = tmp_path / "sim.h5ad"
    adata.write_h5ad(path)
    back = anndata.read_h5ad(path)
    assert (back.X != adata.X).nnz == 0
    assert (back.layers["counts"] != adata.layers["counts"]).nnz == 0
    pd.testing.assert_frame_equal(back.obs, adata.obs)
    pd.testing.assert_frame_equal(back.var, adata.var)
    np.testing.assert_array_equal(back.obsm["X_umap"], adata.obsm["X_umap"])
    for m in MODULES:
        assert list(back.uns["planted"][m]) == list(adata.uns["planted"][m])
    assert set(back.uns["simulation"]) == set(adata.uns["simulation"])
    for k, v in adata.uns["simulation"].items():
        np.testing.assert_array_equal(back.uns["simulation"][k], v)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_cells": 100}, "n_cells.*at least 500"),
        ({"n_cells": 499}, "500"),
        ({"module_size": 2}, "module_size.*at least 3"),
        ({"n_noise_genes": -1}, "n_noise_genes.*at least 0"),
        ({"random_state": -5}, "random_state"),
        ({"chunk_size": 0}, "chunk_size.*at least 1"),
    ],
)
def test_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        simulate_planted(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_cells": 4000.0},
        {"n_cells": "4000"},
        {"module_size": 1.5},
        {"n_noise_genes": None},
        {"random_state": None},
        {"random_state": True},
        {"chunk_size": 1000.0},
    ],
)
def test_bad_types(kwargs):
    (name,) = kwargs
    with pytest.raises(TypeError, match=f"{name}.*must be an int"):
        simulate_planted(**kwargs)


def test_keyword_only():
    with pytest.raises(TypeError):
        simulate_planted(4000)  # type: ignore[misc]


def test_numpy_ints_accepted():
    ad = simulate_planted(n_cells=np.int64(500), module_size=np.int32(3), random_state=np.int64(1))
    assert ad.n_obs == 500


def test_chunked_draws_the_same_design_with_bounded_chunks(adata):
    """Chunks of cells: same cells, embedding, genes and planted programs; only the random stream of
    the expression differs. No counts layer when asked."""
    chunked = simulate_planted(chunk_size=700, counts_layer=False)
    assert chunked.shape == adata.shape and list(chunked.layers) == []
    assert chunked.X.dtype == np.float32 and sparse.isspmatrix_csr(chunked.X) and chunked.X.has_sorted_indices
    np.testing.assert_array_equal(chunked.obsm["X_umap"], adata.obsm["X_umap"])
    pd.testing.assert_index_equal(chunked.var_names, adata.var_names)
    for col in ["cell_type", "condition"] + [f"active_{m}" for m in MODULES]:
        pd.testing.assert_series_equal(chunked.obs[col], adata.obs[col])
    assert chunked.uns["simulation"]["chunk_size"] == 700
    assert (chunked.X != adata.X).nnz > 0
    # the same programs, as strong: mean within-module correlation where active vs where not
    for m in MODULES:
        genes = adata.uns["planted"][m]
        act = adata.obs[f"active_{m}"].to_numpy()
        for data in (adata, chunked):
            on, off = _mean_pairwise_corr(data, genes, act), _mean_pairwise_corr(data, genes, ~act)
            assert on > 0.15 and abs(off) < 0.05, (m, on, off)
    # the chunk size changes nothing but the stream split: X and counts agree with each other
    with_counts = simulate_planted(chunk_size=700)
    assert (with_counts.X != chunked.X).nnz == 0
    expected = np.log1p(
        with_counts.layers["counts"].toarray() * (1e4 / with_counts.obs["total_counts"].to_numpy())[:, None]
    )
    np.testing.assert_allclose(with_counts.X.toarray(), expected, rtol=1e-6)
