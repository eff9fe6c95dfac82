"""``pl.localities``: the probes and their localities over the embedding, coloured by coverage,
in-degree or an obs column."""

from __future__ import annotations

import os
from collections.abc import Sequence
from numbers import Integral

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData
from matplotlib import colors as mcolors
from matplotlib import patheffects
from matplotlib import pyplot as plt
from matplotlib.axes import Axes
from matplotlib.legend import Legend
from matplotlib.lines import Line2D

from .._docs import doc
from .._keys import DEFAULT_KEY, Keys
from .._params import decode
from .._params import recorded as recorded_setting
from .._validate import check_adata, check_key, check_localities, require
from ._utils import default_point_size, embedding_2d, finish, new_axes, style_embedding_axes

_DIAGNOSTIC_COLORS = ("coverage", "in_degree")
_HIGHLIGHT = plt.get_cmap("tab10").colors


@doc(figure="lava_localities.png")
def localities(
    adata: AnnData,
    *,
    basis: str | None = None,
    key: str = DEFAULT_KEY,
    color: str | None = "coverage",
    show_members: int | str | Sequence[int | str] | None = None,
    probe_labels: bool | None = None,
    size: float | None = None,
    ax: Axes | None = None,
    show: bool | None = None,
    save: str | os.PathLike | bool | None = None,
) -> Axes | None:
    """Localities on the embedding: cells, the probes (numbered), and chosen localities' members.

    Parameters
    ----------
    adata
        Annotated data matrix with results of :func:`lava_sc.tl.localities`.
    basis
        Embedding to draw on. Default: the one the localities were built in
        (``uns[key]["params"]["localities"]["basis"]``). In any other embedding a probe is drawn at
        the mean position of its locality's cells.
    {key}
    color
        Colour of the cells: ``"coverage"`` (how many localities contain the cell; uncovered cells are
        marked with a red ring; counted from ``obsm[f"{key}_localities"]``, so it follows ``adata[mask]``),
        ``"in_degree"`` (the cell's kNN in-degree, which coverage should track; refused with a
        ValueError once the cells were subset or reordered after :func:`~lava_sc.tl.localities`, unless
        it is stored per cell in ``obs[f"{key}_in_degree"]``), a column of ``adata.obs`` (numeric or
        categorical), or ``None`` for grey.
    show_members
        A locality (index ``3`` or id ``"L3"``) or a list of them whose member cells are outlined,
        each in its own colour, with the convex hull of the members.
    probe_labels
        Write each probe's locality index in its marker. Default: when there are at most 60 localities.
    size
        Point size of the cells (default ``120000 / n_obs``, at most 30).
    {ax}
    {show}
    {save}

    Returns
    -------
    {returns_axes}
    """
    check_adata(adata)
    key = check_key(key)
    require(adata, key, Keys.localities, "localities")
    require(adata, key, Keys.probes, "localities")
    check_localities(adata, key)
    slot = adata.uns[key]
    keys = Keys(key)
    membership = sp.csc_matrix(adata.obsm[keys.obsm_localities])
    probes = np.asarray(slot[Keys.probes], dtype=np.float64)
    n_loc = membership.shape[1]
    recorded = recorded_setting(adata, key, "localities", "basis") or decode(slot[Keys.localities].get("basis"))
    if basis is None:
        if recorded is None:
            raise KeyError(
                f"No basis is recorded in adata.uns[{key!r}]['params']['localities']; pass `basis=` (e.g. 'X_umap')."
            )
        basis = recorded
    coords, obsm_key = embedding_2d(adata, basis)
    if recorded is not None and obsm_key == recorded and probes.ndim == 2 and probes.shape[1] >= 2:
        probe_xy = probes[:, :2]
    else:  # another embedding: probes live elsewhere, place them at their members' centroid
        counts = np.asarray(membership.sum(axis=0)).ravel()
        probe_xy = (membership.T @ coords) / np.maximum(counts, 1)[:, None]
    selected = _selected(show_members, n_loc)

    ax_given = ax is not None
    ax = new_axes(ax, (6.2, 5.0))
    if size is None:
        size = default_point_size(adata.n_obs)
    uncovered = _draw_cells(ax, adata, key, slot, coords, color, size)

    if probe_labels is None:
        probe_labels = n_loc <= 60
    marker_size = 150 if probe_labels else 40
    ax.scatter(probe_xy[:, 0], probe_xy[:, 1], s=marker_size, c="white", edgecolors="black", linewidths=0.9, zorder=4)
    if probe_labels:
        fontsize = 7 if n_loc < 100 else 5.5
        for i, (x, y) in enumerate(probe_xy):
            ax.text(x, y, str(i), ha="center", va="center", fontsize=fontsize, zorder=5)

    handles = [uncovered] if uncovered is not None else []
    for j, loc in enumerate(selected):
        colour = _HIGHLIGHT[j % len(_HIGHLIGHT)]
        members = membership.indices[membership.indptr[loc] : membership.indptr[loc + 1]]
        pts = coords[members]
        ax.scatter(pts[:, 0], pts[:, 1], s=size * 1.6, facecolors="none", edgecolors=colour, linewidths=1.0, zorder=3)
        _hull(ax, pts, colour)
        ax.scatter(
            probe_xy[loc, 0], probe_xy[loc, 1], s=marker_size, c="white", edgecolors=colour, linewidths=2.2, zorder=4.5
        )
        handles.append(
            Line2D([], [], marker="o", ls="--", color=colour, mfc="none", label=f"L{loc} ({len(members)} cells)")
        )
    if handles:  # a second legend, so that a categorical `color` keeps its own
        legend = Legend(ax, handles, [h.get_label() for h in handles], loc="best", fontsize=8, framealpha=0.85)
        legend.set_zorder(6)
        ax.add_artist(legend)

    ax.set_title(f"{n_loc} localities on {obsm_key}", fontsize=10)
    style_embedding_axes(ax, obsm_key)
    return finish(ax, ax_given=ax_given, show=show, save=save, name="lava_localities")


