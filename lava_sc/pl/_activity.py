"""``pl.activity``: module activity on the embedding, one panel per module (and per level with
``groupby``)."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
from anndata import AnnData
from matplotlib import pyplot as plt
from matplotlib.axes import Axes

from .. import _logging as logg
from .._docs import doc
from .._keys import DEFAULT_KEY
from .._params import recorded
from .._validate import check_choice, check_obs_column
from ..get import activity as get_activity
from ._utils import (
    check_results,
    check_single_ax,
    default_point_size,
    draw_group_labels,
    embedding_2d,
    finish,
    module_title,
    new_axes,
    panel_grid,
    select_modules,
    style_embedding_axes,
)

#: colour of the cells of the other levels in split panels
_BACKGROUND = "#dcdcdc"


@doc(figure="lava_activity.png")
def activity(
    adata: AnnData,
    modules: str | Sequence[str] | None = None,
    *,
    basis: str = "X_umap",
    key: str = DEFAULT_KEY,
    groupby: str | None = None,
    groups: Sequence[str] | None = None,
    labels: Literal["auto"] | str | None = "auto",
    shared_scale: bool = True,
    backend: Literal["matplotlib", "scanpy"] = "matplotlib",
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

    Cells are drawn in order of activity, so the most active cells lie on top. Each panel is titled
    with the module name and its three top-scoring genes (e.g. ``"M1: CD79B, HLA-DPA1, CD74"``), and
    the names of the cell groups are written where their cells lie, so that a panel says which
    population a module is active in. Activity is the weighted mean correlation of the module's gene
    pairs in the localities that contain the cell (see :func:`lava_sc.get.activity`).

    Parameters
    ----------
    {adata_modules}
    modules
        Which modules to draw: ``None`` for all, a name such as ``"M1"``, or a list of names.
    basis
        Embedding in ``adata.obsm`` to draw on; ``"umap"`` and ``"X_umap"`` both work. The first two
        dimensions are used.
    {key}
    groupby
        Column of ``adata.obs`` (e.g. ``"condition"``) to split each module by: one row of panels per
        module, one panel per level, titled ``"M1 — AKI"``, all on the same embedding and the same
        colour scale (limits shared by the panels of a module), cells of the other levels in light
        grey underneath. ``ncols`` is then ignored.
    groups
        With ``groupby``: the levels to draw, in this order (default: all, in category order).
    labels
        Column of ``adata.obs`` whose groups are named on the embedding, at the median of their cells.
        ``"auto"``: the column :func:`lava_sc.tl.modules` described the localities by (``groupby``),
        else the first categorical column named like a cell-type annotation (``cell_type``,
        ``bulk_labels``, ``leiden``, ...; the log says which), else none. ``None``: no labels.
    shared_scale
        One colour scale for every panel (limits over all the modules drawn), so that colours compare
        between modules. ``False``: each module its own range.
    backend
        ``"matplotlib"``, or ``"scanpy"`` to draw each panel with :func:`scanpy.pl.embedding`, so that
        every scanpy styling option works (``**scatter_kwargs`` go to it, e.g. ``frameon=False``,
        ``colorbar_loc=None``, ``add_outline=True``). Not with ``groupby``.
    ncols
        Panels per row.
    cmap
        Colormap for the activity.
    size
        Point size (default ``120000 / n_obs``, at most 30, as in scanpy).
    vmin, vmax
        Colour limits. A number, or a string ``"p<q>"`` for the ``q``-th percentile of the activity
        (e.g. ``vmax="p99"``). Default: the range. Percentiles and the range are taken over every
        module drawn with ``shared_scale``, else per module. With ``groupby``, they are taken over the
        cells of all the levels drawn, so that the panels of a module share one scale.
    ax
        Draw into this Axes; only with a single module (and a single level with ``groupby``).
    {show}
    {save}
    **scatter_kwargs
        Passed to :meth:`matplotlib.axes.Axes.scatter` (with ``backend="scanpy"``, to
        :func:`scanpy.pl.embedding`).

    Returns
    -------
    With ``show=False`` (or with ``ax``): the Axes for a single module, a list of Axes (one per module,
    in the order asked for) for several. With ``groupby``, the list runs over modules, then levels
    (``M1 — AKI``, ``M1 — CKD``, ``M2 — AKI``, ...). Otherwise ``None``.

    Examples
    --------
    >>> import scanpy as sc, lava_sc as lv
    >>> adata = sc.datasets.pbmc68k_reduced()
    >>> lv.tl.modules(adata)
    >>> lv.pl.activity(adata, ["M1", "M2"], ncols=2)
    >>> lv.pl.activity(adata, "M1", groupby="condition", groups=["reference", "AKI"])
    >>> lv.pl.activity(adata, "M1", backend="scanpy", frameon=False, add_outline=True)
    """
    key = check_results(adata, key)
    names = select_modules(adata, key, modules)
    check_choice("backend", backend, ("matplotlib", "scanpy"))
    if not isinstance(shared_scale, (bool, np.bool_)):
        raise TypeError(f"`shared_scale` must be True or False, got {shared_scale!r}.")
    if groupby is None and groups is not None:
        raise ValueError("`groups` selects levels of `groupby`; pass `groupby=` (e.g. 'condition') as well.")
    if groupby is not None and backend == "scanpy":
        raise ValueError("backend='scanpy' draws one panel per module; split by `groupby` with backend='matplotlib'.")
    split, levels = (None, []) if groupby is None else _split_levels(adata, groupby, groups)
    if groupby is None:
        check_single_ax(ax, len(names))
    else:
        _check_split_ax(ax, len(names), len(levels))
    label_column = _label_column(adata, key, labels)
    group_of = None if label_column is None else adata.obs[label_column]
    coords, obsm_key = embedding_2d(adata, basis)
    values = get_activity(adata, key=key)
    if size is None:
        size = default_point_size(adata.n_obs)
    if shared_scale:
        # with groupby, over the cells of the levels drawn (the docstring's rule; before, all cells)
        cells = slice(None) if groupby is None else np.isin(split, levels)
        every = values[names].to_numpy(dtype=np.float64)[cells].ravel()
        vmin, vmax = _range(vmin, every, "vmin", min), _range(vmax, every, "vmax", max)
    if backend == "scanpy":
        axes = _scanpy_panels(
            adata, key, names, values, coords, obsm_key, ax, ncols, size, cmap, (vmin, vmax), scatter_kwargs
        )
    elif groupby is not None:
        scatter_kwargs.setdefault("edgecolors", "none")
        scatter_kwargs.setdefault("plotnonfinite", True)
        axes = _split_panels(
            adata, key, names, values, split, levels, coords, obsm_key, ax, size, cmap, (vmin, vmax), scatter_kwargs
        )
    else:
        scatter_kwargs.setdefault("edgecolors", "none")
        scatter_kwargs.setdefault("plotnonfinite", True)
        axes = _panels(adata, key, names, values, coords, obsm_key, ax, ncols, size, cmap, (vmin, vmax), scatter_kwargs)
    if group_of is not None:
        for panel in axes:
            draw_group_labels(panel, coords, group_of)
    result = axes[0] if len(axes) == 1 else axes
    return finish(result, ax_given=ax is not None, show=show, save=save, name="lava_activity")


