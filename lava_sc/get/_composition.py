"""The group (cell-type) mix of each locality: which localities straddle groups.

Stored by :func:`lava_sc.tl.modules` (with ``groupby=``; written by ``tl/_populations.py``) as::

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

from .._keys import DEFAULT_KEY, Keys
from .._validate import check_adata, check_key

ENTRY = Keys.locality_composition
SUMMARY_COLUMNS = Keys.composition_summary


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
    n_groups_present, dominant``, then one fraction column per group (see :func:`lava_sc.tl._populations.composition_table`).
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
