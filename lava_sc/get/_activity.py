"""``get.activity``: module activity per cell or per locality as a DataFrame."""

from __future__ import annotations

from typing import Literal

import pandas as pd
from anndata import AnnData

from .._docs import doc
from .._keys import DEFAULT_KEY, Keys
from .._validate import check_adata, check_choice, check_key, check_per_cell, require


@doc()
def activity(adata: AnnData, key: str = DEFAULT_KEY, level: Literal["cells", "localities"] = "cells") -> pd.DataFrame:
    """Module activity: cells (index = obs names) or localities (index = ``L0``, ``L1``, ...) x modules.

    Parameters
    ----------
    {adata_modules}
    {key}
    level
        ``"cells"``: ``obsm[f"{key}_activity"]``, each cell's mean over the localities that contain it
        (cells in no locality take their nearest probe's value). ``"localities"``: the activity of each
        locality, the weighted mean correlation of the module's pairs in it.

    Returns
    -------
    A copy, one column per module (``M1``, ``M2``, ...).
    """
    check_adata(adata)
    keys = Keys(check_key(key))
    check_choice("level", level, ("cells", "localities"))
    require(adata, key, Keys.locality_activity, "modules")
    if level == "localities":
        return adata.uns[key][Keys.locality_activity].copy()
    if keys.obsm_activity not in adata.obsm:
        raise KeyError(f"obsm[{keys.obsm_activity!r}] is missing; run lava_sc.tl.modules(adata, key={key!r}).")
    values = adata.obsm[keys.obsm_activity]
    check_per_cell(adata, values, f"adata.obsm[{keys.obsm_activity!r}]", "modules", key)
    frame = values if isinstance(values, pd.DataFrame) else pd.DataFrame(values)
    frame = frame.copy()
    frame.index = adata.obs_names.copy()
    names = adata.uns[key][Keys.locality_activity].columns.astype(str)
    if frame.shape[1] != len(names):
        raise ValueError(
            f"adata.obsm[{keys.obsm_activity!r}] has {frame.shape[1]} modules but "
            f"adata.uns[{key!r}][{Keys.locality_activity!r}] has {len(names)}: they come from different runs; "
            f"rerun lava_sc.tl.modules(adata, key={key!r})."
        )
    frame.columns = names
    return frame