def _selected(show_members, n_loc: int) -> list[int]:
    if show_members is None:
        return []
    if isinstance(show_members, (str, Integral)) or np.isscalar(show_members):
        show_members = [show_members]
    out = []
    for item in show_members:
        idx = item
        if isinstance(item, str):
            text = item[1:] if item[:1] in ("L", "l") else item
            if not text.isdigit():
                raise ValueError(f"`show_members` takes locality indices (3) or ids ('L3'), got {item!r}.")
            idx = int(text)
        if isinstance(idx, bool) or not isinstance(idx, Integral):
            raise TypeError(f"`show_members` takes locality indices (3) or ids ('L3'), got {item!r}.")
        if not 0 <= idx < n_loc:
            raise ValueError(f"Locality {item!r} does not exist; there are {n_loc} localities (L0 to L{n_loc - 1}).")
        out.append(int(idx))
    return list(dict.fromkeys(out))


def _draw_cells(ax: Axes, adata: AnnData, key: str, slot, coords: np.ndarray, color, size: float):
    """Draw the cells; returns the artist marking uncovered cells, if any (for the legend)."""
    kw = dict(s=size, edgecolors="none", zorder=1)
    if color is None:
        ax.scatter(coords[:, 0], coords[:, 1], c="#c8c8c8", **kw)
        return
    if not isinstance(color, str):
        raise TypeError(f"`color` must be 'coverage', 'in_degree', an obs column or None, got {color!r}.")
    if color in _DIAGNOSTIC_COLORS:
        values = _per_cell_diagnostic(adata, key, slot, color)
        label = "localities covering the cell" if color == "coverage" else "kNN in-degree"
        _continuous(ax, coords, values, label, kw, integer=color == "coverage")
        if color == "coverage":
            bare = values == 0
            if bare.any():
                return ax.scatter(
                    coords[bare, 0],
                    coords[bare, 1],
                    s=size * 2.2,
                    facecolors="none",
                    edgecolors="#d62728",
                    linewidths=1.0,
                    zorder=2,
                    label=f"uncovered ({int(bare.sum())})",
                )
        return
    if color not in adata.obs.columns:
        raise KeyError(
            f"`color={color!r}` is neither 'coverage', 'in_degree' nor a column of adata.obs "
            f"(columns: {list(adata.obs.columns)}); pass one of those or None."
        )
    column = adata.obs[color]
    if isinstance(column.dtype, pd.CategoricalDtype) or column.dtype == object or column.dtype == bool:
        cats = pd.Categorical(column)
        palette = adata.uns.get(f"{color}_colors")
        if palette is None or len(palette) < len(cats.categories):
            base = plt.get_cmap("tab20").colors
            palette = [mcolors.to_hex(base[i % len(base)]) for i in range(len(cats.categories))]
        for i, cat in enumerate(cats.categories):
            mask = np.asarray(cats == cat)
            ax.scatter(coords[mask, 0], coords[mask, 1], c=[palette[i]], label=str(cat), alpha=0.8, **kw)
        ax.legend(
            loc="center left",
            bbox_to_anchor=(1.01, 0.5),
            fontsize=7,
            frameon=False,
            markerscale=1.5,
            title=color,
            title_fontsize=8,
        )
        return
    _continuous(ax, coords, column.to_numpy(dtype=np.float64), color, kw, integer=False)


