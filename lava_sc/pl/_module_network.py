"""``pl.module_network``: a module's gene-gene network (edges weighted by the pairs' correlation)."""

from __future__ import annotations

import os
import random
from typing import Literal

import igraph as ig
import numpy as np
from anndata import AnnData
from matplotlib import colors as mcolors
from matplotlib import patheffects
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.lines import Line2D

from .._docs import doc
from .._keys import DEFAULT_KEY
from .._validate import check_choice, check_int
from ._utils import check_results, finish, module_gene_table, module_pair_table, new_axes, select_module

_LAYOUTS = ("fr", "kk", "circle")
_EDGE_COLOUR = "#4a5a6a"
_NEGATIVE_EDGE_COLOUR = "#2166ac"  # anti-correlated pairs of a signed module


@doc(figure="lava_module_network_<module>.png")
def module_network(
    adata: AnnData,
    module: str,
    *,
    key: str = DEFAULT_KEY,
    max_genes: int = 30,
    layout: Literal["fr", "kk", "circle"] = "fr",
    random_state: int = 0,
    cmap="YlOrRd",
    ax: Axes | None = None,
    show: bool | None = None,
    save: str | os.PathLike | bool | None = None,
) -> Axes | None:
    """A module's gene–gene association network.

    Nodes are the module's genes, sized and coloured by their score (1 = the module's hub gene);
    edges are its gene pairs, wider for a higher ``weight`` (mean correlation where the pair is
    significant) and more opaque for a higher ``support`` (number of localities where it is);
    anti-correlated pairs (negative ``weight``, from ``tl.correlations(alternative="two-sided")``)
    are drawn in blue.
    The layout is computed with igraph and drawn with matplotlib only.

    Parameters
    ----------
    {adata_modules}
    module
        The module to draw, e.g. ``"M1"``.
    {key}
    max_genes
        Draw at most this many genes: the highest-scoring ones, with the pairs among them.
    layout
        ``"fr"`` (Fruchterman–Reingold, weighted), ``"kk"`` (Kamada–Kawai) or ``"circle"``.
    random_state
        Seed of the layout; the same seed gives the same picture.
    cmap
        Colormap of the node colours (gene score).
    {ax}
    {show}
    {save}

    Returns
    -------
    {returns_axes}
    """
    key = check_results(adata, key)
    module = select_module(adata, key, module)
    max_genes = check_int("max_genes", max_genes, low=2)
    check_choice("layout", layout, _LAYOUTS)
    random_state = check_int("random_state", random_state, low=0)

    genes_all = module_gene_table(adata, key, module)
    genes = genes_all.head(max_genes)
    names = genes["gene"].tolist()
    scores = genes["score"].to_numpy(dtype=np.float64)
    index = {g: i for i, g in enumerate(names)}
    pairs = module_pair_table(adata, key, module)
    keep = pairs["gene_a"].isin(index) & pairs["gene_b"].isin(index) & (pairs["gene_a"] != pairs["gene_b"])
    pairs = pairs.loc[keep]
    edges = np.column_stack([pairs["gene_a"].map(index), pairs["gene_b"].map(index)]).astype(np.int64)
    signed_weight = pairs["weight"].to_numpy(dtype=np.float64)
    weight = np.abs(signed_weight)
    support = pairs["support"].to_numpy(dtype=np.float64)

    # anti-correlated pairs pull weakly, so a signed module's two sides are laid out apart
    pos = _layout(len(names), edges, np.where(signed_weight < 0, 0.1 * weight, weight), layout, random_state)

    ax_given = ax is not None
    ax = new_axes(ax, (6.4, 6.2))
    _frame(ax)
    shown = f"top {len(names)} of {len(genes_all)} genes" if len(genes_all) > len(names) else f"{len(names)} genes"
    ax.set_title(f"{module}: {shown}, {len(edges)} pairs", fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
    for side in ax.spines.values():
        side.set_visible(False)

    nodes = ax.scatter(
        pos[:, 0], pos[:, 1], c=scores, cmap=cmap, vmin=0, vmax=1, edgecolors="#333333", linewidths=0.7, zorder=2
    )
    cbar = ax.figure.colorbar(nodes, ax=ax, fraction=0.04, pad=0.01, shrink=0.6)
    cbar.set_label("gene score: weighted degree\n(1 = the hub gene)", fontsize=8)
    cbar.outline.set_visible(False)
    if len(edges):
        w_lo, w_hi = weight.min(), weight.max()
        handles = [
            Line2D([], [], color=_EDGE_COLOUR, lw=_width(np.array([w]), w_lo, w_hi)[0], label=f"|r| = {w:.2f}")
            for w in sorted({w_lo, w_hi})
        ]
        if (signed_weight < 0).any():
            handles.append(Line2D([], [], color=_NEGATIVE_EDGE_COLOUR, lw=2, label="anti-correlated (r < 0)"))
        handles.append(
            Line2D(
                [], [], color="none", label=f"opacity: found in {int(support.min())}–{int(support.max())} localities"
            )
        )
        ax.legend(
            handles=handles,
            loc="upper center",
            bbox_to_anchor=(0.5, 0.0),
            ncols=len(handles),
            fontsize=7,
            frameon=False,
            handlelength=2.5,
        )

    # sizes in points depend on the final size of the axes: settle the layout first
    fig = _root_figure(ax)
    fig.draw_without_rendering()
    scale = float(np.clip(ax.bbox.width / fig.dpi / 5.0, 0.45, 1.5))
    node_size = (60 + 440 * np.clip(scores, 0, 1)) * scale**2
    nodes.set_sizes(node_size)
    label_px = (8 if scale >= 0.8 else 7) * fig.dpi / 72.0
    pos = _spread(ax, pos, np.sqrt(node_size) / 2 * fig.dpi / 72.0, gap=0.9 * label_px)
    nodes.set_offsets(pos)

    if len(edges):
        alpha = 0.2 + 0.7 * _unit(support, support.min(), support.max())
        rgba = np.array(
            [mcolors.to_rgba(_NEGATIVE_EDGE_COLOUR if w < 0 else _EDGE_COLOUR) for w in signed_weight]
        ).reshape(len(edges), 4)
        rgba[:, 3] = alpha
        order = np.argsort(weight, kind="stable")  # strongest edges on top
        ax.add_collection(
            LineCollection(
                pos[edges[order]],
                linewidths=_width(weight, w_lo, w_hi)[order] * max(scale, 0.7),
                colors=rgba[order],
                zorder=1,
                capstyle="round",
            )
        )
    _labels(ax, pos, names, node_size, fontsize=8 if scale >= 0.8 else 7)
    return finish(ax, ax_given=ax_given, show=show, save=save, name=f"lava_module_network_{module}")


def _unit(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return np.full(x.shape, 0.5) if hi <= lo else (x - lo) / (hi - lo)


def _layout(n: int, edges: np.ndarray, weight: np.ndarray, layout: str, random_state: int) -> np.ndarray:
    """Node positions in [0, 1]^2, deterministic for ``random_state``."""
    if n == 1:
        return np.array([[0.5, 0.5]])
    graph = ig.Graph(n=n, edges=edges.tolist(), directed=False)
    rng = np.random.default_rng(random_state)
    seed = rng.uniform(-1, 1, size=(n, 2)).tolist()
    # igraph draws from Python's `random` by default; make any draw inside the layout reproducible too.
    ig.set_random_number_generator(random.Random(random_state))
    try:
        if layout == "fr":
            coords = graph.layout_fruchterman_reingold(weights=weight.tolist() or None, seed=seed, niter=1000)
        elif layout == "kk":
            coords = graph.layout_kamada_kawai(seed=seed)
        else:
            coords = graph.layout_circle()
    finally:
        ig.set_random_number_generator(random)
    pos = np.asarray(coords.coords, dtype=np.float64)
    # force-directed layouts pack a module's hub genes tightly: expand the core (radius ** 0.6)
    centre = np.median(pos, axis=0)
    radius = np.linalg.norm(pos - centre, axis=1)
    if layout != "circle" and radius.max() > 0:
        r = radius / radius.max()
        pos = centre + (pos - centre) * np.where(r > 0, r**0.6 / np.where(r > 0, r, 1.0), 0.0)[:, None]
    span = pos.max(axis=0) - pos.min(axis=0)
    return (pos - pos.min(axis=0)) / np.where(span > 0, span, 1.0)


def _width(weight: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return 0.6 + 3.4 * _unit(weight, lo, hi)


def _frame(ax: Axes) -> None:
    ax.set_xlim(-0.12, 1.12)
    ax.set_ylim(-0.12, 1.12)


def _labels(ax: Axes, pos: np.ndarray, names: list[str], node_size: np.ndarray, fontsize: float = 8) -> None:
    """Gene labels just above their nodes, nudged apart where they would overlap."""
    halo = [patheffects.withStroke(linewidth=2.5, foreground="white")]
    texts = [
        ax.annotate(
            name,
            xy=(x, y),
            xytext=(0, np.sqrt(s) / 2 + 2),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=fontsize,
            zorder=3,
            path_effects=halo,
        )
        for (x, y), name, s in zip(pos, names, node_size, strict=True)
    ]
    fig = _root_figure(ax)
    _repel(ax, texts, ax.transData.transform(pos), np.sqrt(node_size) / 2 * fig.dpi / 72.0)


def _spread(ax: Axes, pos: np.ndarray, radius_px: np.ndarray, gap: float = 2.0, n_iter: int = 300) -> np.ndarray:
    """Move nodes apart (in display space) until their markers no longer overlap, staying inside [0, 1]^2."""
    if len(pos) < 2:
        return pos
    to_px = ax.transData
    lo = to_px.transform([[0.0, 0.0]])[0]
    hi = to_px.transform([[1.0, 1.0]])[0]
    px = to_px.transform(pos)
    need = radius_px[:, None] + radius_px[None, :] + gap
    for _ in range(n_iter):
        delta = px[:, None, :] - px[None, :, :]
        dist = np.sqrt((delta**2).sum(axis=-1))
        np.fill_diagonal(dist, np.inf)
        short = np.clip(need - dist, 0, None)
        if not (short > 0.5).any():
            break
        # coincident nodes: push the pair apart along a fixed, index-dependent direction
        idx = np.arange(len(px))
        angle = np.add.outer(idx, idx) * 2.399963
        side = np.sign(np.subtract.outer(idx, idx))[..., None]
        fallback = side * np.stack([np.cos(angle), np.sin(angle)], axis=-1)
        unit = np.where(dist[..., None] > 1e-9, delta / np.where(dist > 1e-9, dist, 1.0)[..., None], fallback)
        px = px + 0.5 * (unit * short[..., None]).sum(axis=1)
        px = np.clip(px, np.minimum(lo, hi), np.maximum(lo, hi))
    return to_px.inverted().transform(px)


def _repel(ax: Axes, texts, node_px: np.ndarray, node_r: np.ndarray, n_iter: int = 300) -> None:
    """Push labels off each other and off the nodes (in display space), keeping each near its node."""
    if not texts:
        return
    fig = _root_figure(ax)
    renderer = fig.canvas.get_renderer() if hasattr(fig.canvas, "get_renderer") else fig._get_renderer()
    scale = fig.dpi / 72.0
    boxes = np.array([t.get_window_extent(renderer).bounds for t in texts], dtype=np.float64)  # x0, y0, w, h (px)
    base = np.array([t.xyann for t in texts], dtype=np.float64)
    shift = np.zeros_like(base)  # in pixels
    pad = 1.0
    n0, n1 = node_px - node_r[:, None], node_px + node_r[:, None]
    for _ in range(n_iter):
        x0 = boxes[:, 0] + shift[:, 0]
        y0 = boxes[:, 1] + shift[:, 1]
        x1 = x0 + boxes[:, 2]
        y1 = y0 + boxes[:, 3]
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        # label vs label: each moves half the overlap, along the axis of least overlap
        ox = np.minimum(x1[:, None], x1[None, :]) - np.maximum(x0[:, None], x0[None, :]) + pad
        oy = np.minimum(y1[:, None], y1[None, :]) - np.maximum(y0[:, None], y0[None, :]) + pad
        hit = (ox > 0) & (oy > 0)
        np.fill_diagonal(hit, False)
        dx = cx[:, None] - cx[None, :]
        dy = cy[:, None] - cy[None, :]
        move_x = np.where(hit & (ox < oy), np.sign(dx + 1e-9) * ox / 2, 0.0).sum(axis=1)
        move_y = np.where(hit & (oy <= ox), np.sign(dy + 1e-9) * oy / 2, 0.0).sum(axis=1)
        # label vs node: the label moves the whole overlap
        ox = np.minimum(x1[:, None], n1[None, :, 0]) - np.maximum(x0[:, None], n0[None, :, 0]) + pad
        oy = np.minimum(y1[:, None], n1[None, :, 1]) - np.maximum(y0[:, None], n0[None, :, 1]) + pad
        node_hit = (ox > 0) & (oy > 0)
        if not hit.any() and not node_hit.any():
            break
        dx = cx[:, None] - node_px[None, :, 0]
        dy = cy[:, None] - node_px[None, :, 1]
        move_x += np.where(node_hit & (ox < oy), np.sign(dx + 1e-9) * ox, 0.0).sum(axis=1)
        move_y += np.where(node_hit & (oy <= ox), np.sign(dy + 1e-9) * oy, 0.0).sum(axis=1)
        shift[:, 0] += 0.5 * move_x
        shift[:, 1] += 0.5 * move_y
    for text, b, s in zip(texts, base, shift / scale, strict=True):
        text.xyann = (b[0] + s[0], b[1] + s[1])


def _root_figure(ax: Axes):
    try:
        return ax.get_figure(root=True)
    except TypeError:  # matplotlib < 3.10
        fig = ax.figure
        while hasattr(fig, "figure") and fig.figure is not fig and fig.figure is not None:
            fig = fig.figure
        return fig
