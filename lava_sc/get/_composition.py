"""The group (cell-type) mix of each locality: which localities straddle groups.

Stored by :func:`lava_sc.tl.modules` (with ``groupby=``) as::

    uns[key]["locality_composition"] = {
        "table": DataFrame,             # the summary columns of composition_table(...), one row per locality
        "fractions": ndarray,           # localities x groups, the per-group fractions
        "groupby": str,                 # the obs column the groups come from
        "groups": ndarray of str,       # the group columns of the table, in category order
        "present_fraction": float,      # threshold of n_groups_present
    }
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from anndata import AnnData

from .._core.composition import PRESENT_FRACTION
from .._core.composition import locality_composition as _locality_composition
from .._keys import DEFAULT_KEY, Keys, locality_names
from .._validate import check_adata, check_key

#: entry of ``uns[key]`` holding the composition layout
ENTRY = "locality_composition"
#: the summary columns of the table, before one fraction column per group
SUMMARY_COLUMNS = ("n_labelled", "purity", "entropy", "n_groups_present", "dominant")


def group_columns(groups) -> list[str]:
    """Column names of the per-group fractions: the group names as strings; a name that repeats a summary
    column (or another group's name once made a string) gets the suffix ``" (fraction)"``."""
    taken = set(SUMMARY_COLUMNS)
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
    groups = list(table.attrs.get("groups", table.columns[len(SUMMARY_COLUMNS) :]))
    # group names become h5 keys as DataFrame columns (and may hold "/"): the fractions go in an array
    stored = table[list(SUMMARY_COLUMNS)].copy()
    stored.attrs = {}
    return {
        "table": stored,
        "fractions": table[groups].to_numpy(dtype=np.float64),
        "groupby": str(groupby),
        "groups": np.asarray(groups, dtype=str),
        "present_fraction": float(present_fraction),
    }


def locality_composition(adata: AnnData, key: str = DEFAULT_KEY) -> pd.DataFrame:
    """The group mix of every locality, from :func:`lava_sc.tl.modules` run with ``groupby=``.

    Parameters
    ----------
    adata
        Annotated data matrix with LAVA results.
    key
        The LAVA key (``uns[key]``).

    Returns
    -------
    A copy of the table, index = locality ids (``L0``, ``L1``, ...): ``n_labelled, purity, entropy,
    n_groups_present, dominant``, then one fraction column per group (see :func:`composition_table`).
    ``attrs`` holds ``groupby`` (the obs column) and ``groups`` (the fraction columns). A locality with
    purity below :data:`lava_sc._core.composition.MIXED_BELOW` straddles groups: its correlations may be
    between-group mean differences.
    """
    check_adata(adata)
    keys = Keys(check_key(key))
    slot = adata.uns.get(keys.uns)
    if not isinstance(slot, Mapping) or ENTRY not in slot:
        raise KeyError(
            f"No LAVA locality composition under key {key!r}; run lava_sc.tl.modules(adata, groupby=<obs column>, "
            f"key={key!r}) first (groupby names the column, e.g. 'cell_type', whose mix each locality is described by)."
        )
    entry = slot[ENTRY]
    if not isinstance(entry, Mapping) or not isinstance(entry.get("table"), pd.DataFrame):
        raise TypeError(
            f"adata.uns[{key!r}][{ENTRY!r}] must be a dict with a DataFrame 'table'; rerun "
            f"lava_sc.tl.modules(adata, groupby=<obs column>, key={key!r})."
        )
    table = entry["table"].copy()
    groups = entry.get("groups")
    if "fractions" in entry and groups is not None:
        fractions = pd.DataFrame(np.asarray(entry["fractions"]), index=table.index, columns=[str(g) for g in groups])
        table = pd.concat([table, fractions], axis=1)
    if keys.obsm_localities in adata.obsm:
        n_loc = adata.obsm[keys.obsm_localities].shape[1]
        if len(table) != n_loc:
            raise ValueError(
                f"adata.uns[{key!r}][{ENTRY!r}] describes {len(table)} localities but "
                f"adata.obsm[{keys.obsm_localities!r}] has {n_loc}: they come from different runs; rerun "
                f"lava_sc.tl.modules(adata, groupby={entry.get('groupby', '<obs column>')!r}, key={key!r})."
            )
    table.attrs["groupby"] = str(entry.get("groupby", ""))
    table.attrs["groups"] = (
        [str(g) for g in groups] if groups is not None else list(table.columns[len(SUMMARY_COLUMNS) :])
    )
    return table
