"""Fixtures for the plotting tests (pbmc results come from the shared ``pbmc_lava`` fixture)."""

import matplotlib

matplotlib.use("Agg")

import anndata  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import scanpy as sc  # noqa: E402
from matplotlib import pyplot as plt  # noqa: E402

import lava_sc as lv  # noqa: E402


@pytest.fixture(scope="session")
def digits_lava():
    """sklearn's 8x8 digits (1,797 real images), one var per pixel, LAVA on a 2-d PCA (fast)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    adata = anndata.AnnData(d.data.astype(np.float32))
    adata.var_names = [f"px_{r}_{c}" for r in range(8) for c in range(8)]
    adata.obs["digit"] = pd.Categorical(d.target.astype(str))
    sc.pp.pca(adata, n_comps=2)
    lv.tl.modules(adata, basis="X_pca", random_state=0)
    return adata


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def is_png(path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(8) == b"\x89PNG\r\n\x1a\n"