def _label_column(adata: AnnData, key: str, labels) -> str | None:
    """The obs column whose groups are named on the panels (see ``labels``)."""
    if labels is None:
        return None
    if isinstance(labels, str) and labels == "auto":
        from ..tl._populations import resolve_groupby

        column = recorded(adata, key, "modules", "groupby")
        column = column if column is not None and column in adata.obs else resolve_groupby(adata, "auto")
        if column is not None:
            logg.info(f"    pl.activity: groups named from adata.obs[{column!r}] (labels='auto'; labels=None for none)")
        return column
    check_obs_column(adata, labels, "labels", optional=True)
    return labels


def _panels(adata, key, names, values, coords, obsm_key, ax, ncols, size, cmap, limits, scatter_kwargs) -> list[Axes]:
    """One panel per module, each with its colourbar."""
    if ax is not None:
        axes = [ax]
    elif len(names) == 1:
        axes = [new_axes(None, (4.6, 3.9))]
    else:
        _, axes = panel_grid(len(names), ncols, (4.6, 3.9))
    for panel, name in zip(axes, names, strict=True):
        act = values[name].to_numpy(dtype=np.float64)
        order = np.argsort(np.where(np.isfinite(act), act, -np.inf), kind="stable")
        points = panel.scatter(
            coords[order, 0],
            coords[order, 1],
            c=act[order],
            s=size,
            cmap=cmap,
            vmin=_limit(limits[0], act, "vmin"),
            vmax=_limit(limits[1], act, "vmax"),
            **scatter_kwargs,
        )
        cbar = panel.figure.colorbar(points, ax=panel, fraction=0.05, pad=0.02)
        cbar.set_label("activity")
        cbar.outline.set_visible(False)
        panel.set_title(module_title(adata, key, name), fontsize=10)
        style_embedding_axes(panel, obsm_key)
    return list(axes)


