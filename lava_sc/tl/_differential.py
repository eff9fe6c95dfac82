from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData
from scanpy import logging as logg
from scipy import stats

from .._keys import DEFAULT_KEY, Keys, module_names
from .._utils import log_added, store, store_params
from .._validate import check_adata, check_int, check_key

#: level names taken as the reference when ``reference=None`` (case-insensitive, in this order)
REFERENCE_NAMES = ("reference", "control", "healthy", "normal")

#: columns of the result after ``module`` and the ``within`` column
RESULT_COLUMNS = (
    "condition",
    "reference",
    "unit",
    "n_condition",
    "n_reference",
    "n_cells_condition",
    "n_cells_reference",
    "mean_condition",
    "mean_reference",
    "effect",
    "effect_standardised",
    "statistic",
    "pvalue",
    "qvalue",
    "note",
)


def differential(
    adata: AnnData,
    groupby: str = "condition",
    *,
    reference: str | None = None,
    replicate: str | None = "donor",
    within: str | None = "cell_type",
    key: str = DEFAULT_KEY,
    min_cells: int = 10,
    copy: bool = False,
) -> AnnData | None:
    """Differential module activity between conditions, with replicates (donors) as the unit.

    For every module and every group of ``within`` (e.g. each cell type), each level of ``groupby``
    is compared with ``reference``. The activity of the cells is first averaged per replicate and
    group (a "pseudobulk" mean per donor and cell type; replicate-groups with fewer than
    ``min_cells`` cells are dropped), then the replicate means of a condition are compared with
    those of the reference by Welch's t-test. Cells are never treated as replicates unless
    ``replicate=None``: cells of one donor share that donor's biology, so a test on cells counts
    donor-to-donor variation as a condition effect and gives far too small p-values.

    Parameters
    ----------
    adata
        Annotated data matrix with ``obsm[f"{key}_activity"]`` from :func:`lava_sc.tl.modules`.
    groupby
        Column of ``adata.obs`` with the conditions (e.g. ``"condition"`` with levels
        ``reference``, ``AKI``, ``CKD``).
    reference
        Level of ``groupby`` every other level is compared with. Default: a level named
        ``reference``, ``control``, ``healthy`` or ``normal`` (case-insensitive, in this order) if
        there is one, else the first level (categories order, or sorted values).
    replicate
        Column of ``adata.obs`` with the biological replicate (e.g. ``"donor"``, ``"sample"``).
        Each replicate must belong to a single ``groupby`` level (replicates nested in
        conditions). ``None`` treats cells as independent replicates: p-values are then
        anti-conservative (a warning is logged) and ``unit`` is ``"cells"``.
    within
        Column of ``adata.obs`` to test separately in each group of (e.g. ``"cell_type"``);
        ``None`` tests all cells together (group ``"all"``).
    key
        Key of the LAVA results in ``uns`` / ``obsm``.
    min_cells
        Replicate-groups (a donor's cells of one cell type) with fewer cells are dropped. With
        ``replicate=None``, a condition with fewer cells in a group is not tested there.
    copy
        Return a modified copy instead of writing into ``adata``.

    Returns
    -------
    ``None`` or the copy. Writes ``uns[key]["differential"]``, a DataFrame with one row per module,
    ``within`` group and non-reference condition, columns in this order:

    ``module``
        Module name (``M1``, ...).
    ``<within>``
        The group, in a column named after ``within`` (``"group"`` with value ``"all"`` when
        ``within=None``).
    ``condition``, ``reference``
        The level tested and the level it is compared with.
    ``unit``
        The unit of replication: the ``replicate`` column name (e.g. ``"donor"``) or ``"cells"``.
    ``n_condition``, ``n_reference``
        Replicates (or cells) on each side after dropping those with fewer than ``min_cells`` cells.
    ``n_cells_condition``, ``n_cells_reference``
        Cells on each side in the replicates used.
    ``mean_condition``, ``mean_reference``
        Mean of the replicate means (or of the cells) on each side.
    ``effect``
        ``mean_condition - mean_reference``.
    ``effect_standardised``
        ``effect`` divided by the pooled standard deviation of the replicate means (Cohen's d).
    ``statistic``, ``pvalue``
        Welch's t statistic and two-sided p-value; NaN where the test is not possible (fewer than
        2 replicates on a side, or no variance), with the reason in ``note``.
    ``qvalue``
        Benjamini–Hochberg adjusted p-value over all rows with a finite p-value.
    ``note``
        Empty, or why a row was not tested and how many replicates were dropped.

    Parameters are recorded in ``uns[key]["params"]["differential"]``.

    Examples
    --------
    >>> import lava_sc as lv
    >>> lv.tl.modules(adata)
    >>> lv.tl.differential(adata, "condition", replicate="donor", within="cell_type")
    >>> lv.get.differential(adata, q_max=0.05)
    """
    check_adata(adata)
    key = check_key(key)
    min_cells = check_int("min_cells", min_cells, low=1)
    names, act = _activity(adata, key)
    _check_columns(adata, groupby, replicate, within)
    cond_codes, levels = _labels(adata, groupby)
    reference = _reference(levels, reference, groupby)
    if replicate is None:
        rep_codes = None
        logg.warning(
            "differential: `replicate=None`, so cells are treated as independent replicates. Cells of one "
            "donor are not independent: p-values are anti-conservative. Pass `replicate=` (e.g. 'donor')."
        )
    else:
        rep_codes, rep_levels = _labels(adata, replicate)
        _check_nested(cond_codes, levels, rep_codes, rep_levels, groupby, replicate)
    if within is None:
        group_codes, groups = np.zeros(adata.n_obs, dtype=np.int64), ["all"]
    else:
        group_codes, groups = _labels(adata, within)

    adata = adata.copy() if copy else adata
    start = logg.info(f"testing differential LAVA module activity ({groupby!r} vs {reference!r})")
    units = _units(act, cond_codes, group_codes, rep_codes)
    rows = []
    for g, group in enumerate(groups):
        for c, level in enumerate(levels):
            if level != reference:
                rows += _compare(units, g, c, levels.index(reference), names, min_cells, replicate, (group, level))
    table = _table(rows, names, within, reference)
    store(adata, key, **{Keys.differential: table})
    store_params(
        adata,
        key,
        Keys.differential,
        dict(groupby=groupby, reference=reference, replicate=replicate, within=within, min_cells=min_cells),
    )
    log_added(
        f"{len(table)} tests ({int(np.isfinite(table['pvalue']).sum())} with a p-value)",
        start,
        [f"'{key}': '{Keys.differential}', module activity per condition vs {reference!r} (adata.uns)"],
    )
    return adata if copy else None


