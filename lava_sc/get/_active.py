"""``get.active``: where each module is active, decided by the localities' permutation tests."""

from __future__ import annotations

from typing import Literal

import pandas as pd
from anndata import AnnData

from .._adata import nearest_probe
from .._core.modules import LOCALITY_ACTIVE_SHARE, active_cells
from .._docs import doc
from .._keys import DEFAULT_KEY, Keys
from .._validate import check_adata, check_choice, check_key, require


@doc()
def active(adata: AnnData, key: str = DEFAULT_KEY, level: Literal["cells", "localities"] = "cells") -> pd.DataFrame:
    """Where each module is active: cells (or localities) x modules, True where it is.

    "Active" is decided against each locality's own null, so that it means the same on every dataset:
    a module is active in a locality when at least half of its pair weight was found significant
    there (with the module's sign) by :func:`lava_sc.tl.correlations`' permutation test at its FDR.
    With ``w_p`` the weight of pair ``p`` and ``s_lp = 1`` when pair ``p`` is significant in locality
    ``l`` with the sign of ``w_p``: ``sum_p |w_p| s_lp / sum_p |w_p| >= 0.5`` (the share is stored in
    ``uns[key]["locality_support"]``). A pair is a false discovery with probability about the FDR level
    spread over all the locality's pairs, so half of one module's weight is not reached by chance.
    A cell is active when at least half of the localities that contain it are (cells in no locality take
    their nearest probe's locality).

    The rule needs the pairs to be detected: where the test has little power (few cells per locality,
    weak or attenuated correlations) it calls fewer cells active than there are. On the planted
    simulator with noise added to every gene (correlations halved) it found 17-28 % of the truly active
    cells (precision 0.94-1.00), where a fixed activity cut of 0.2 found 36-100 %.

    Parameters
    ----------
    {adata_modules}
    {key}
    level
        ``"cells"`` (index = obs names) or ``"localities"`` (index = ``L0``, ``L1``, ...).

    Returns
    -------
    A boolean DataFrame, one column per module (``M1``, ``M2``, ...).
    """
    check_adata(adata)
    keys = Keys(check_key(key))
    check_choice("level", level, ("cells", "localities"))
    require(adata, key, Keys.locality_activity, "modules")
    if Keys.locality_support not in adata.uns[key]:
        raise KeyError(
            f"adata.uns[{key!r}] has module activity but no significance per locality (tl.score results, or "
            f"modules from an older lava_sc): 'active' needs it; run lava_sc.tl.modules(adata, key={key!r}), "
            f"or read the activity itself with lava_sc.get.activity (get.summary(adata, key={key!r}, active_above=0.2) "
            "uses a fixed cut)."
        )
    support = adata.uns[key][Keys.locality_support]
    if level == "localities":
        return support >= LOCALITY_ACTIVE_SHARE
    require(adata, key, "localities", "localities")
    flags = active_cells(adata.obsm[keys.obsm_localities], support.to_numpy(), nearest_probe(adata, key))
    return pd.DataFrame(flags, index=adata.obs_names.copy(), columns=support.columns.astype(str))
