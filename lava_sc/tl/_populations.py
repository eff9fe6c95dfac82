"""Which modules are only a between-population mean difference (localities that straddle groups)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from anndata import AnnData

from .. import _logging as logg
from .._core.composition import PRESENT_FRACTION, mixed_support, top_groups
from .._core.composition import locality_composition as _locality_composition
from .._keys import Keys, locality_names

#: obs columns taken as the population labels when ``groupby="auto"``, in this order (case-insensitive)
GROUPBY_CANDIDATES = (
    "cell_type",
    "celltype",
    "cell_types",
    "cell_type_label",
    "bulk_labels",
    "annotation",
    "leiden",
    "louvain",
    "clusters",
    "cluster",
)

#: a module keeps less than this share of its activity once population means are removed: a mean difference
WITHIN_RATIO_MIN = 0.5
#: a module with at least this share of its activity in mixed localities is flagged ``mixed``
MIXED_SHARE_FLAG = 0.5


def resolve_groupby(adata: AnnData, groupby) -> str | None:
    """The obs column with the populations: ``groupby`` itself, or with ``"auto"`` the first categorical
    column named like a cell-type or cluster annotation (None when there is none)."""
    if groupby is None:
        return None
    if isinstance(groupby, str) and groupby == "auto":
        lower = {str(c).lower(): c for c in adata.obs.columns}
        for name in GROUPBY_CANDIDATES:
            column = lower.get(name)
            if column is not None and _is_categorical(adata.obs[column]):
                return str(column)
        return None
    if not isinstance(groupby, str):
        raise TypeError(f"`groupby` must be an obs column name, 'auto' or None, got {type(groupby).__name__}.")
    if groupby not in adata.obs:
        raise KeyError(
            f"`groupby` {groupby!r} is not a column of adata.obs ({list(adata.obs.columns)[:10]}); "
            "name a cell-type column, or pass groupby=None."
        )
    return groupby


def _is_categorical(column: pd.Series) -> bool:
    return isinstance(column.dtype, pd.CategoricalDtype) or column.dtype == object


def group_codes(adata: AnnData, groupby: str) -> tuple[np.ndarray, list[str]]:
    """Integer code per cell (-1 for missing) and the group names."""
    column = adata.obs[groupby]
    cat = column if isinstance(column.dtype, pd.CategoricalDtype) else column.astype("category")
    return np.asarray(cat.cat.codes, dtype=np.int64), [str(c) for c in cat.cat.categories]


def group_indicators(codes: np.ndarray, n_groups: int) -> np.ndarray:
    """Cells x (groups - 1) one-hot indicators (the first group is the baseline; missing cells all zero)."""
    out = np.zeros((len(codes), max(n_groups - 1, 0)))
    labelled = codes > 0
    out[np.flatnonzero(labelled), codes[labelled] - 1] = 1.0
    return out


def within_group_ratio(raw: np.ndarray, within: np.ndarray) -> np.ndarray:
    """Per module: ``sum_l max(within_l, 0) / sum_l max(raw_l, 0)`` over the localities where it is active.

    ``raw`` and ``within`` are localities x modules activities without and with the population
    indicators partialled out inside each locality. In a locality of one population the two agree; a
    module that exists only because a locality straddles two populations (their mean difference)
    loses its activity there. NaN for a module without positive activity.
    """
    raw_mass = np.clip(raw, 0.0, None).sum(axis=0)
    within_mass = np.clip(np.where(raw > 0, within, 0.0), 0.0, None).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(raw_mass > 0, within_mass / raw_mass, np.nan)


def module_stats(
    names: list[str],
    raw: np.ndarray,
    within: np.ndarray | None,
    purity: np.ndarray | None,
    cell_activity: np.ndarray | None,
    codes: np.ndarray | None,
    groups: list[str] | None,
) -> pd.DataFrame:
    """One row per module: ``within_group_ratio``, ``mixed_share`` (activity from localities where no
    group holds 80% of the cells), ``top_group`` (the group with the highest mean cell activity) and
    ``top_group_share`` (its share of the module's positive cell activity) and ``mixed`` (``mixed_share``
    at least 0.5: read its top group with care, the activity of a straddling locality is given to all its
    cells); NaN / empty / False without ``groupby``."""
    table = pd.DataFrame(index=pd.Index(names, name="module"))
    n = len(names)
    if within is None or not n:
        for col in ("within_group_ratio", "mixed_share", "top_group_share"):
            table[col] = np.full(n, np.nan)
        table["top_group"] = [""] * n
        table["mixed"] = np.zeros(n, dtype=bool)
        return table.reset_index()
    table["within_group_ratio"] = within_group_ratio(raw, within)
    table["mixed_share"] = mixed_support(raw, purity).mixed_share
    by_group = top_groups(cell_activity, codes, len(groups))
    means = np.where(np.isfinite(by_group.mean), by_group.mean, -np.inf)
    best = means.argmax(axis=1) if len(groups) else np.zeros(n, dtype=np.int64)
    rows = np.arange(n)
    table["top_group"] = [groups[int(g)] if np.isfinite(means[i, g]) else "" for i, g in enumerate(best)]
    table["top_group_share"] = by_group.share[rows, best]
    table["mixed"] = table["mixed_share"].to_numpy() >= MIXED_SHARE_FLAG
    return table.reset_index()


def between_population_modules(stats: pd.DataFrame) -> list[str]:
    """Modules whose activity is mostly a between-population mean difference (ratio below the minimum)."""
    ratio = stats["within_group_ratio"].to_numpy(dtype=float)
    return [str(m) for m, r in zip(stats["module"], ratio, strict=True) if np.isfinite(r) and r < WITHIN_RATIO_MIN]


def log_groupby(groupby: str | None, requested) -> None:
    if groupby is None and isinstance(requested, str) and requested == "auto":
        logg.info(
            "    no cell-type or cluster column in adata.obs: straddling localities were not checked "
            "(pass groupby=<obs column>)"
        )
    elif groupby is not None and isinstance(requested, str) and requested == "auto":
        logg.info(f"    populations from adata.obs[{groupby!r}] (groupby='auto')")


def group_columns(groups) -> list[str]:
    """Column names of the per-group fractions: the group names as strings; a name that repeats a summary
    column (or another group's name once made a string) gets the suffix ``" (fraction)"``."""
    taken = set(Keys.composition_summary)
    out = []
    for group in groups:
        name = str(group)
        while name in taken:
            name = f"{name} (fraction)"
        taken.add(name)
        out.append(name)
    return out


def composition_table(membership, obs_column, *, present_fraction: float = PRESENT_FRACTION) -> pd.DataFrame:
    """One row per locality: how its cells divide among the groups of ``obs_column``.

    Parameters
    ----------
    membership
        Cells x localities membership (``obsm["lava_localities"]``).
    obs_column
        One value per cell (``adata.obs[groupby]``), categorical or not (other dtypes are made categorical,
        categories sorted). Missing values (NaN) are left out of every fraction.
    present_fraction
        Threshold of ``n_groups_present`` (see :data:`lava_sc._core.composition.PRESENT_FRACTION`).

    Returns
    -------
    DataFrame, index = locality ids (``L0``, ``L1``, ...), columns ``n_labelled`` (cells with a group),
    ``purity`` (largest fraction), ``entropy`` (Shannon, bits, not normalised), ``n_groups_present``,
    ``dominant`` (categorical: the group with the largest fraction; NaN without labelled cells), then one
    fraction column per category (named by :func:`group_columns`). ``attrs["groups"]`` lists those columns.
    """
    series = obs_column if isinstance(obs_column, pd.Series) else pd.Series(obs_column)
    if not isinstance(series.dtype, pd.CategoricalDtype):
        series = series.astype("category")
    categorical = series.array
    n_groups = len(categorical.categories)
    comp = _locality_composition(membership, np.asarray(categorical.codes), n_groups, present_fraction=present_fraction)
    columns = group_columns(categorical.categories)
    dominant = pd.Categorical.from_codes(comp.dominant, categories=columns)
    table = pd.DataFrame(
        {
            "n_labelled": comp.n_labelled,
            "purity": comp.purity,
            "entropy": comp.entropy,
            "n_groups_present": comp.n_groups_present,
            "dominant": dominant,
        },
        index=pd.Index(locality_names(len(comp.purity))),
    )
    fractions = pd.DataFrame(comp.fractions, index=table.index, columns=columns)
    table = pd.concat([table, fractions], axis=1)
    table.attrs["groups"] = columns
    return table


def composition_entry(table: pd.DataFrame, groupby: str, present_fraction: float = PRESENT_FRACTION) -> dict:
    """The dict a tool stores at ``uns[key]["locality_composition"]`` (h5ad/zarr-safe: no ``attrs``)."""
    groups = list(table.attrs.get("groups", table.columns[len(Keys.composition_summary) :]))
    # group names become h5 keys as DataFrame columns (and may hold "/"): the fractions go in an array
    stored = table[list(Keys.composition_summary)].copy()
    stored.attrs = {}
    return {
        "table": stored,
        "fractions": table[groups].to_numpy(dtype=np.float64),
        "groupby": str(groupby),
        "groups": np.asarray(groups, dtype=str),
        "present_fraction": float(present_fraction),
    }