def _per_cell_diagnostic(adata: AnnData, key: str, slot, color: str) -> np.ndarray:
    """``coverage`` or ``in_degree``, one value per cell of ``adata`` in its current order.

    Coverage is counted from the membership in ``obsm``, which anndata subsets and reorders with the
    cells. ``in_degree`` is read from ``obs[f"{key}_in_degree"]`` when the tool wrote it there, else from
    the diagnostics in ``uns`` (one value per cell of the object the localities were placed on): those
    are used only when the stored coverage still equals the membership's, i.e. the cells are the same
    and in the same order; after ``adata[mask]`` or a reordering they would be misaligned.
    """
    membership = sp.csr_matrix(adata.obsm[Keys(key).obsm_localities])
    coverage = np.diff(membership.indptr).astype(np.float64)
    if color == "coverage":
        return coverage
    column = Keys(key).obs_in_degree
    if column in adata.obs.columns:
        return adata.obs[column].to_numpy(dtype=np.float64)
    diag = slot.get(Keys.localities, {})
    if color not in diag:
        raise KeyError(
            f"adata.uns[{key!r}][{Keys.localities!r}] has no {color!r}; rerun "
            f"lava_sc.tl.localities(adata, key_added={key!r}) or pass `color=None`."
        )
    values = np.asarray(diag[color], dtype=np.float64).ravel()
    stored = np.asarray(diag.get("coverage", []), dtype=np.float64).ravel()
    if values.shape[0] != adata.n_obs or not np.array_equal(stored, coverage):
        raise ValueError(
            f"The stored {color!r} (one value per cell when the localities were placed) no longer matches the "
            f"{adata.n_obs} cells of adata in their current order (was adata subset or reordered?); rerun "
            f"lava_sc.tl.localities(adata, key_added={key!r}) or pass color='coverage'."
        )
    return values


def _continuous(ax: Axes, coords, values, label: str, kw: dict, *, integer: bool) -> None:
    order = np.argsort(values, kind="stable")
    norm = None
    cmap = plt.get_cmap("viridis")
    if integer and np.isfinite(values).all():
        top = int(values.max()) if values.size else 0
        bounds = np.arange(-0.5, top + 1.5)
        cmap = plt.get_cmap("viridis", len(bounds) - 1)
        norm = mcolors.BoundaryNorm(bounds, cmap.N)
    art = ax.scatter(coords[order, 0], coords[order, 1], c=values[order], cmap=cmap, norm=norm, **kw)
    cbar = ax.figure.colorbar(art, ax=ax, fraction=0.05, pad=0.02)
    if norm is not None:
        top = int(values.max()) if values.size else 0
        step = max(1, int(np.ceil((top + 1) / 10)))
        cbar.set_ticks(np.arange(0, top + 1, step))
        cbar.minorticks_off()
    cbar.set_label(label)
    cbar.outline.set_visible(False)


def _hull(ax: Axes, pts: np.ndarray, colour) -> None:
    """Dashed convex hull around a locality's members (skipped for degenerate point sets)."""
    if len(pts) < 3:
        return
    from scipy.spatial import ConvexHull, QhullError

    try:
        hull = ConvexHull(pts)
    except QhullError:
        return
    ring = pts[np.append(hull.vertices, hull.vertices[0])]
    (line,) = ax.plot(ring[:, 0], ring[:, 1], ls="--", lw=1.3, color=colour, zorder=3.5)
    line.set_path_effects([patheffects.Stroke(linewidth=2.6, foreground="white", alpha=0.7), patheffects.Normal()])
