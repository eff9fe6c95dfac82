"""``pl.module_pixels``: modules of image data drawn on the pixel grid (MNIST strokes and parts)."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from numbers import Integral

import numpy as np
import scipy.sparse as sp
from anndata import AnnData
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection

from .._docs import doc
from .._keys import DEFAULT_KEY
from ._utils import (
    check_results,
    check_single_ax,
    finish,
    module_gene_table,
    module_pair_table,
    new_axes,
    panel_grid,
    select_modules,
)


@doc(figure="lava_module_pixels.png")
def module_pixels(
    adata: AnnData,
    modules: str | Sequence[str] | None = None,
    *,
    shape: tuple[int, int] | None = None,
    key: str = DEFAULT_KEY,
    cmap="viridis",
    ncols: int = 4,
    background: bool | str | np.ndarray | None = None,
    edges: bool | None = None,
    ax: Axes | None = None,
    show: bool | None = None,
    save: str | os.PathLike | bool | None = None,
) -> Axes | list[Axes] | None:
    """Modules of image data drawn on the pixel grid, one panel per module.

    For data whose variables are pixels (``adata.var_names`` in row-major order, as from
    ``images.reshape(n, -1)``), each module pixel is coloured by its gene score (1 = the module's
    hub pixel) and the module's pixel pairs are drawn as thin lines between pixel centres.

    Parameters
    ----------
    adata
        Annotated data matrix with results of :func:`lava_sc.tl.modules`; each variable is a pixel.
    modules
        Which modules to draw: ``None`` for all, a name such as ``"M1"``, or a list of names.
    shape
        ``(rows, cols)`` of the image, with ``rows * cols == n_vars``. Default:
        ``adata.uns["image_shape"]`` when present (set by :func:`lava_sc.datasets.digits` and
        :func:`lava_sc.datasets.mnist`), else a square image when ``n_vars`` is a perfect square.
    {key}
    cmap
        Colormap of the pixel scores.
    ncols
        Panels per row.
    background
        Image under the module, in grey (pixels outside the module show it): ``"mean"`` or ``True``
        for the mean image of ``adata.X``, an array of ``rows * cols`` values, or ``None`` for none.
    edges
        Draw the module's pixel pairs as lines (more opaque for a higher ``weight``). Default: only
        for images of at most 16 x 16 pixels, where the lines stay readable.
    ax
        Draw into this Axes; only with a single module.
    {show}
    {save}

    Returns
    -------
    With ``show=False`` (or with ``ax``): the Axes for a single module, a list of Axes for several.
    Otherwise ``None``.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> import anndata, scanpy as sc, lava_sc as lv
    >>> adata = anndata.AnnData(load_digits().data.astype("float32"))
    >>> sc.pp.pca(adata, n_comps=2)
    >>> lv.tl.modules(adata, basis="X_pca")
    >>> lv.pl.module_pixels(adata, ["M1", "M2"], background="mean")
    """
    key = check_results(adata, key)
    rows, cols = _shape(adata.n_vars, shape, adata.uns.get("image_shape"))
    names = select_modules(adata, key, modules)
    check_single_ax(ax, len(names))
    bg = _background(adata, background, rows, cols)

    if ax is not None:
        axes = [ax]
    elif len(names) == 1:
        axes = [new_axes(None, (3.6, 3.2))]
    else:
        _, axes = panel_grid(len(names), ncols, (3.2, 2.9))

    var_pos = {str(v): i for i, v in enumerate(adata.var_names)}
    centres = np.column_stack(np.divmod(np.arange(rows * cols), cols))[:, ::-1].astype(np.float64)  # (x, y)
    for panel, name in zip(axes, names, strict=True):
        genes = module_gene_table(adata, key, name)
        score = np.full(rows * cols, np.nan)
        where = genes["gene"].map(var_pos)
        found = where.notna().to_numpy()
        score[where[found].astype(int).to_numpy()] = genes["score"].to_numpy(dtype=np.float64)[found]

        panel.set_facecolor("#f4f4f4")
        if bg is not None:
            lo, hi = np.nanmin(bg), np.nanmax(bg)
            panel.imshow(
                bg,
                cmap="Greys",
                vmin=lo,
                vmax=hi + (hi - lo) * 1.2,
                interpolation="nearest",
                zorder=0,
                extent=(-0.5, cols - 0.5, rows - 0.5, -0.5),
            )
        grid = np.ma.masked_invalid(score.reshape(rows, cols))
        border = 0.8 if max(rows, cols) <= 16 else (0.3 if max(rows, cols) <= 32 else 0.0)
        image = panel.pcolormesh(
            np.arange(cols + 1) - 0.5,
            np.arange(rows + 1) - 0.5,
            grid,
            cmap=cmap,
            vmin=0,
            vmax=1,
            edgecolors="white" if border else "face",
            linewidth=border,
            zorder=1,
        )
        if edges if edges is not None else rows * cols <= 256:
            pairs = module_pair_table(adata, key, name)
            a = pairs["gene_a"].map(var_pos)
            b = pairs["gene_b"].map(var_pos)
            ok = (a.notna() & b.notna()).to_numpy()
            if ok.any():
                ia = a[ok].astype(int).to_numpy()
                ib = b[ok].astype(int).to_numpy()
                w = np.abs(pairs["weight"].to_numpy(dtype=np.float64)[ok])
                span = w.max() - w.min()
                unit = (w - w.min()) / span if span > 0 else np.full_like(w, 0.5)
                rgba = np.zeros((len(w), 4))
                rgba[:, :3] = (0.25, 0.8, 1.0)
                rgba[:, 3] = 0.08 + 0.62 * unit**2
                order = np.argsort(w, kind="stable")  # strongest on top
                segs = np.stack([centres[ia], centres[ib]], axis=1)[order]
                panel.add_collection(
                    LineCollection(segs, colors=rgba[order], linewidths=(0.4 + 1.1 * unit)[order], zorder=2)
                )
        panel.set_xlim(-0.5, cols - 0.5)
        panel.set_ylim(rows - 0.5, -0.5)
        panel.set_aspect("equal")
        panel.set_xticks([])
        panel.set_yticks([])
        panel.set_title(f"{name}: {int(found.sum())} pixels", fontsize=10)
        cbar = panel.figure.colorbar(image, ax=panel, fraction=0.046, pad=0.03)
        cbar.set_label("score", fontsize=8)
        cbar.ax.tick_params(labelsize=7)
        cbar.outline.set_visible(False)

    result = axes[0] if len(axes) == 1 else axes
    return finish(result, ax_given=ax is not None, show=show, save=save, name="lava_module_pixels")


def _shape(n_vars: int, shape, recorded=None) -> tuple[int, int]:
    if shape is None and recorded is not None:
        try:
            dims = np.asarray(recorded, dtype=np.float64).ravel()
        except (TypeError, ValueError):
            dims = np.full(0, np.nan)
        if dims.size != 2 or not np.all(np.mod(dims, 1) == 0) or dims.min() < 1 or dims.prod() != n_vars:
            raise ValueError(
                f"adata.uns['image_shape'] is {recorded!r}, which does not hold the {n_vars} variables "
                "(were pixels subset?); pass `shape=(rows, cols)` with rows * cols == n_vars."
            )
        return int(dims[0]), int(dims[1])
    if shape is None:
        side = math.isqrt(n_vars)
        if side * side != n_vars:
            raise ValueError(
                f"adata has {n_vars} variables, not a square number, so the image shape cannot be guessed; "
                "pass `shape=(rows, cols)` with rows * cols == n_vars."
            )
        return side, side
    if (
        not isinstance(shape, Sequence)
        or len(shape) != 2
        or not all(isinstance(s, Integral) and not isinstance(s, bool) for s in shape)
    ):
        raise ValueError(f"`shape` must be a pair of integers (rows, cols), got {shape!r}.")
    rows, cols = int(shape[0]), int(shape[1])
    if rows < 1 or cols < 1 or rows * cols != n_vars:
        raise ValueError(
            f"`shape={shape!r}` holds {rows * cols} pixels but adata has {n_vars} variables; "
            "pass `shape=(rows, cols)` with rows * cols == n_vars."
        )
    return rows, cols


def _background(adata: AnnData, background, rows: int, cols: int) -> np.ndarray | None:
    if background is None or background is False:
        return None
    if background is True or (isinstance(background, str) and background == "mean"):
        x = adata.X
        mean = np.asarray(x.mean(axis=0)).ravel() if sp.issparse(x) else np.asarray(x).mean(axis=0)
        return np.asarray(mean, dtype=np.float64).reshape(rows, cols)
    if isinstance(background, str):
        raise ValueError(
            f"`background` must be 'mean', True, an array of {rows * cols} values or None, got {background!r}."
        )
    values = np.asarray(background, dtype=np.float64)
    if values.size != rows * cols:
        raise ValueError(
            f"`background` has {values.size} values but the image has {rows} x {cols} = {rows * cols} pixels."
        )
    return values.reshape(rows, cols)
