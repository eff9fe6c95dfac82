"""Row orders for writing an AnnData store that is read lazily (out of core): :func:`embedding_order`."""

from __future__ import annotations

import numpy as np
from anndata import AnnData

from ._core.ordering import KEY_BITS, MIN_BITS_PER_DIM, hilbert_order
from ._validate import embedding, resolve_basis


def embedding_order(adata, basis: str = "X_umap") -> np.ndarray:
    """Order of the cells along a Hilbert curve of an embedding, to write a store in before a lazy run.

    A LAVA locality is the ``n`` cells nearest a probe in the embedding, and a dask task of
    :func:`lava_sc.tl.correlations` reads the rows of a batch of neighbouring localities. Written in
    this order, the cells of a locality sit in a few contiguous runs of rows, so each task reads a few
    chunks of the file instead of touching all of them (what a store in random cell order costs).

    The embedding's points ``x_i`` (``d`` dimensions) are put on a grid of ``2**b`` cells per axis,
    ``b = min(16, floor(63 / d))``, with one scale for all axes:
    ``q_i = floor((x_i - min) / s * (2**b - 1) + 1/2)``, ``s`` the largest range of an axis. The cells
    are sorted by the index of ``q_i`` along the ``d``-dimensional Hilbert curve of that grid
    (Skilling 2004), whose consecutive indices are neighbouring grid cells, so cells close in the
    embedding get close ranks. Cells in one grid cell keep their order in ``adata``. The order is the
    same after translating or uniformly scaling the embedding.

    Parameters
    ----------
    adata
        Annotated data matrix with the embedding in ``obsm`` (genes are not needed: an AnnData with
        only ``obs`` and ``obsm`` will do).
    basis
        The embedding the localities are placed on (``"X_umap"`` or ``"umap"``); use the one you will
        pass to :func:`lava_sc.tl.localities`. Two or three dimensions give the finest grid; at most
        21 dimensions.

    Returns
    -------
    A permutation of ``range(adata.n_obs)`` (``int64``): ``adata[order]`` lists the cells along the curve.

    Examples
    --------
    Write the store in this order with anndata's own writer, then read ``X`` lazily:

    >>> import lava_sc as lv
    >>> adata = lv.datasets.simulate_planted(n_cells=1000, random_state=0)
    >>> order = lv.io.embedding_order(adata)
    >>> adata[order].write_zarr("atlas.zarr")  # doctest: +SKIP
    """
    if not isinstance(adata, AnnData):
        raise TypeError(f"Expected an AnnData object as first argument, got {type(adata).__name__}.")
    if adata.n_obs == 0:
        raise ValueError("AnnData has no cells; pass a non-empty object.")
    key = resolve_basis(adata, basis)
    points = embedding(adata, key)
    max_dims = KEY_BITS // MIN_BITS_PER_DIM
    if points.shape[1] > max_dims:
        raise ValueError(
            f"adata.obsm[{key!r}] has {points.shape[1]} dimensions; a Hilbert order needs at most {max_dims} to "
            f"keep {MIN_BITS_PER_DIM} grid bits per axis. Order by the 2-d embedding the localities use (basis='X_umap'), or pass "
            "the first few components (adata.obsm['X_pca_3'] = adata.obsm['X_pca'][:, :3])."
        )
    return hilbert_order(points)