def _activity(adata: AnnData, key: str) -> tuple[list[str], np.ndarray]:
    """Module names and the cells x modules activity as a finite float64 array."""
    keys = Keys(key)
    if keys.obsm_activity not in adata.obsm:
        raise KeyError(
            f"No LAVA module activity (adata.obsm[{keys.obsm_activity!r}]) under key {key!r}; "
            f"run lava_sc.tl.modules(adata, key={key!r}) first."
        )
    values = adata.obsm[keys.obsm_activity]
    if isinstance(values, pd.DataFrame):
        names = [str(c) for c in values.columns]
        values = values.to_numpy()
    else:
        values = values.toarray() if sp.issparse(values) else np.asarray(values)
        stored = adata.uns.get(key, {}).get(Keys.locality_activity)
        if isinstance(stored, pd.DataFrame) and stored.shape[1] == values.shape[1]:
            names = [str(c) for c in stored.columns]
        else:
            names = module_names(values.shape[1])
    if values.ndim != 2 or values.dtype.kind not in "biuf":
        raise TypeError(f"adata.obsm[{keys.obsm_activity!r}] must be a numeric cells x modules matrix.")
    if values.shape[1] == 0:
        raise ValueError(
            f"LAVA found no modules under key {key!r}, so there is nothing to test; rerun lava_sc.tl.modules "
            "with a lower `min_support`/`min_genes` or a higher `resolution`."
        )
    values = values.astype(np.float64)
    if not np.isfinite(values).all():
        raise ValueError(
            f"adata.obsm[{keys.obsm_activity!r}] contains NaN or inf; rerun lava_sc.tl.modules(adata, key={key!r})."
        )
    return names, values


def _check_columns(adata: AnnData, groupby, replicate, within) -> None:
    given = {"groupby": groupby, "replicate": replicate, "within": within}
    for name, column in given.items():
        if column is None and name != "groupby":
            continue
        if not isinstance(column, str):
            hint = "" if name == "groupby" else " or None"
            raise TypeError(f"`{name}` must be the name of a column of adata.obs{hint}, got {column!r}.")
        if column not in adata.obs.columns:
            hint = "" if name == "groupby" else f", or `{name}=None`"
            raise KeyError(
                f"Column {column!r} (`{name}`) not found in adata.obs (available: {list(adata.obs.columns)}); "
                f"pass `{name}=` with an existing column{hint}."
            )
    used = [c for c in given.values() if c is not None]
    if len(set(used)) < len(used):
        raise ValueError(f"`groupby`, `replicate` and `within` must be different columns, got {given}.")
    if within in ("module", *RESULT_COLUMNS):
        raise ValueError(
            f"`within` column {within!r} clashes with a column of the result table; copy it to another name "
            f"(e.g. adata.obs['{within}_group'] = adata.obs[{within!r}]) and pass that."
        )


def _labels(adata: AnnData, column: str) -> tuple[np.ndarray, list[str]]:
    """Integer codes of an obs column and its observed levels as strings (categories order, else sorted)."""
    values = adata.obs[column]
    missing = int(values.isna().sum())
    if missing:
        raise ValueError(
            f"obs[{column!r}] has no value (NaN) for {missing} cells; give them a level or drop them first "
            f"(adata = adata[adata.obs[{column!r}].notna()].copy())."
        )
    cat = pd.Categorical(values).remove_unused_categories()
    return cat.codes.astype(np.int64), [str(c) for c in cat.categories]


