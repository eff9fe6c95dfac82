"""``pl.differential``: the results of ``tl.differential`` as a heatmap of effects, one panel per
condition, with the significant cells marked."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd
from anndata import AnnData
from matplotlib import pyplot as plt
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.lines import Line2D
from matplotlib.transforms import offset_copy

from .._docs import doc
from .._keys import DEFAULT_KEY, Keys
from .._validate import check_adata, check_float, check_int, check_key
from ..get._differential import differential_table
from ._utils import check_single_ax, finish, module_title

#: -log10(q) at which the dot size stops growing
LOG_Q_CAP = 5.0
#: smallest and largest dot area (points^2)
DOT_SIZES = (12.0, 260.0)


@doc(figure="lava_differential.png")
def differential(
    adata: AnnData,
    *,
    key: str = DEFAULT_KEY,
    condition: str | None = None,
    modules: str | Sequence[str] | None = None,
    q_threshold: float = 0.05,
    label_genes: int = 3,
    cmap="RdBu_r",
    ax: Axes | None = None,
    show: bool | None = None,
    save: str | os.PathLike | bool | None = None,
) -> Axes | list[Axes] | None:
    """Differential module activity as a dot plot: modules (rows) x groups such as cell types (columns).

    Dot colour is the effect (``mean_condition - mean_reference`` of the module activity) on a
    diverging scale centred at 0, with the same symmetric limits in every panel. Dot area grows with
    ``-log10(q)`` (capped at ``q = 1e-5``); dots with ``q < q_threshold`` have a black ring. Rows are
    labelled with the module name and its ``label_genes`` top genes. Rows that could not be tested (too few
    replicates, see the ``note`` column of :func:`lava_sc.get.differential`) are drawn as grey crosses.

    Parameters
    ----------
    adata
        Annotated data matrix with results of :func:`lava_sc.tl.differential`.
    {key}
    condition
        Draw only this condition. Default: one panel per non-reference condition, side by side.
    modules
        Which modules to draw (rows): ``None`` for all, a name such as ``"M1"``, or a list of names.
    q_threshold
        Dots with a q-value below this are marked as significant.
    label_genes
        Top genes named in each row label (``0``: the module name only, for a narrow figure).
    cmap
        Diverging colormap for the effect.
    ax
        Draw into this Axes; only with a single condition. The colour bar and the legend go to its
        right; leave room for them and for the row labels, e.g. with
        ``plt.subplots(figsize=(8, 4), layout="constrained")``, or pass ``label_genes=0`` when narrow.
    {show}
    {save}

    Returns
    -------
    With ``show=False`` (or with ``ax``): the Axes for a single condition, a list of Axes (one per
    condition) for several. Otherwise ``None``.

    Examples
    --------
    >>> lv.tl.differential(adata, "condition", replicate="donor", within="cell_type")
    >>> lv.pl.differential(adata, condition="AKI")
    """
    check_adata(adata)
    key = check_key(key)
    q_threshold = check_float("q_threshold", q_threshold, low=0.0, high=1.0, open_low=True)
    label_genes = check_int("label_genes", label_genes, low=0)
    table = differential_table(adata, key)
    within = str(table.columns[1])
    conditions = _pick(pd.unique(table["condition"].astype(str)).tolist(), condition, "condition")
    names = _pick(pd.unique(table["module"].astype(str)).tolist(), modules, "module")
    groups = pd.unique(table[within].astype(str)).tolist()
    check_single_ax(ax, len(conditions), "condition")
    sub = table[table["condition"].astype(str).isin(conditions) & table["module"].astype(str).isin(names)]
    norm = _symmetric_norm(sub["effect"].to_numpy(dtype=np.float64))

    if ax is not None:
        axes = [ax]
    else:
        width = 0.42 * len(groups) + 0.9
        height = max(2.6, 0.36 * len(names) + 1.9)
        _, grid = plt.subplots(
            1,
            len(conditions),
            figsize=(width * len(conditions) + 4.2, height),
            squeeze=False,
            sharey=True,
            layout="constrained",
        )
        axes = list(grid.ravel())
    labels = [_row_label(adata, key, name, label_genes) for name in names]
    any_untested = False
    for i, (panel, level) in enumerate(zip(axes, conditions, strict=True)):
        rows = sub[sub["condition"].astype(str) == level]
        any_untested |= _dot_panel(panel, rows, names, groups, within, norm, cmap, q_threshold)
        reference = str(rows["reference"].iloc[0]) if len(rows) else "reference"
        panel.set_title(f"{level} vs {reference}", fontsize=10)
        if i == 0:  # panels share the y axis: label it once
            panel.set_yticks(range(len(names)), labels)
    fig = axes[0].figure
    mappable = ScalarMappable(norm=norm, cmap=cmap)
    if ax is None:
        cbar = fig.colorbar(mappable, ax=axes, fraction=0.04, pad=0.02, shrink=0.8)
    else:  # an inset of the user's Axes: any layout engine sees it as part of that Axes
        cbar = fig.colorbar(mappable, cax=ax.inset_axes([1.04, 0.3, 0.035, 0.6]))
    cbar.set_label("effect on activity\n(condition − reference)")
    cbar.outline.set_visible(False)
    _legend(axes[-1], cbar, q_threshold, any_untested, own_figure=ax is None)
    result = axes[0] if len(axes) == 1 else axes
    return finish(result, ax_given=ax is not None, show=show, save=save, name="lava_differential")


def _pick(available: list[str], wanted, what: str) -> list[str]:
    if wanted is None:
        return available
    if isinstance(wanted, str):
        wanted = [wanted]
    elif not isinstance(wanted, (Sequence, np.ndarray, pd.Index)) or len(wanted) == 0:
        raise TypeError(f"`{what}` must be a {what} name, a non-empty list of names or None, got {wanted!r}.")
    wanted = [str(w) for w in wanted]
    unknown = [w for w in wanted if w not in available]
    if unknown:
        raise KeyError(f"Unknown {what}(s) {unknown} in the differential results; available: {available}.")
    return list(dict.fromkeys(wanted))


def _symmetric_norm(effect: np.ndarray) -> Normalize:
    finite = np.abs(effect[np.isfinite(effect)])
    limit = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    return Normalize(vmin=-limit, vmax=limit)


def _dot_size(q: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        score = np.clip(-np.log10(np.clip(q, 1e-300, 1.0)), 0.0, LOG_Q_CAP) / LOG_Q_CAP
    return DOT_SIZES[0] + (DOT_SIZES[1] - DOT_SIZES[0]) * score


def _row_label(adata: AnnData, key: str, module: str, n_genes: int) -> str:
    if n_genes > 0 and Keys.module_genes in adata.uns.get(key, {}):
        return module_title(adata, key, module, n_genes)
    return module


def _dot_panel(ax: Axes, rows: pd.DataFrame, names, groups, within, norm, cmap, q_threshold) -> bool:
    """Draw one condition's dots; return whether some rows were not tested."""
    y = pd.Index(names).get_indexer(rows["module"].astype(str))
    x = pd.Index(groups).get_indexer(rows[within].astype(str))
    q = rows["qvalue"].to_numpy(dtype=np.float64)
    effect = rows["effect"].to_numpy(dtype=np.float64)
    tested = np.isfinite(q) & np.isfinite(effect)
    significant = tested & (q < q_threshold)
    ax.scatter(
        x[tested],
        y[tested],
        s=_dot_size(q[tested]),
        c=effect[tested],
        cmap=cmap,
        norm=norm,
        # a thin grey rim keeps "tested, no change" (white) visible on the white background
        edgecolors=np.where(significant[tested], "black", "0.7").tolist(),
        linewidths=np.where(significant[tested], 1.4, 0.5),
        zorder=3,
    )
    ax.scatter(x[~tested], y[~tested], s=20, marker="x", c="0.6", linewidths=1.0, zorder=2)
    ax.set_xticks(range(len(groups)), groups, rotation=90)
    ax.set_xlim(-0.6, len(groups) - 0.4)
    ax.set_ylim(len(names) - 0.5, -0.5)  # first module on top
    ax.set_xlabel(within if within != "group" else "")
    ax.grid(True, color="0.92", zorder=0)
    ax.set_axisbelow(True)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    return bool((~tested).any())


