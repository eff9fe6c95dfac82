"""``pl.stability``: the stability assay of ``explain.stability`` in two panels (explanation change
against the seed noise floor; embedding change against explanation change)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd
from anndata import AnnData
from matplotlib import pyplot as plt
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from .._docs import doc
from .._keys import STABILITY_KEY
from .._utils import renamed_keyword
from .._validate import check_adata, check_key
from ..get._stability import stability_slot
from ._utils import finish

#: colour of the LAVA interventions (embedding fixed) and of the noise band
LAVA_COLOUR = "#1f77b4"
NOISE_COLOUR = "0.55"
#: colours of the embedding factors (LAVA fixed)
EMBEDDING_COLOURS = ("#d62728", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


@renamed_keyword("key_added", "key")
@doc(figure="lava_stability.png")
def stability(
    adata: AnnData,
    *,
    key: str = STABILITY_KEY,
    ax: Axes | Sequence[Axes] | None = None,
    show: bool | None = None,
    save: str | os.PathLike | bool | None = None,
) -> Axes | list[Axes] | None:
    """The stability assay of :func:`lava_sc.explain.stability` in two panels.

    **Left:** the explanation change (``1 -`` matched module Jaccard) of every intervention, grouped by
    factor (LAVA factors in blue, embedding factors in warm colours), against the seed-only noise floor:
    a grey band from the smallest to the largest change that re-seeding LAVA alone produced, with a
    dashed line at its mean. Points above the band changed the explanation more than noise does.

    **Right:** embedding change (kNN-overlap distance to the reference embedding) against explanation
    change for the embedding interventions, each labelled with its value, with the same noise band and
    Kendall's tau in the title (or why it is missing).

    Parameters
    ----------
    adata
        Annotated data matrix with results of :func:`lava_sc.explain.stability`.
    key
        The ``key_added`` :func:`lava_sc.explain.stability` wrote its results to.
    ax
        A single Axes: draw only the left panel (explanation change per intervention) into it. Two
        Axes (a list, or the array from ``plt.subplots(1, 2)``): draw both panels into them. ``None``: a
        new figure.
    {show}
    {save}

    Returns
    -------
    With ``show=False`` (or with ``ax``): a list of the two Axes, or the one Axes when ``ax`` is a
    single Axes or the assay had no embedding intervention (then only the left panel is drawn).
    Otherwise ``None``.

    Examples
    --------
    >>> lv.explain.stability(adata, {"resolution": [0.5, 2], "n_neighbors": [10, 30]})
    >>> lv.pl.stability(adata)
    """
    check_adata(adata)
    key = check_key(key)
    slot = stability_slot(adata, key)
    effects = slot["effects"].copy()
    effects["factor"] = effects["factor"].astype(str)
    effects["kind"] = effects["kind"].astype(str)
    floor = slot["noise_floor"]["explanation_change"].to_numpy(dtype=np.float64)
    has_embedding = bool((effects["kind"] == "embedding").any())

    if ax is None:
        n = 2 if has_embedding else 1
        n_points = len(effects) + effects["factor"].nunique()
        width_left = min(max(4.2, 0.34 * n_points + 1.6), 14.0)
        _, grid = plt.subplots(
            1,
            n,
            figsize=(width_left + (4.6 if n == 2 else 0), 4.2),
            squeeze=False,
            layout="constrained",
            width_ratios=[width_left, 4.6] if n == 2 else None,
        )
        axes = list(grid.ravel())
    elif isinstance(ax, Axes):
        axes = [ax]
    elif (
        isinstance(ax, (Sequence, np.ndarray))
        and np.size(ax) == 2
        and all(isinstance(a, Axes) for a in np.ravel(np.asarray(ax, dtype=object)))
    ):
        axes = list(np.ravel(np.asarray(ax, dtype=object)))  # a list, or the array plt.subplots(1, 2) returns
    else:
        raise TypeError(
            f"`ax` must be a matplotlib Axes (left panel only), a list of two Axes (both panels) or None, got {ax!r}."
        )

    colours = factor_colours(effects)
    _effects_panel(axes[0], effects, floor, colours)
    if len(axes) == 2:
        _scatter_panel(axes[1], effects, floor, colours, slot)
    result = axes[0] if len(axes) == 1 else axes
    return finish(result, ax_given=ax is not None, show=show, save=save, name="lava_stability")


def factor_colours(effects: pd.DataFrame) -> dict[str, str]:
    """Blue for the LAVA factors, a distinct warm colour per embedding factor."""
    colours = {}
    embedding_factors = pd.unique(effects.loc[effects["kind"] == "embedding", "factor"]).tolist()
    for f in pd.unique(effects["factor"]):
        if f in embedding_factors:
            colours[f] = EMBEDDING_COLOURS[embedding_factors.index(f) % len(EMBEDDING_COLOURS)]
        else:
            colours[f] = LAVA_COLOUR
    return colours


def _is_reference(rows: pd.DataFrame) -> np.ndarray:
    if "is_reference" not in rows:
        return np.zeros(len(rows), dtype=bool)
    return rows["is_reference"].to_numpy().astype(bool)


def _value_label(value: float) -> str:
    return f"{value:g}"


def _noise_band(ax: Axes, floor: np.ndarray) -> None:
    if floor.size == 0 or not np.isfinite(floor).any():
        return
    low, high, mean = float(np.nanmin(floor)), float(np.nanmax(floor)), float(np.nanmean(floor))
    ax.axhspan(low, max(high, low + 0.004), color=NOISE_COLOUR, alpha=0.22, lw=0, zorder=0)
    ax.axhline(mean, color=NOISE_COLOUR, ls="--", lw=1.0, zorder=1)


def _effects_panel(ax: Axes, effects: pd.DataFrame, floor: np.ndarray, colours: dict[str, str]) -> None:
    """Explanation change per intervention: a lollipop per value, grouped by factor."""
    _noise_band(ax, floor)
    x, ticks, labels, centres, separators = 0.0, [], [], [], []
    for factor, rows in effects.groupby("factor", sort=False):
        xs = x + np.arange(len(rows))
        y = rows["explanation_change"].to_numpy(dtype=np.float64)
        colour = colours[factor]
        ref = _is_reference(rows)
        ax.vlines(xs, 0, y, color=colour, lw=2.0, alpha=0.55, zorder=2)
        ax.scatter(xs[~ref], y[~ref], s=42, color=colour, edgecolors="white", linewidths=0.8, zorder=3)
        ax.scatter(xs[ref], y[ref], s=42, facecolors="white", edgecolors=colour, linewidths=1.6, zorder=3)
        ticks.extend(xs.tolist())
        labels.extend(_value_label(v) for v in rows["value"].to_numpy(dtype=np.float64))
        centres.append((float(xs.mean()), str(factor), rows["kind"].iloc[0]))
        x = xs[-1] + 1.8
        separators.append(xs[-1] + 0.9)
    ax.set_xticks(ticks, labels, fontsize=8, rotation=90 if max(map(len, labels), default=0) > 4 else 0)
    for centre, factor, _ in centres:  # factor names under the value labels
        ax.annotate(
            factor,
            xy=(centre, 0),
            xycoords=("data", "axes fraction"),
            xytext=(0, -26 if max(map(len, labels), default=0) <= 4 else -42),
            textcoords="offset points",
            ha="center",
            va="top",
            fontsize=9,
            fontweight="bold",
            color=colours[factor] if colours[factor] != LAVA_COLOUR else "0.15",
        )
    for boundary in separators[:-1]:  # thin lines between the factor groups
        ax.axvline(boundary, color="0.85", lw=0.8, zorder=0)
    ax.set_xlim(-0.8, max(ticks, default=0) + 0.8)
    if not ticks:
        ax.text(0.5, 0.5, "no interventions: seed-only noise floor", transform=ax.transAxes, ha="center", color="0.4")
    ax.set_ylim(-0.04, 1.04)
    ax.set_ylabel("explanation change\n(1 − matched module Jaccard)")
    ax.set_title("Explanation change per intervention", fontsize=10)
    ax.grid(True, axis="y", color="0.92", zorder=0)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    handles = [Patch(color=NOISE_COLOUR, alpha=0.35, label="seed-only noise (range, mean)")]
    if (effects["kind"] == "lava").any():
        handles.append(Line2D([], [], marker="o", ls="none", color=LAVA_COLOUR, label="LAVA factor (embedding fixed)"))
    if (effects["kind"] == "embedding").any():
        handles.append(Line2D([], [], marker="o", ls="none", color="#d62728", label="embedding factor (LAVA fixed)"))
    if effects.get("is_reference", pd.Series(dtype=bool)).astype(bool).any():
        handles.append(
            Line2D([], [], marker="o", ls="none", color="0.3", markerfacecolor="white", label="reference setting")
        )
    ax.legend(handles=handles, loc="upper left", fontsize=8, frameon=True, framealpha=0.9, edgecolor="none")


def _scatter_panel(ax: Axes, effects: pd.DataFrame, floor: np.ndarray, colours: dict[str, str], slot) -> None:
    """Embedding change vs explanation change for the embedding interventions, with Kendall's tau."""
    _noise_band(ax, floor)
    sub = effects[effects["kind"] == "embedding"]
    labels: list[tuple[float, float, str, str]] = []
    for factor, rows in sub.groupby("factor", sort=False):
        xe = rows["embedding_change"].to_numpy(dtype=np.float64)
        ye = rows["explanation_change"].to_numpy(dtype=np.float64)
        ref = _is_reference(rows)
        colour = colours[factor]
        ax.scatter(xe[~ref], ye[~ref], s=46, color=colour, edgecolors="white", linewidths=0.8, zorder=3, label=factor)
        ax.scatter(xe[ref], ye[ref], s=46, facecolors="white", edgecolors=colour, linewidths=1.6, zorder=3)
        values = rows["value"].to_numpy(dtype=np.float64)
        labels.extend(
            (xi, yi, _value_label(v), colour) for xi, yi, v, r in zip(xe, ye, values, ref, strict=True) if not r
        )
    _place_labels(ax, labels)
    if _is_reference(sub).any():
        ax.annotate("reference settings", (0, 0), xytext=(8, 6), textcoords="offset points", fontsize=7, color="0.3")
    tau = float(slot["kendall_tau"])
    if np.isfinite(tau):
        title = f"Kendall's τ = {tau:.2f} (p = {float(slot['kendall_pvalue']):.2g}, n = {int(slot['kendall_n'])})"
    else:
        title = f"Kendall's τ: n/a ({slot['kendall_note']})"
    ax.set_title(title, fontsize=10 if np.isfinite(tau) else 8, wrap=True)
    ax.set_xlim(-0.04, 1.04)
    ax.set_ylim(-0.04, 1.04)
    k = slot["params"].get("knn_k", 15) if "params" in slot else 15
    ax.set_xlabel(f"embedding change\n(1 − Jaccard of each cell's {int(k)} nearest neighbours)")
    ax.set_ylabel("explanation change")
    ax.grid(True, color="0.92", zorder=0)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.legend(title="embedding factor", loc="best", fontsize=8, title_fontsize=8, framealpha=0.9, edgecolor="none")


def _place_labels(ax: Axes, labels: list[tuple[float, float, str, str]]) -> None:
    """Value labels right of their points, stepped down where they would overprint an earlier one."""
    placed: list[tuple[float, float]] = []
    for x, y, text, colour in sorted(labels, key=lambda t: (-t[1], t[0])):
        dy = 3.0
        while any(abs(x - px) < 0.06 and abs((y + dy / 250) - py) < 0.035 for px, py in placed):
            dy -= 8.0
        placed.append((x, y + dy / 250))
        ax.annotate(text, (x, y), xytext=(5, dy), textcoords="offset points", fontsize=7, color=colour)
