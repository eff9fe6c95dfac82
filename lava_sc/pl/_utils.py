"""Helpers shared by the plots: result checks, module selection, panel grids, show/save."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from anndata import AnnData
from matplotlib import pyplot as plt
from matplotlib.axes import Axes

from .._files import atomic_write
from .._keys import Keys
from .._validate import check_adata, check_int, check_key, require

#: dpi of figures written with ``save=``
SAVE_DPI = 150


def check_results(adata: AnnData, key: str) -> str:
    """Check ``adata`` and that :func:`lava_sc.tl.modules` has been run under ``key``."""
    check_adata(adata)
    key = check_key(key)
    require(adata, key, Keys.modules, "modules")
    require(adata, key, Keys.module_genes, "modules")
    return key


def available_modules(adata: AnnData, key: str) -> list[str]:
    """Module names in their stored order (``M1``, ``M2``, ...)."""
    slot = adata.uns[key]
    if Keys.locality_activity in slot:
        names = [str(c) for c in slot[Keys.locality_activity].columns]
        if names:
            return names
    genes = slot[Keys.module_genes]
    names = pd.unique(genes["module"].astype(str)).tolist()
    return sorted(names, key=lambda m: (len(m), m))


def select_modules(adata: AnnData, key: str, modules: str | Sequence[str] | None) -> list[str]:
    """Normalise ``modules`` (None = all, a name, or a list of names) into a list of known names."""
    available = available_modules(adata, key)
    if modules is None:
        if not available:
            raise ValueError(
                f"LAVA found no modules under key {key!r}, so there is nothing to plot; rerun "
                "lava_sc.tl.modules with a lower `min_support`/`min_genes` or a higher `resolution`."
            )
        return available
    if isinstance(modules, str):
        modules = [modules]
    elif not isinstance(modules, Sequence) and not isinstance(modules, (np.ndarray, pd.Index)):
        raise TypeError(f"`modules` must be a module name, a list of names or None, got {modules!r}.")
    modules = [str(m) for m in modules]
    if not modules:
        raise ValueError("`modules` is empty; pass a module name such as 'M1', a list of names, or None for all.")
    unknown = [m for m in modules if m not in available]
    if unknown:
        raise KeyError(f"Unknown module(s) {unknown} under key {key!r}; available modules: {available}.")
    return list(dict.fromkeys(modules))  # drop duplicates, keep order


def select_module(adata: AnnData, key: str, module) -> str:
    """A single module name, validated."""
    if not isinstance(module, str):
        raise TypeError(f"`module` must be one module name such as 'M1', got {module!r}.")
    return select_modules(adata, key, module)[0]


def module_gene_table(adata: AnnData, key: str, module: str) -> pd.DataFrame:
    """The module's genes (``gene``, ``score``), highest score first."""
    table = adata.uns[key][Keys.module_genes]
    sub = table.loc[table["module"].astype(str) == module, ["gene", "score"]].copy()
    sub["gene"] = sub["gene"].astype(str)
    sub["score"] = sub["score"].astype(float)
    return sub.sort_values(["score", "gene"], ascending=[False, True], kind="stable").reset_index(drop=True)


def module_pair_table(adata: AnnData, key: str, module: str) -> pd.DataFrame:
    """The module's associations (``gene_a``, ``gene_b``, ``weight``, ``support``)."""
    table = adata.uns[key][Keys.modules]
    sub = table.loc[table["module"].astype(str) == module, ["gene_a", "gene_b", "weight", "support"]].copy()
    sub["gene_a"] = sub["gene_a"].astype(str)
    sub["gene_b"] = sub["gene_b"].astype(str)
    return sub.reset_index(drop=True)


def top_genes(adata: AnnData, key: str, module: str, n: int = 3) -> list[str]:
    return module_gene_table(adata, key, module)["gene"].head(n).tolist()


def module_title(adata: AnnData, key: str, module: str, n: int = 3) -> str:
    """``"M1: CD74, HLA-DRA, CD79B"`` (the module name and its ``n`` top-scoring genes)."""
    genes = top_genes(adata, key, module, n)
    return f"{module}: {', '.join(genes)}" if genes else module


def check_single_ax(ax, n_panels: int, what: str = "module") -> None:
    if ax is None:
        return
    if not isinstance(ax, Axes):
        raise TypeError(f"`ax` must be a matplotlib Axes, got {type(ax).__name__}.")
    if n_panels > 1:
        raise ValueError(
            f"`ax` can only be used with a single {what}, but {n_panels} {what}s were selected. "
            f"Pass one {what} (e.g. modules='M1') to draw into `ax`, or leave `ax=None` to get a grid of panels."
        )


def panel_grid(n: int, ncols: int, panel_size: tuple[float, float]) -> tuple[plt.Figure, list[Axes]]:
    """A figure with ``n`` panels in rows of ``ncols``; unused cells of the grid are removed."""
    ncols = check_int("ncols", ncols, low=1)
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(panel_size[0] * ncols, panel_size[1] * nrows), squeeze=False, layout="constrained"
    )
    flat = list(axes.ravel())
    for extra in flat[n:]:
        extra.remove()
    return fig, flat[:n]


