"""tl.correlations / tl.modules on a dask-backed AnnData: identical results, locally and on a 2-worker cluster."""

import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

import anndata as ad  # noqa: E402

import lava_sc as lv  # noqa: E402
from lava_sc._core import distributed as lv_distributed  # noqa: E402

PER_TASK = 8  # 45 localities -> 6 tasks


pytestmark = pytest.mark.usefixtures("single_threaded_blas")


@pytest.fixture(autouse=True)
def small_tasks(monkeypatch):
    monkeypatch.setattr(lv_distributed, "LOCALITIES_PER_TASK", PER_TASK)


@pytest.fixture(scope="module")
def planted_loc():
    adata = lv.datasets.simulate_planted(n_cells=1500, n_noise_genes=50, random_state=0)
    lv.tl.localities(adata, n_cells=100, n_placements=1, random_state=0)  # 15 localities: 6 tasks
    return adata


@pytest.fixture(scope="module")
def reference(planted_loc):
    adata = planted_loc.copy()
    lv.tl.correlations(adata)
    return adata


@pytest.fixture(scope="module")
def h5ad_path(planted_loc, tmp_path_factory):
    path = tmp_path_factory.mktemp("lazy") / "planted.h5ad"
    planted_loc.write_h5ad(path)
    return path


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        yield cluster


def lazy(adata, kind, path=None):
    """A copy of ``adata`` whose X is a dask array (400-cell chunks)."""
    out = adata.copy()
    if kind == "dense":
        out.X = da.from_array(adata.X.toarray(), chunks=(400, -1))
    elif kind == "sparse":
        out.X = da.from_array(sp.csr_matrix(adata.X), chunks=(400, -1), asarray=False)
    else:  # read lazily from the h5ad on disk (chunks re-open the file by path, so workers can read them)
        with h5py.File(path, "r") as f:
            out.X = ad.experimental.read_elem_lazy(f["X"], chunks=(400, adata.n_vars))
    assert lv_distributed.is_dask(out.X)
    return out


def assert_same_correlations(ref, other):
    a, b = ref.uns["lava"], other.uns["lava"]
    assert a["sketch"].shape == b["sketch"].shape
    assert a["sketch"].nnz == b["sketch"].nnz > 0
    assert (a["sketch"] != b["sketch"]).nnz == 0
    pd.testing.assert_frame_equal(a["pairs"], b["pairs"])
    np.testing.assert_array_equal(a["genes"], b["genes"])
    for name, values in a["correlations"].items():
        np.testing.assert_array_equal(values, b["correlations"][name])


@pytest.mark.parametrize("kind", ["dense", "sparse", "h5ad"])
def test_dask_x_gives_the_in_memory_sketch(planted_loc, reference, h5ad_path, kind):
    adata = lazy(planted_loc, kind, h5ad_path)
    lv.tl.correlations(adata)
    assert_same_correlations(reference, adata)
    assert lv_distributed.is_dask(adata.X)  # X is left as it was, not loaded


def test_dask_gene_selection_and_layers(planted_loc):
    genes = list(planted_loc.var_names[::2])
    ref = planted_loc.copy()
    ref.layers["logx"] = ref.X.copy()
    lv.tl.correlations(ref, layer="logx", genes=genes, alternative="two-sided")
    adata = planted_loc.copy()
    adata.layers["logx"] = da.from_array(sp.csr_matrix(planted_loc.X), chunks=(500, -1), asarray=False)
    lv.tl.correlations(adata, layer="logx", genes=genes, alternative="two-sided")
    assert_same_correlations(ref, adata)


def test_lazy_expression_is_validated(planted_loc):
    adata = planted_loc.copy()
    x = planted_loc.X.toarray()
    x[1234, 7] = np.nan
    adata.X = da.from_array(x, chunks=(400, -1))
    with pytest.raises(ValueError, match="NaN or inf"):
        lv.tl.correlations(adata)
    adata.X = da.from_array(np.full(planted_loc.shape, "a", dtype=object), chunks=(400, -1))
    with pytest.raises(TypeError, match="numeric"):
        lv.tl.correlations(adata)
    constant = list(planted_loc.var_names[:3])
    adata.X = da.zeros(planted_loc.shape, chunks=(400, -1))
    with pytest.raises(ValueError, match="constant"):
        lv.tl.correlations(adata, genes=constant)


@pytest.mark.parametrize("kind", ["sparse", "h5ad"])
def test_two_worker_cluster_gives_the_in_memory_sketch(planted_loc, reference, h5ad_path, cluster, kind):
    adata = lazy(planted_loc, kind, h5ad_path)
    with distributed.Client(cluster, set_as_default=False) as client, client.as_current():
        with distributed.get_task_stream(client) as stream:
            lv.tl.correlations(adata)
    assert_same_correlations(reference, adata)
    ran = [t for t in stream.data if "_sketch_task" in str(t["key"])]  # the per-locality work ran on the cluster
    assert len(ran) == -(-adata.obsm["lava_localities"].shape[1] // PER_TASK) == 6


def test_modules_end_to_end_on_an_existing_cluster(planted_loc, h5ad_path, cluster):
    ref = planted_loc.copy()
    lv.tl.modules(ref, random_state=0)
    adata = lazy(planted_loc, "h5ad", h5ad_path)
    with distributed.Client(cluster.scheduler_address):  # what a user does: attach to a running scheduler
        lv.tl.modules(adata, random_state=0)
    a, b = ref.uns["lava"], adata.uns["lava"]
    assert len(a["modules"]) > 0
    pd.testing.assert_frame_equal(a["modules"], b["modules"])
    pd.testing.assert_frame_equal(a["module_genes"], b["module_genes"])
    pd.testing.assert_frame_equal(a["locality_activity"], b["locality_activity"])
    pd.testing.assert_frame_equal(ref.obsm["lava_activity"], adata.obsm["lava_activity"])