def _scanpy_panels(adata, key, names, values, coords, obsm_key, ax, ncols, size, cmap, limits, kwargs) -> list[Axes]:
    """The panels drawn by :func:`scanpy.pl.embedding` on a throwaway AnnData (``adata`` is not touched)."""
    import scanpy as sc
    from anndata import AnnData as _AnnData

    columns = {name: values[name].to_numpy(dtype=np.float64) for name in names}
    frame = pd.DataFrame(columns, index=adata.obs_names.copy())
    canvas = _AnnData(obs=frame, obsm={obsm_key: np.ascontiguousarray(coords)})
    per_panel = [
        dict(vmin=_limit(limits[0], columns[n], "vmin"), vmax=_limit(limits[1], columns[n], "vmax")) for n in names
    ]
    kwargs.setdefault("sort_order", True)
    drawn = sc.pl.embedding(
        canvas,
        basis=obsm_key,
        color=names,
        title=[module_title(adata, key, n) for n in names],
        vmin=[p["vmin"] for p in per_panel],
        vmax=[p["vmax"] for p in per_panel],
        color_map=cmap,
        size=size,
        ncols=ncols,
        ax=ax,
        show=False,
        **kwargs,
    )
    return drawn if isinstance(drawn, list) else [drawn]


def _split_levels(adata: AnnData, groupby, groups) -> tuple[np.ndarray, list[str]]:
    """Each cell's level of ``groupby`` as a string ("" for NaN) and the levels to draw, in order."""
    check_obs_column(adata, groupby, "groupby", optional=True)
    column = adata.obs[groupby]
    cat = pd.Categorical(column).remove_unused_categories()
    available = [str(c) for c in cat.categories]
    missing = column.isna().to_numpy()
    labels = np.where(missing, "", column.astype(str).to_numpy())
    if missing.any():
        warnings.warn(
            f"pl.activity: {int(missing.sum())} cells have no value (NaN) in obs[{groupby!r}]; they are drawn "
            "in grey in every panel, in no level's.",
            UserWarning,
            stacklevel=3,
        )
    if groups is None:
        return labels, available
    if isinstance(groups, str):
        groups = [groups]
    elif not isinstance(groups, (Sequence, np.ndarray, pd.Index)) or len(groups) == 0:
        raise TypeError(f"`groups` must be a level of obs[{groupby!r}], a non-empty list of levels or None.")
    groups = list(dict.fromkeys(str(g) for g in groups))
    unknown = [g for g in groups if g not in available]
    if unknown:
        raise ValueError(f"Unknown level(s) {unknown} of obs[{groupby!r}]; available levels: {available}.")
    return labels, groups


def _check_split_ax(ax, n_modules: int, n_levels: int) -> None:
    check_single_ax(ax, n_modules)
    if ax is not None and n_levels > 1:
        raise ValueError(
            f"`ax` can only hold a single panel, but `groupby` gives {n_levels} levels per module. Pass one "
            "level (e.g. groups=['AKI']) to draw into `ax`, or leave `ax=None` to get a row of panels per module."
        )


def _split_panels(
    adata, key, names, values, labels, levels, coords, obsm_key, ax, size, cmap, limits, scatter_kwargs
) -> list[Axes]:
    """One row of panels per module, one panel per level, sharing the module's colour scale."""
    if ax is not None:
        grid = [[ax]]
    else:
        _, grid = plt.subplots(
            len(names),
            len(levels),
            figsize=(4.1 * len(levels) + 0.8, 3.8 * len(names)),
            squeeze=False,
            layout="constrained",
        )
    in_level = {level: labels == level for level in levels}
    drawn = np.logical_or.reduce(list(in_level.values()))
    axes = []
    for row, name in zip(grid, names, strict=True):
        act = values[name].to_numpy(dtype=np.float64)
        shown = act[drawn]
        finite = shown[np.isfinite(shown)]
        lo = _limit(limits[0], shown, "vmin")
        hi = _limit(limits[1], shown, "vmax")
        lo = float(finite.min()) if lo is None and finite.size else lo
        hi = float(finite.max()) if hi is None and finite.size else hi
        for panel, level in zip(row, levels, strict=True):
            mask = in_level[level]
            panel.scatter(coords[~mask, 0], coords[~mask, 1], s=size, c=_BACKGROUND, edgecolors="none")
            cells = np.flatnonzero(mask)
            cells = cells[np.argsort(np.where(np.isfinite(act[cells]), act[cells], -np.inf), kind="stable")]
            points = panel.scatter(
                coords[cells, 0], coords[cells, 1], c=act[cells], s=size, cmap=cmap, vmin=lo, vmax=hi, **scatter_kwargs
            )
            panel.set_title(f"{name} — {level}", fontsize=10)
            style_embedding_axes(panel, obsm_key)
            axes.append(panel)
        cbar = panel.figure.colorbar(points, ax=list(row), fraction=0.05 / len(row), pad=0.02)
        cbar.set_label(f"{module_title(adata, key, name)}\nactivity", fontsize=9)
        cbar.outline.set_visible(False)
    return axes


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


def _range(value, every: np.ndarray, name: str, pick) -> float | None:
    """A limit shared by all panels: the number, the percentile over every module drawn, or the range."""
    if value is not None:
        return _limit(value, every, name)
    finite = every[np.isfinite(every)]
    return float(pick(finite)) if finite.size else None