def new_axes(ax, figsize: tuple[float, float]) -> Axes:
    if ax is not None:
        if not isinstance(ax, Axes):
            raise TypeError(f"`ax` must be a matplotlib Axes, got {type(ax).__name__}.")
        return ax
    _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def save_path(save, name: str) -> Path | None:
    """Where ``save`` asks to write: a path (``.png`` added without a suffix), or scanpy's figdir for ``True``."""
    if save is None or save is False:
        return None
    if save is True:
        from scanpy import settings

        return Path(settings.figdir) / f"{name}.png"
    if not isinstance(save, (str, os.PathLike)):
        raise TypeError(f"`save` must be a file path (e.g. 'activity.png'), True or None, got {save!r}.")
    path = Path(save)
    if not path.suffix:
        path = path.with_suffix(".png")
    return path


def finish(axes, *, ax_given: bool, show: bool | None, save, name: str):
    """Save and/or show the figure; return ``axes`` unless the figure was shown (scanpy convention).

    ``show=None`` shows the figure only when the plot made its own figure (no ``ax`` passed).
    """
    first = axes[0] if isinstance(axes, list) else axes
    fig = first.figure
    path = save_path(save, name)
    if path is not None:
        with atomic_write(path) as partial:
            fig.savefig(partial, dpi=SAVE_DPI, bbox_inches="tight")
    if show is None:
        show = not ax_given
    if show:
        plt.show()
        return None
    return axes


def basis_label(obsm_key: str) -> str:
    """Axis label stem: ``X_umap`` -> ``UMAP``, ``X_pca`` -> ``PC``."""
    name = obsm_key[2:] if obsm_key.startswith("X_") else obsm_key
    return {"pca": "PC", "tsne": "tSNE", "diffmap": "DC", "draw_graph_fa": "FA", "draw_graph_fr": "FR"}.get(
        name, name.upper() if len(name) <= 5 else name
    )


def style_embedding_axes(ax: Axes, obsm_key: str) -> None:
    """Scanpy look: no ticks, axis labels like ``UMAP1`` / ``UMAP2``."""
    stem = basis_label(obsm_key)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel(f"{stem}1")
    ax.set_ylabel(f"{stem}2")


def default_point_size(n_obs: int) -> float:
    """Scanpy's ``120000 / n_obs``, capped at 30 so small objects do not turn into blobs."""
    return float(min(120000 / max(n_obs, 1), 30.0))


def embedding_2d(adata: AnnData, basis: str) -> tuple[np.ndarray, str]:
    """The first two dimensions of an embedding and its obsm key (``basis`` may be ``umap`` or ``X_umap``)."""
    from .._validate import embedding, resolve_basis

    obsm_key = resolve_basis(adata, basis)
    values = embedding(adata, obsm_key)
    if values.shape[1] < 2:
        raise ValueError(
            f"adata.obsm[{obsm_key!r}] has {values.shape[1]} dimension; plotting needs at least 2. "
            "Pass `basis=` with a 2-d embedding such as 'X_umap'."
        )
    return values[:, :2], obsm_key


#: groups with fewer cells than this share of the cells are not named (their names would crowd the panel)
LABEL_MIN_SHARE = 0.01
#: bins per axis of the grid that places group names
LABEL_GRID = 12


def draw_group_labels(ax: Axes, coords: np.ndarray, groups: pd.Series) -> None:
    """Write each group's name where most of its cells lie, white-outlined so that it reads over any colour.

    The place is the median of the group's cells in the cell of a ``LABEL_GRID`` x ``LABEL_GRID`` grid
    over the embedding that holds most of them, so that a group spread over several islands is named on
    its largest one, not in the empty space between them. Groups holding less than ``LABEL_MIN_SHARE``
    of the cells, and cells without a group, are left out.
    """
    from matplotlib import patheffects

    values = groups.to_numpy()
    present = np.asarray(pd.notna(values), dtype=bool)
    text = np.where(present, values.astype(str), "")
    names, counts = np.unique(text[present], return_counts=True)
    bins = [np.linspace(coords[:, d].min(), coords[:, d].max() + 1e-9, LABEL_GRID + 1) for d in range(2)]
    cell_bin = np.stack([np.clip(np.digitize(coords[:, d], bins[d]) - 1, 0, LABEL_GRID - 1) for d in range(2)], 1)
    flat = cell_bin[:, 0] * LABEL_GRID + cell_bin[:, 1]
    outline = [patheffects.withStroke(linewidth=2.5, foreground="white")]
    span = np.ptp(coords, axis=0) + 1e-12
    placed: list[np.ndarray] = []
    for name, count in sorted(zip(names, counts, strict=True), key=lambda nc: -nc[1]):
        if count < LABEL_MIN_SHARE * len(values):
            continue
        mine = np.flatnonzero(text == name)
        densest = np.bincount(flat[mine], minlength=LABEL_GRID**2).argmax()
        at = np.median(coords[mine[flat[mine] == densest]], axis=0)
        placed.append(_clear_of(at, placed, span, width=len(name)))
        ax.text(*placed[-1], name, fontsize=8, ha="center", va="center", path_effects=outline, zorder=5)


def _clear_of(at: np.ndarray, placed: list[np.ndarray], span: np.ndarray, *, width: int) -> np.ndarray:
    """``at`` moved down, a line at a time, until it no longer sits on an earlier label (in data units:
    a line is 5% of the y span, a character 1.2% of the x span)."""
    at = at.copy()
    for _ in range(10):
        if all(abs(at[1] - p[1]) >= 0.05 * span[1] or abs(at[0] - p[0]) >= 0.012 * span[0] * width for p in placed):
            break
        at[1] -= 0.05 * span[1]
    return at
