from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from anndata import AnnData
from matplotlib.axes import Axes

from .._keys import DEFAULT_KEY
from ..get import activity as get_activity
from ._utils import (
    check_results,
    check_single_ax,
    default_point_size,
    embedding_2d,
    finish,
    module_title,
    new_axes,
    panel_grid,
    select_modules,
    style_embedding_axes,
)


def activity(
    adata: AnnData,
    modules: str | Sequence[str] | None = None,
    *,
    basis: str = "umap",
    key: str = DEFAULT_KEY,
    ncols: int = 4,
    cmap="viridis",
    size: float | None = None,
    vmin: float | str | None = None,
    vmax: float | str | None = None,
    ax: Axes | None = None,
    show: bool | None = None,
    save: str | os.PathLike | bool | None = None,
    **scatter_kwargs,
) -> Axes | list[Axes] | None:
    """Module activity per cell on an embedding, one panel per module.

    Cells are drawn in order of activity, so the most active cells lie on top. Each panel has its own
    colourbar and is titled with the module name and its three top-scoring genes
    (e.g. ``"M1: CD79B, HLA-DPA1, CD74"``).

    Parameters
    ----------
    adata
        Annotated data matrix with results of :func:`lava_sc.tl.modules`.
    modules
        Which modules to draw: ``None`` for all, a name such as ``"M1"``, or a list of names.
    basis
        Embedding in ``adata.obsm`` to draw on; ``"umap"`` and ``"X_umap"`` both work. The first two
        dimensions are used.
    key
        Key of the LAVA results in ``uns`` / ``obsm``.
    ncols
        Panels per row.
    cmap
        Colormap for the activity.
    size
        Point size (default ``120000 / n_obs``, at most 30, as in scanpy).
    vmin, vmax
        Colour limits, shared by all panels. A number, or a string ``"p<q>"`` for the ``q``-th
        percentile of each panel's activity (e.g. ``vmax="p99"``). Default: each panel's range.
    ax
        Draw into this Axes; only with a single module.
    show
        Show the figure. Default: show unless ``ax`` was given.
    save
        Write the figure to this path (PNG at 150 dpi when the path has no other suffix); ``True``
        writes ``lava_activity.png`` into ``scanpy.settings.figdir``.
    **scatter_kwargs
        Passed to :meth:`matplotlib.axes.Axes.scatter`.

    Returns
    -------
    With ``show=False`` (or with ``ax``): the Axes for a single module, a list of Axes (one per module,
    in the order asked for) for several. Otherwise ``None``.

    Examples
    --------
    >>> import scanpy as sc, lava_sc as lv
    >>> adata = sc.datasets.pbmc68k_reduced()
    >>> lv.tl.modules(adata)
    >>> lv.pl.activity(adata, ["M1", "M2"], ncols=2)
    """
    key = check_results(adata, key)
    names = select_modules(adata, key, modules)
    check_single_ax(ax, len(names))
    coords, obsm_key = embedding_2d(adata, basis)
    values = get_activity(adata, key=key)
    if size is None:
        size = default_point_size(adata.n_obs)
    scatter_kwargs.setdefault("edgecolors", "none")
    scatter_kwargs.setdefault("plotnonfinite", True)

    if ax is not None:
        axes = [ax]
    elif len(names) == 1:
        axes = [new_axes(None, (4.6, 3.9))]
    else:
        _, axes = panel_grid(len(names), ncols, (4.6, 3.9))

    for panel, name in zip(axes, names, strict=True):
        act = values[name].to_numpy(dtype=np.float64)
        order = np.argsort(np.where(np.isfinite(act), act, -np.inf), kind="stable")
        sc_ = panel.scatter(
            coords[order, 0],
            coords[order, 1],
            c=act[order],
            s=size,
            cmap=cmap,
            vmin=_limit(vmin, act, "vmin"),
            vmax=_limit(vmax, act, "vmax"),
            **scatter_kwargs,
        )
        cbar = panel.figure.colorbar(sc_, ax=panel, fraction=0.05, pad=0.02)
        cbar.set_label("activity")
        cbar.outline.set_visible(False)
        panel.set_title(module_title(adata, key, name), fontsize=10)
        style_embedding_axes(panel, obsm_key)

    result = axes[0] if len(axes) == 1 else axes
    return finish(result, ax_given=ax is not None, show=show, save=save, name="lava_activity")


def _limit(value, act: np.ndarray, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, str):
        if not value.startswith("p"):
            raise ValueError(f"`{name}` must be a number or a percentile string such as 'p99', got {value!r}.")
        try:
            q = float(value[1:])
        except ValueError:
            raise ValueError(
                f"`{name}` must be a number or a percentile string such as 'p99', got {value!r}."
            ) from None
        if not 0 <= q <= 100:
            raise ValueError(f"`{name}` percentile must lie in [0, 100], got {value!r}.")
        finite = act[np.isfinite(act)]
        return float(np.percentile(finite, q)) if finite.size else None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        raise TypeError(f"`{name}` must be a number, a percentile string such as 'p99', or None, got {value!r}.")
    return float(value)
