"""The attribution loop shared by COCOA and label-free importance: explained cells in chunks, the
results they write (``uns[key_added]``, ``var``/``obs`` columns, optional layer), and their cell selections."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from anndata import AnnData

from .._adata import cell_mask as any_cell_mask
from .._adata import dense_block
from .._core.attribution import attribute
from .._keys import DEFAULT_KEY
from .._utils import progress
from .._validate import check_float, check_key
from ._encoder import Setup, chunk_size

#: entries of ``uns[key_added]`` written by the attribution tools
GENES = "genes"
GROUPS = "groups"
COMPLETENESS = "completeness"


def cell_mask(adata: AnnData, spec, what: str) -> tuple[np.ndarray, str]:
    """A boolean mask over cells and a short description: a module region dict, or any selection of
    :func:`lava_sc._adata.cell_mask`."""
    if isinstance(spec, Mapping):
        return module_region(adata, spec, what)
    return any_cell_mask(adata, spec, what)


def module_region(adata: AnnData, spec: Mapping, what: str) -> tuple[np.ndarray, str]:
    """Cells whose LAVA activity of ``spec["module"]`` is above the ``spec["quantile"]`` quantile."""
    from ..get._activity import activity

    unknown = set(spec) - {"module", "key", "quantile"}
    if "module" not in spec or unknown:
        raise TypeError(
            f"`{what}` as a dict must be {{'module': 'M1', 'key': 'lava', 'quantile': 0.9}} (key and quantile "
            f"optional); got keys {sorted(map(str, spec))}."
        )
    module = spec["module"]
    key = check_key(spec.get("key", DEFAULT_KEY))
    q = check_float("quantile", spec.get("quantile", 0.9), low=0.0, high=1.0)
    if q >= 1.0:
        raise ValueError("`quantile` of a module region must be below 1 (no cell is above the maximum).")
    frame = activity(adata, key)  # KeyError naming tl.modules when missing
    if module not in frame.columns:
        raise KeyError(f"`{what}`: unknown module {module!r} under key {key!r}; available: {list(frame.columns)}.")
    values = frame[module].to_numpy(dtype=np.float64)
    finite = np.isfinite(values)
    if not finite.any():
        raise ValueError(f"`{what}`: module {module!r} has no finite activity; choose another module.")
    threshold = float(np.quantile(values[finite], q))
    mask = finite & (values > threshold)
    return mask, f"module {module} (key {key!r}) activity > {threshold:.4g} (quantile {q:g})"


@dataclass
class Result:
    total: np.ndarray  # per attributed gene, sum over explained cells
    total_abs: np.ndarray
    target_x: np.ndarray  # per explained cell
    target_b: np.ndarray
    sums: np.ndarray  # per explained cell, sum of its attributions
    cells: np.ndarray | None  # explained cells x attributed genes (float32), with store_cells
    group_total: np.ndarray | None  # groups x attributed genes


def run_attribution(
    setup: Setup,
    explained: np.ndarray,
    target_for,
    *,
    method: str,
    n_steps: int,
    store_cells: bool,
    group_codes: np.ndarray | None = None,
    n_groups: int = 0,
) -> Result:
    """Attribute the explained cells in chunks; ``target_for(X)`` gives each chunk's target and its rows."""
    g = len(setup.genes)
    total, total_abs = np.zeros(g), np.zeros(g)
    target_x, target_b, sums = (np.empty(len(explained)) for _ in range(3))
    cells = np.empty((len(explained), g), dtype=np.float32) if store_cells else None
    group_total = np.zeros((n_groups, g)) if group_codes is not None else None
    size = chunk_size(setup, method, n_steps)
    with progress(len(explained), "attribution") as bar:
        for s in range(0, len(explained), size):
            sl = slice(s, min(len(explained), s + size))
            X = dense_block(setup.values, explained[sl])
            target, rows = target_for(X)
            attr, t_x, t_b = attribute(
                setup.encoder, target, X, setup.baseline, rows, setup.genes, method=method, n_steps=n_steps
            )
            total += attr.sum(axis=0)
            total_abs += np.abs(attr).sum(axis=0)
            target_x[sl], target_b[sl], sums[sl] = t_x, t_b, attr.sum(axis=1)
            if cells is not None:
                cells[sl] = attr
            if group_total is not None:
                codes = group_codes[sl]
                ok = codes >= 0
                np.add.at(group_total, codes[ok], attr[ok])
            bar.update(sl.stop - sl.start)
    return Result(total, total_abs, target_x, target_b, sums, cells, group_total)


def gene_table(names: np.ndarray, mean: np.ndarray, mean_abs: np.ndarray) -> pd.DataFrame:
    """``gene, mean_attribution, mean_abs_attribution, rank`` sorted by rank (1 = largest mean attribution)."""
    order = np.argsort(-mean, kind="stable")
    rank = np.empty(len(mean), dtype=np.int64)
    rank[order] = np.arange(1, len(mean) + 1)
    table = pd.DataFrame(
        {"gene": np.asarray(names, dtype=str), "mean_attribution": mean, "mean_abs_attribution": mean_abs, "rank": rank}
    )
    return table.iloc[order].reset_index(drop=True)


def write_results(
    adata: AnnData, key_added: str, setup: Setup, explained: np.ndarray, result: Result, *, store_cells: bool
) -> None:
    n = len(explained)
    names = setup.var_names[setup.genes].to_numpy(dtype=str)
    mean = result.total / n
    gap = result.sums - (result.target_x - result.target_b)
    adata.uns[key_added] = {
        GENES: gene_table(names, mean, result.total_abs / n),
        COMPLETENESS: {
            "mean_target": float(result.target_x.mean()),
            "mean_target_baseline": float(result.target_b.mean()),
            "mean_attribution_sum": float(result.sums.mean()),
            "max_abs_gap": float(np.abs(gap).max()),
        },
    }
    column = np.full(adata.n_vars, np.nan)
    column[setup.genes] = mean
    adata.var[f"{key_added}_attribution"] = column
    target = np.full(adata.n_obs, np.nan)
    target[explained] = result.target_x
    adata.obs[f"{key_added}_target"] = target
    if store_cells:
        layer = np.zeros((adata.n_obs, adata.n_vars), dtype=np.float32)
        layer[np.ix_(explained, setup.genes)] = result.cells
        adata.layers[key_added] = layer


def added_lines(key_added: str, store_cells: bool) -> list[str]:
    lines = [
        f"'{key_added}': 'genes', 'completeness', 'params' (adata.uns)",
        f"'{key_added}_attribution', mean attribution per gene (adata.var)",
        f"'{key_added}_target', explanation target of the explained cells (adata.obs)",
    ]
    if store_cells:
        lines.append(f"'{key_added}', attributions per cell and gene (adata.layers)")
    return lines