def _legend(ax: Axes, cbar, q_threshold: float, untested: bool, *, own_figure: bool) -> None:
    """Dot sizes, the significance ring and (if any) the not-tested cross."""
    handles = [
        _marker(float(_dot_size(np.array([10.0**-level]))[0]), "0.55", "none", label)
        for level, label in ((1, "q = 0.1"), (2, "q = 0.01"), (3, "q = 0.001"), (LOG_Q_CAP, f"q ≤ 1e-{LOG_Q_CAP:g}"))
    ]
    handles.append(_marker(DOT_SIZES[1] * 0.5, "white", "black", f"q < {q_threshold:g}"))
    if untested:
        handles.append(
            Line2D([], [], marker="x", color="0.6", linestyle="none", markersize=5, label="not tested (see note)")
        )
    style = dict(handles=handles, frameon=False, fontsize=8, title="size: −log10 q", title_fontsize=8, labelspacing=1.1)
    if own_figure:
        ax.figure.legend(loc="outside right upper", **style)
    else:
        # right of the colour bar and its label, in the Axes' own coordinates (stable under any layout)
        anchor = offset_copy(ax.transAxes, fig=ax.figure, x=75, units="points")
        ax.legend(loc="upper left", bbox_to_anchor=(1.075, 1.0), bbox_transform=anchor, borderaxespad=0.0, **style)


def _marker(area: float, face, edge, label: str) -> Line2D:
    return Line2D(
        [],
        [],
        marker="o",
        linestyle="none",
        markersize=float(np.sqrt(area)),
        markerfacecolor=face,
        markeredgecolor=edge,
        markeredgewidth=1.4 if edge == "black" else 0.5 if edge != "none" else 0.0,
        label=label,
    )
