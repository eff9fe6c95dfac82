"""lv.io.embedding_order: the row order to write a store in, and a lazy run on a store written in it."""

import numpy as np
import pandas as pd
import pytest
from anndata import AnnData
from scipy.spatial import cKDTree

import lava_sc as lv


@pytest.fixture(scope="module")
def cells():
    adata = lv.datasets.simulate_planted(n_cells=3000, n_noise_genes=5, module_size=3, random_state=0)
    return adata


def ranks(order):
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank


def test_order_is_a_permutation_that_keeps_neighbours_close(cells):
    order = lv.io.embedding_order(cells)
    assert order.dtype == np.int64
    np.testing.assert_array_equal(np.sort(order), np.arange(cells.n_obs))
    rank = ranks(order)
    _, knn = cKDTree(cells.obsm["X_umap"]).query(cells.obsm["X_umap"], k=16)
    gap = np.abs(rank[knn[:, 1:]] - rank[:, None]).mean()
    shuffled = np.random.default_rng(0).permutation(cells.n_obs)
    random_gap = np.abs(shuffled[knn[:, 1:]] - shuffled[:, None]).mean()
    assert gap < random_gap / 10


def test_order_ignores_translation_and_scale(cells):
    order = lv.io.embedding_order(cells, basis="umap")  # scanpy's short name works too
    moved = AnnData(obs=cells.obs[[]], obsm={"X_umap": cells.obsm["X_umap"].astype(np.float64) * 3.7 - 120.0})
    np.testing.assert_array_equal(lv.io.embedding_order(moved), order)


def test_three_dimensional_embeddings_are_ordered(cells):
    points = np.random.default_rng(1).normal(size=(cells.n_obs, 3))
    adata = AnnData(obs=cells.obs[[]], obsm={"X_pca": points})
    order = lv.io.embedding_order(adata, basis="X_pca")
    np.testing.assert_array_equal(np.sort(order), np.arange(cells.n_obs))


def test_bad_input_names_the_problem_and_the_fix(cells):
    with pytest.raises(TypeError, match="AnnData"):
        lv.io.embedding_order(cells.obsm["X_umap"])
    with pytest.raises(KeyError, match="X_tsne.*not found"):
        lv.io.embedding_order(cells, basis="X_tsne")
    bad = AnnData(obs=cells.obs[[]], obsm={"X_umap": cells.obsm["X_umap"].copy()})
    bad.obsm["X_umap"][7, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or inf in 1 cells"):
        lv.io.embedding_order(bad)
    wide = AnnData(obs=cells.obs[[]], obsm={"X_pca": np.zeros((cells.n_obs, 30))})
    with pytest.raises(ValueError, match="at most 21.*X_umap"):
        lv.io.embedding_order(wide, basis="X_pca")
    with pytest.raises(ValueError, match="no cells"):
        lv.io.embedding_order(AnnData(obsm={"X_umap": np.zeros((0, 2))}))


@pytest.mark.filterwarnings("ignore:Trying to modify attribute")  # anndata writes a view's var
@pytest.mark.filterwarnings("ignore:Writing zarr v2 data")
def test_a_lazy_run_on_the_ordered_store_gives_the_in_memory_modules(tmp_path):
    ad = pytest.importorskip("anndata")
    distributed = pytest.importorskip("distributed")
    zarr = pytest.importorskip("zarr")
    from threadpoolctl import threadpool_limits

    from lava_sc._core import distributed as lv_distributed

    adata = lv.datasets.simulate_planted(n_cells=1500, n_noise_genes=50, random_state=0)
    order = lv.io.embedding_order(adata)
    adata[order].write_zarr(tmp_path / "atlas.zarr")  # the recipe: anndata's own writer, rows along the curve

    root = zarr.open_group(str(tmp_path / "atlas.zarr"), mode="r")
    lazy = AnnData(
        X=ad.experimental.read_elem_lazy(root["X"], chunks=(250, -1)),
        obs=ad.io.read_elem(root["obs"]),
        var=ad.io.read_elem(root["var"]),
        obsm={"X_umap": root["obsm"]["X_umap"][:]},
    )
    assert lv_distributed.is_dask(lazy.X)
    ref = adata[order].copy()
    with threadpool_limits(1, user_api="blas"):  # the tasks' BLAS setting: bit-identical correlations
        lv.tl.localities(ref, n_cells=100, n_placements=1, random_state=0)
        lv.tl.modules(ref, random_state=0)
        lv.tl.localities(lazy, n_cells=100, n_placements=1, random_state=0)
        with distributed.Client(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None):
            lv.tl.modules(lazy, random_state=0)
    assert len(ref.uns["lava"]["modules"]) > 0
    pd.testing.assert_frame_equal(ref.uns["lava"]["modules"], lazy.uns["lava"]["modules"])
    pd.testing.assert_frame_equal(ref.uns["lava"]["module_genes"], lazy.uns["lava"]["module_genes"])
    pd.testing.assert_frame_equal(ref.obsm["lava_activity"], lazy.obsm["lava_activity"])