def _reference(levels: list[str], reference, groupby: str) -> str:
    if len(levels) < 2:
        raise ValueError(
            f"obs[{groupby!r}] has a single level {levels}; differential activity needs at least two conditions."
        )
    if reference is not None:
        if str(reference) not in levels:
            raise ValueError(
                f"Reference {reference!r} is not a level of obs[{groupby!r}] (levels: {levels}); "
                "pass one of them as `reference=`."
            )
        return str(reference)
    lower = {level.lower(): level for level in reversed(levels)}
    for name in REFERENCE_NAMES:
        if name in lower:
            logg.info(f"    using {lower[name]!r} as the reference level of {groupby!r}")
            return lower[name]
    logg.warning(
        f"differential: no level of {groupby!r} is named {' / '.join(REFERENCE_NAMES)}; using the first level "
        f"{levels[0]!r} as the reference. Pass `reference=` to choose another."
    )
    return levels[0]


def _check_nested(cond_codes, levels, rep_codes, rep_levels, groupby: str, replicate: str) -> None:
    """Every replicate must have all its cells in one condition."""
    pairs = np.unique(np.stack([rep_codes, cond_codes], axis=1), axis=0)
    n_conditions = np.bincount(pairs[:, 0], minlength=len(rep_levels))
    bad = np.flatnonzero(n_conditions > 1)
    if len(bad):
        examples = {rep_levels[r]: [levels[c] for c in pairs[pairs[:, 0] == r, 1]] for r in bad[:3]}
        raise ValueError(
            f"Replicates must be nested in conditions, but {len(bad)} level(s) of obs[{replicate!r}] have cells "
            f"in more than one level of obs[{groupby!r}] (e.g. {examples}). Fix the annotation; if these are "
            f"separate samples, give them separate names (e.g. obs[{replicate!r}] + '_' + obs[{groupby!r}])."
        )


def _units(act: np.ndarray, cond_codes, group_codes, rep_codes) -> dict[str, np.ndarray]:
    """Mean activity per (group, replicate), or the cells themselves when ``rep_codes`` is None."""
    if rep_codes is None:
        ones = np.ones(len(act), dtype=np.int64)
        return {"group": group_codes, "condition": cond_codes, "n_cells": ones, "values": act}
    n_rep = int(rep_codes.max()) + 1
    unit_of = group_codes * n_rep + rep_codes
    ids, inverse, counts = np.unique(unit_of, return_inverse=True, return_counts=True)
    indicator = sp.csr_matrix((np.ones(len(act)), (inverse, np.arange(len(act)))), shape=(len(ids), len(act)))
    condition = np.zeros(n_rep, dtype=np.int64)
    condition[rep_codes] = cond_codes
    return {
        "group": ids // n_rep,
        "condition": condition[ids % n_rep],
        "n_cells": counts,
        "values": np.asarray(indicator @ act) / counts[:, None],
    }


def _compare(units, g: int, c: int, r: int, names, min_cells: int, replicate, labels) -> list[dict]:
    """Rows for one group and one condition against the reference: Welch's t-test per module."""
    in_group = units["group"] == g
    notes = []
    if replicate is None:
        sides = [np.flatnonzero(in_group & (units["condition"] == k)) for k in (c, r)]
        n_x, n_y = len(sides[0]), len(sides[1])
        testable = min(n_x, n_y) >= max(min_cells, 2)
        if not testable:
            notes.append(f"not tested: fewer than {max(min_cells, 2)} cells on a side ({n_x} vs {n_y})")
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
    res = _welch(units["values"][sides[0]], units["values"][sides[1]])
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


def _table(rows: list[dict], names, within: str | None, reference: str) -> pd.DataFrame:
    """The tidy result: module, <within>, condition, reference, ..., sorted by module then group."""
    table = pd.DataFrame(rows)
    table["reference"] = reference
    table["qvalue"] = bh(table["pvalue"].to_numpy())
    group = "group" if within is None else within
    table = table.rename(columns={"group": group})[["module", group, *RESULT_COLUMNS]]
    order = {name: i for i, name in enumerate(names)}
    table = table.sort_values("module", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)
    for column in ("module", group, "condition", "reference", "unit", "note"):
        table[column] = table[column].astype(str).astype(object)  # plain strings: h5ad and zarr safe
    for column in ("n_condition", "n_reference", "n_cells_condition", "n_cells_reference"):
        table[column] = table[column].astype(np.int64)
    return table


def bh(pvalues: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg q-values over the finite p-values; NaN elsewhere."""
    pvalues = np.asarray(pvalues, dtype=np.float64)
    q = np.full(pvalues.shape, np.nan)
    finite = np.isfinite(pvalues)
    if finite.any():
        q[finite] = stats.false_discovery_control(pvalues[finite], method="bh")
    return q


def _welch(x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """Means, effects and Welch's t-test per column of ``x`` (condition) and ``y`` (reference)."""
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
            res = stats.ttest_ind(x, y, axis=0, equal_var=False)
            statistic, pvalue = np.asarray(res.statistic, float), np.asarray(res.pvalue, float)
            flat = (x.var(axis=0) == 0) & (y.var(axis=0) == 0)  # scipy would give t = inf, p = 0
            statistic[flat], pvalue[flat] = np.nan, np.nan
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
