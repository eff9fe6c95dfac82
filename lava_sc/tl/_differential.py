from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData
from scanpy import logging as logg

from .._core.correlations import gene_matrix
from .._core.distributed import gather_columns, is_dask
from .._core.score import module_set_activity
from .._core.stats import benjamini_hochberg as bh
from .._core.stats import welch_treat
from .._keys import DEFAULT_KEY, Keys, module_names
from .._utils import log_added, progress, store, store_params
from .._validate import check_adata, check_choice, check_float, check_int, check_key, check_obs_column, expression
from ._correlations import covariate_matrix
from ._score import ModulePairs, pairs_from_table

#: level names taken as the reference when ``reference=None`` (case-insensitive, in this order)
REFERENCE_NAMES = ("reference", "control", "healthy", "normal")

#: what is compared per replicate (see :func:`differential`)
STATISTICS = ("correlation", "activity")

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
    statistic: str | None = None,
    key: str = DEFAULT_KEY,
    min_cells: int = 10,
    min_effect: float = 0.0,
    copy: bool = False,
) -> AnnData | None:
    """Differential module activity between conditions, with replicates (donors) as the unit.

    For every module and every group of ``within`` (e.g. each cell type), each level of ``groupby``
    is compared with ``reference``. Each replicate (donor) gets one value per group, computed as set
    by ``statistic`` (replicate-groups with fewer than ``min_cells`` cells are dropped), and the
    replicate values of a condition are compared with those of the reference by Welch's t-test.
    Cells are never treated as replicates unless ``replicate=None``: cells of one donor share that
    donor's biology, so a test on cells counts donor-to-donor variation as a condition effect and
    gives far too small p-values.

    Parameters
    ----------
    adata
        Annotated data matrix with LAVA modules from :func:`lava_sc.tl.modules` (``uns[key]["modules"]``
        and the expression LAVA used, for ``statistic="correlation"``; ``obsm[f"{key}_activity"]``
        for ``statistic="activity"``).
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
        anti-conservative (a warning is logged), ``unit`` is ``"cells"`` and only
        ``statistic="activity"`` is possible.
    within
        Column of ``adata.obs`` to test separately in each group of (e.g. ``"cell_type"``);
        ``None`` tests all cells together (group ``"all"``).
    statistic
        What each replicate contributes per module and group:

        ``"correlation"`` (default with ``replicate``)
            The module's activity recomputed from that replicate's cells in that group alone: the
            weighted mean Pearson ``r`` of the module's gene pairs (weights of
            ``uns[key]["modules"]``), a pair counting as 0 where one of its genes is detected in fewer
            than ``min_detected`` of the cells — the locality activity of :func:`~lava_sc.tl.modules`,
            with the donor's cells of one cell type as the "locality" (same expression layer,
            ``min_detected`` and ``partial_out`` as recorded in ``uns[key]["params"]``). Each value
            comes from one donor's cells only, so donors are independent replicates and the test
            keeps its nominal false-positive rate. ``effect`` is in correlation units.
        ``"activity"``
            The mean of the smoothed cell activity ``obsm[f"{key}_activity"]`` over the replicate's
            cells. Faster (no expression is read), but **anti-conservative**: a cell's activity is a
            mean over localities that pool the cells of many donors, so replicate means share cells'
            information and are not independent; small effects come out with tiny p-values. Use it
            for a quick look, or with ``replicate=None`` (the only choice there).
    key
        Key of the LAVA results in ``uns`` / ``obsm``.
    min_cells
        Replicate-groups (a donor's cells of one cell type) with fewer cells are dropped; at least 3
        for ``statistic="correlation"``. With ``replicate=None``, a condition with fewer cells in a
        group is not tested there.
    min_effect
        Test whether the effect is larger than this, H0: ``|effect| <= min_effect`` (TREAT, McCarthy &
        Smyth 2009, with Welch's standard error), instead of H0: ``effect = 0``. Effects are in the
        units of ``measure`` (correlation for the default statistic). With many units (cells, with
        ``replicate=None``) every tiny effect is significant against 0; e.g. ``min_effect=0.05``
        keeps only those credibly above 0.05.
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
    ``measure``
        What was compared: ``"correlation"`` or ``"activity"`` (``statistic``).
    ``n_condition``, ``n_reference``
        Replicates (or cells) on each side after dropping those with fewer than ``min_cells`` cells.
    ``n_cells_condition``, ``n_cells_reference``
        Cells on each side in the replicates used.
    ``mean_condition``, ``mean_reference``
        Mean of the replicate values (or of the cells) on each side.
    ``effect``
        ``mean_condition - mean_reference``.
    ``effect_standardised``
        ``effect`` divided by the pooled standard deviation of the replicate values (Cohen's d).
    ``statistic``, ``pvalue``
        Welch's t statistic and two-sided p-value (of ``|effect| <= min_effect`` when ``min_effect``
        is above 0); NaN where the test is not possible (fewer than 2 replicates on a side, or no
        variance), with the reason in ``note``.
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
    min_effect = check_float("min_effect", min_effect, low=0.0)
    _check_columns(adata, groupby, replicate, within)
    statistic = _statistic(statistic, replicate, min_cells)
    if statistic == "activity":
        names, act = _activity(adata, key)
    else:
        pairs = _module_pairs(adata, key)
        names = pairs.names
    cond_codes, levels = _labels(adata, groupby)
    reference = _reference(levels, reference, groupby)
    if replicate is None:
        rep_codes = None
        logg.warning(
            "differential: `replicate=None`, so cells are treated as independent replicates. Cells of one "
            "donor are not independent: p-values are anti-conservative. Pass `replicate=` (e.g. 'donor'), or "
            "`min_effect=` to test only effects above a size."
        )
    else:
        rep_codes, rep_levels = _labels(adata, replicate)
        _check_nested(cond_codes, levels, rep_codes, rep_levels, groupby, replicate)
        if statistic == "activity":
            logg.warning(
                "differential: statistic='activity' averages smoothed cell activity, a mean over localities "
                "that pool many donors, so replicate means are not independent and p-values are "
                "anti-conservative. statistic='correlation' (the default) recomputes it per replicate."
            )
    if within is None:
        group_codes, groups = np.zeros(adata.n_obs, dtype=np.int64), ["all"]
    else:
        group_codes, groups = _labels(adata, within)

    adata = adata.copy() if copy else adata
    start = logg.info(f"testing differential LAVA module {statistic} ({groupby!r} vs {reference!r})")
    units = _units(cond_codes, group_codes, rep_codes)
    if statistic == "activity":
        units["values"] = _mean_activity(act, units)
    else:
        units["values"] = _replicate_correlations(adata, key, pairs, units, min_cells)
    rows = _rows(units, groups, levels, reference, names, min_cells, replicate, min_effect)
    table = _table(rows, names, within, reference, statistic)
    store(adata, key, **{Keys.differential: table})
    store_params(
        adata,
        key,
        Keys.differential,
        dict(
            groupby=groupby,
            reference=reference,
            replicate=replicate,
            within=within,
            statistic=statistic,
            min_cells=min_cells,
            min_effect=min_effect,
        ),
    )
    log_added(
        f"{len(table)} tests ({int(np.isfinite(table['pvalue']).sum())} with a p-value)",
        start,
        [f"'{key}': '{Keys.differential}', module {statistic} per condition vs {reference!r} (adata.uns)"],
    )
    return adata if copy else None


def _statistic(statistic, replicate, min_cells: int) -> str:
    """The statistic to compare: the default depends on whether there are replicates."""
    if statistic is None:
        statistic = "activity" if replicate is None else "correlation"
    statistic = check_choice("statistic", statistic, STATISTICS)
    if statistic == "correlation" and replicate is None:
        raise ValueError(
            "statistic='correlation' recomputes each module's correlation among the cells of one replicate "
            "(e.g. one donor's cells of one cell type); with `replicate=None` the cells themselves are the "
            "units, and a single cell has no correlation. Pass `replicate=` (e.g. 'donor'), or "
            "statistic='activity' to test cells' smoothed activity (anti-conservative)."
        )
    if statistic == "correlation" and min_cells < 3:
        raise ValueError(
            f"statistic='correlation' needs at least 3 cells per replicate-group to correlate genes, got "
            f"min_cells={min_cells}; pass min_cells >= 3 (10 or more gives stable correlations)."
        )
    return statistic


def _module_pairs(adata: AnnData, key: str) -> ModulePairs:
    """The gene pairs and weights of the LAVA modules under ``key``."""
    slot = adata.uns.get(key)
    if not isinstance(slot, Mapping) or Keys.modules not in slot:
        raise KeyError(
            f"No LAVA modules (adata.uns[{key!r}][{Keys.modules!r}]) under key {key!r}; run "
            f"lava_sc.tl.modules(adata, key={key!r}) first (statistic='correlation' recomputes the modules' "
            "correlations per replicate), or pass statistic='activity' to test obsm activity only."
        )
    pairs = pairs_from_table(slot[Keys.modules], source=f"uns[{key!r}]")
    if not pairs.names:
        raise ValueError(
            f"LAVA found no modules under key {key!r}, so there is nothing to test; rerun lava_sc.tl.modules "
            "with a lower `min_support`/`min_genes` or a higher `resolution`."
        )
    missing = pd.Index(np.unique(np.r_[pairs.gene_a, pairs.gene_b])).difference(adata.var_names)
    if len(missing):
        raise KeyError(
            f"{len(missing)} gene(s) of the LAVA modules are not in adata.var_names (e.g. {missing[:5].tolist()}); "
            "statistic='correlation' needs the genes LAVA used: run it on that AnnData (cells may be subset, "
            "genes not), or pass statistic='activity'."
        )
    return pairs


def _recorded(adata: AnnData, key: str, name: str, default):
    """A LAVA setting as recorded by tl.modules / tl.correlations / tl.score (``"None"`` read as None)."""
    params = adata.uns[key].get("params", {})
    for tool in ("modules", "correlations", "score"):
        if isinstance(params.get(tool), Mapping) and name in params[tool]:
            value = params[tool][name]
            if isinstance(value, str) and value == "None":
                return None
            return [str(v) for v in value] if isinstance(value, np.ndarray) else value
    return default


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
        check_obs_column(adata, column, name, optional=name != "groupby")
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


def _units(cond_codes, group_codes, rep_codes) -> dict[str, np.ndarray]:
    """Group, condition and size of each (group, replicate), with its member cells; cells when no replicates."""
    n = len(cond_codes)
    if rep_codes is None:
        ones = np.ones(n, dtype=np.int64)
        return {"group": group_codes, "condition": cond_codes, "n_cells": ones, "members": None}
    n_rep = int(rep_codes.max()) + 1
    unit_of = group_codes * n_rep + rep_codes
    ids, inverse, counts = np.unique(unit_of, return_inverse=True, return_counts=True)
    condition = np.zeros(n_rep, dtype=np.int64)
    condition[rep_codes] = cond_codes
    return {
        "group": ids // n_rep,
        "condition": condition[ids % n_rep],
        "n_cells": counts,
        "members": sp.csr_matrix((np.ones(n), (inverse, np.arange(n))), shape=(len(ids), n)),
    }


def _mean_activity(act: np.ndarray, units) -> np.ndarray:
    """Mean smoothed cell activity per unit (the cells themselves when there are no replicates)."""
    if units["members"] is None:
        return act
    return np.asarray(units["members"] @ act) / units["n_cells"][:, None]


def _replicate_correlations(adata: AnnData, key: str, pairs: ModulePairs, units, min_cells: int) -> np.ndarray:
    """Module activity recomputed among each unit's own cells (units x modules; NaN for units too small)."""
    layer = _recorded(adata, key, "layer", None)
    min_detected = float(_recorded(adata, key, "min_detected", 0.1))
    partial_out = _recorded(adata, key, "partial_out", None)
    covariates = covariate_matrix(adata, partial_out, int(_recorded(adata, key, "n_partial_components", 5)))
    used = pd.Index(np.unique(np.r_[pairs.gene_a, pairs.gene_b]))
    values = expression(adata, layer)
    idx = adata.var_names.get_indexer(used)
    matrix = gather_columns(values, idx) if is_dask(values) else gene_matrix(values, idx)
    large = np.flatnonzero(units["n_cells"] >= min_cells)
    out = np.full((len(units["n_cells"]), len(pairs.names)), np.nan)
    with progress(len(large), "replicate correlations") as bar:
        out[large] = module_set_activity(
            matrix,
            sp.csc_matrix(units["members"][large].T),
            used.get_indexer(pairs.gene_a),
            used.get_indexer(pairs.gene_b),
            pairs.module,
            pairs.weight,
            len(pairs.names),
            min_detected=min_detected,
            covariates=covariates,
            progress=bar.update,
        )
    return out


def _rows(units, groups, levels, reference: str, names, min_cells: int, replicate, min_effect: float) -> list[dict]:
    """Test rows for every group and every level against the reference."""
    r = levels.index(reference)
    rows = []
    for g, group in enumerate(groups):
        for c, level in enumerate(levels):
            if c != r:
                rows += _compare(units, g, c, r, names, min_cells, replicate, (group, level), min_effect)
    return rows


def _compare(units, g: int, c: int, r: int, names, min_cells: int, replicate, labels, min_effect) -> list[dict]:
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
    res = _welch(units["values"][sides[0]], units["values"][sides[1]], min_effect)
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


def _table(rows: list[dict], names, within: str | None, reference: str, measure: str) -> pd.DataFrame:
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
    return table


def _welch(x: np.ndarray, y: np.ndarray, min_effect: float = 0.0) -> dict[str, np.ndarray]:
    """Means, effects and Welch's t-test (of ``|effect| <= min_effect``) per column of ``x`` (condition)
    and ``y`` (reference)."""
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
            statistic, pvalue = welch_treat(x, y, min_effect)
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
