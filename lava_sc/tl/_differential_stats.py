"""The tests of ``tl.differential``: Welch's t-test (or TREAT against ``min_effect``) per module, for
every ``within`` group and condition against the reference, gathered into the tidy result table."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from .._core.stats import benjamini_hochberg as bh
from .._core.stats import welch_treat


def comparison_rows(
    units, groups, levels, reference: str, names, min_cells: int, replicate, min_effect: float
) -> list[dict]:
    """Test rows for every group and every level against the reference."""
    r = levels.index(reference)
    rows = []
    for g, group in enumerate(groups):
        for c, level in enumerate(levels):
            if c != r:
                rows += compare(units, g, c, r, names, min_cells, replicate, (group, level), min_effect)
    return rows


def compare(units, g: int, c: int, r: int, names, min_cells: int, replicate, labels, min_effect) -> list[dict]:
    """Rows for one group and one condition against the reference: Welch's t-test per module."""
    in_group = units["group"] == g
    notes = []
    if replicate is None:
        sides = [np.flatnonzero(in_group & (units["condition"] == k)) for k in (c, r)]
        n_x, n_y = len(sides[0]), len(sides[1])
        smoother = units.get("smoother")
        if smoother is None:
            n_eff = (float(n_x), float(n_y))
        else:
            n_eff = tuple(smoother.n_eff(side) for side in sides)
        testable = min(n_x, n_y) >= max(min_cells, 2)
        if not testable:
            notes.append(f"not tested: fewer than {max(min_cells, 2)} cells on a side ({n_x} vs {n_y})")
        elif min(n_eff) < 2 - 1e-9:  # (rounding: exactly 2 units is testable)
            testable = False
            notes.append(
                "not tested: the localities covering the cells allow fewer than 2 independent units on a side "
                f"(n_eff {n_eff[0]:.2f} vs {n_eff[1]:.2f})"
            )
    else:
        large = units["n_cells"] >= min_cells
        sides = [np.flatnonzero(in_group & large & (units["condition"] == k)) for k in (c, r)]
        n_x, n_y = len(sides[0]), len(sides[1])
        testable = min(n_x, n_y) >= 2
        if not testable:
            notes.append(
                f"not tested: fewer than 2 replicates (obs[{replicate!r}]) with >= {min_cells} cells on a side "
                f"({n_x} vs {n_y})"
            )
        dropped = int((in_group & ~large & np.isin(units["condition"], (c, r))).sum())
        if dropped:
            notes.append(f"{dropped} {replicate} group(s) with < {min_cells} cells dropped")
        n_eff = (float(n_x), float(n_y))  # replicates are independent units
    res = welch(units["values"][sides[0]], units["values"][sides[1]], min_effect, n_eff)
    if not testable:
        res["statistic"][:] = np.nan
        res["pvalue"][:] = np.nan
    common = {
        "group": labels[0],
        "condition": labels[1],
        "unit": "cells" if replicate is None else replicate,
        "n_condition": n_x,
        "n_reference": n_y,
        "n_cells_condition": int(units["n_cells"][sides[0]].sum()),
        "n_cells_reference": int(units["n_cells"][sides[1]].sum()),
        "n_eff_condition": n_eff[0],
        "n_eff_reference": n_eff[1],
    }
    rows = []
    for i, name in enumerate(names):
        row = {"module": name, **common, **{k: float(v[i]) for k, v in res.items()}}
        flat = []
        if testable and not np.isfinite(row["pvalue"]):
            row["statistic"] = np.nan
            flat = ["not tested: no variance within either side"]
        row["note"] = "; ".join(flat + notes)
        rows.append(row)
    return rows


def result_table(rows: list[dict], names, within: str | None, reference: str, measure: str) -> pd.DataFrame:
    """The tidy result: module, <within>, condition, reference, ..., sorted by module then group."""
    table = pd.DataFrame(rows)
    table["reference"] = reference
    table["measure"] = measure
    table["qvalue"] = bh(table["pvalue"].to_numpy())
    group = "group" if within is None else within
    table = table.rename(columns={"group": group})[["module", group, *RESULT_COLUMNS]]
    order = {name: i for i, name in enumerate(names)}
    table = table.sort_values("module", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)
    for column in ("module", group, "condition", "reference", "unit", "measure", "note"):
        table[column] = table[column].astype(str).astype(object)  # plain strings: h5ad and zarr safe
    for column in ("n_condition", "n_reference", "n_cells_condition", "n_cells_reference"):
        table[column] = table[column].astype(np.int64)
    for column in ("n_eff_condition", "n_eff_reference"):
        table[column] = table[column].astype(np.float64)
    return table


def welch(x: np.ndarray, y: np.ndarray, min_effect: float = 0.0, n_eff=None) -> dict[str, np.ndarray]:
    """Means, effects and Welch's t-test (of ``|effect| <= min_effect``) per column of ``x`` (condition)
    and ``y`` (reference), with ``n_eff`` (condition, reference) independent units (default: the rows)."""
    n_x, n_y, m = len(x), len(y), x.shape[1]

    def nan():
        return np.full(m, np.nan)

    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean_x = x.mean(axis=0) if n_x else nan()
        mean_y = y.mean(axis=0) if n_y else nan()
        effect = mean_x - mean_y
        if n_x and n_y and n_x + n_y > 2:
            ss = ((x - mean_x) ** 2).sum(axis=0) + ((y - mean_y) ** 2).sum(axis=0)
            sd = np.sqrt(ss / (n_x + n_y - 2))
            standardised = np.where(sd > 0, effect / np.where(sd > 0, sd, 1.0), np.nan)
        else:
            standardised = nan()
        if min(n_x, n_y) >= 2:
            statistic, pvalue = welch_treat(x, y, min_effect, n_eff=n_eff)
        else:
            statistic, pvalue = nan(), nan()
    return {
        "mean_condition": mean_x,
        "mean_reference": mean_y,
        "effect": effect,
        "effect_standardised": standardised,
        "statistic": statistic,
        "pvalue": pvalue,
    }


#: columns of the result after ``module`` and the ``within`` column
RESULT_COLUMNS = (
    "condition",
    "reference",
    "unit",
    "measure",
    "n_condition",
    "n_reference",
    "n_cells_condition",
    "n_cells_reference",
    "n_eff_condition",
    "n_eff_reference",
    "mean_condition",
    "mean_reference",
    "effect",
    "effect_standardised",
    "statistic",
    "pvalue",
    "qvalue",
    "note",
)
