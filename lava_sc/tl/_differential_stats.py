"""The tests of ``tl.differential``: Welch's t-test (or TREAT against ``min_effect``) per module, for
every ``within`` group and condition against the reference, gathered into the tidy result table."""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
import pandas as pd

from .._core.stats import benjamini_hochberg as bh
from .._core.stats import variance_priors, welch_treat


class Side(NamedTuple):
    """The units of one group and one condition that a test uses, and how many independent units they are."""

    units: np.ndarray
    n_eff: float
    dropped: int  # replicate-groups left out for having fewer than min_cells cells


def comparison_rows(
    units,
    groups,
    levels,
    reference: str,
    names,
    min_cells: int,
    replicate,
    min_effect: float,
    moderate: bool = True,
) -> tuple[list[dict], np.ndarray | None]:
    """Test rows for every group and every level against the reference, and the prior degrees of freedom
    each side's variances borrowed (sides x modules; None without moderation)."""
    r = levels.index(reference)
    sides = {(g, c): side_of(units, g, c, min_cells, replicate) for g in range(len(groups)) for c in range(len(levels))}
    priors = side_priors(units["values"], sides, len(groups), len(levels)) if moderate else None
    rows = []
    for g, group in enumerate(groups):
        for c, level in enumerate(levels):
            if c != r:
                pair = (sides[g, c], sides[g, r])
                prior = None if priors is None else (priors[g, c], priors[g, r])
                rows += compare(units, pair, names, min_cells, replicate, (group, level), min_effect, prior)
    borrowed = None if priors is None else np.array([p[1] for key, p in priors.items() if len(sides[key].units)])
    return rows, borrowed


def side_of(units, g: int, c: int, min_cells: int, replicate) -> Side:
    """The units of group ``g`` in condition ``c``: its cells, or its replicates with >= ``min_cells`` cells."""
    here = (units["group"] == g) & (units["condition"] == c)
    if replicate is None:
        cells = np.flatnonzero(here)
        smoother = units.get("smoother")
        return Side(cells, float(len(cells)) if smoother is None else smoother.n_eff(cells), 0)
    large = units["n_cells"] >= min_cells
    kept = np.flatnonzero(here & large)
    return Side(kept, float(len(kept)), int((here & ~large).sum()))  # replicates are independent units


def side_priors(values: np.ndarray, sides: dict, n_groups: int, n_levels: int) -> dict:
    """Each side's variance prior per module, ``(g, c) -> (s0^2, d0, D)``, from the same module's variances
    in the other conditions of its group (:func:`~lava_sc._core.stats.variance_priors`; ``ddof=1`` on
    ``n_eff`` units, as the test), with ``D`` the degrees of freedom of all of them together, the most a
    test in the group can have."""
    m = values.shape[1]
    variance, df = np.full((n_groups, m, n_levels), np.nan), np.zeros((n_groups, m, n_levels))
    for (g, c), side in sides.items():
        if len(side.units) >= 2 and side.n_eff >= 2 - 1e-9:  # the sides a test can use
            variance[g, :, c] = values[side.units].var(axis=0) * side.n_eff / (side.n_eff - 1)
            df[g, :, c] = side.n_eff - 1
    s0, d0 = (
        a.reshape(n_groups, m, n_levels)
        for a in variance_priors(variance.reshape(-1, n_levels), df.reshape(-1, n_levels))
    )
    total = np.where(np.isfinite(variance) & (variance > 0), df, 0.0).sum(axis=2)  # groups x modules
    return {(g, c): (s0[g, :, c], d0[g, :, c], total[g]) for (g, c) in sides}


def compare(units, sides, names, min_cells: int, replicate, labels, min_effect, prior) -> list[dict]:
    """Rows for one group and one condition against the reference: the (moderated) Welch test per module."""
    (x, y), notes = sides, []
    n_x, n_y = len(x.units), len(y.units)
    n_eff = (x.n_eff, y.n_eff)
    if replicate is None:
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
        testable = min(n_x, n_y) >= 2
        if not testable:
            notes.append(
                f"not tested: fewer than 2 replicates (obs[{replicate!r}]) with >= {min_cells} cells on a side "
                f"({n_x} vs {n_y})"
            )
        if x.dropped + y.dropped:
            notes.append(f"{x.dropped + y.dropped} {replicate} group(s) with < {min_cells} cells dropped")
    res = welch(units["values"][x.units], units["values"][y.units], min_effect, n_eff, prior)
    if not testable:
        res["statistic"][:] = np.nan
        res["pvalue"][:] = np.nan
    common = {
        "group": labels[0],
        "condition": labels[1],
        "unit": "cells" if replicate is None else replicate,
        "n_condition": n_x,
        "n_reference": n_y,
        "n_cells_condition": int(units["n_cells"][x.units].sum()),
        "n_cells_reference": int(units["n_cells"][y.units].sum()),
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


def welch(x: np.ndarray, y: np.ndarray, min_effect: float = 0.0, n_eff=None, prior=None) -> dict[str, np.ndarray]:
    """Means, effects and Welch's t-test (of ``|effect| <= min_effect``) per column of ``x`` (condition)
    and ``y`` (reference), with ``n_eff`` (condition, reference) independent units (default: the rows)
    and the variances moderated towards ``prior`` when given: ``(s0^2, d0, D)`` of each side, the
    group's ``D`` capping the degrees of freedom (:func:`side_priors`)."""
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
            moderation = {} if prior is None else {"prior": (prior[0][:2], prior[1][:2]), "max_df": prior[0][2]}
            statistic, pvalue = welch_treat(x, y, min_effect, n_eff=n_eff, **moderation)
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
