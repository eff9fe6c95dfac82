"""``get.enrichment``: the table of ``tl.enrich``, optionally filtered by module and q-value."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from anndata import AnnData

from .._docs import doc
from .._keys import DEFAULT_KEY, Keys
from .._validate import check_adata, check_float, check_key


@doc()
def enrichment(
    adata: AnnData,
    key: str = DEFAULT_KEY,
    *,
    module: str | Sequence[str] | None = None,
    q_max: float | None = None,
) -> pd.DataFrame:
    """Gene-set enrichment of the modules from :func:`lava_sc.tl.enrich`, one row per (module, set).

    Columns ``module, gene_set, overlap, module_size, set_size, universe_size, odds_ratio, pvalue,
    qvalue, genes`` (shared genes, ``;``-joined), sorted by module then p-value.

    Parameters
    ----------
    adata
        Annotated data with results of :func:`lava_sc.tl.enrich`.
    {key}
    module
        Keep only this module (a name such as ``"M1"``) or these modules.
    q_max
        Keep only rows with ``qvalue <= q_max``.

    Examples
    --------
    >>> import lava_sc as lv
    >>> lv.get.enrichment(adata, module="M1", q_max=0.05)  # doctest: +SKIP
    """
    check_adata(adata)
    key = check_key(key)
    if key not in adata.uns or Keys.enrichment not in adata.uns[key]:
        raise KeyError(
            f"No LAVA enrichment under key {key!r}; run lava_sc.tl.enrich(adata, gene_sets, key={key!r}) first."
        )
    table = adata.uns[key][Keys.enrichment].copy()
    if module is not None:
        wanted = [module] if isinstance(module, str) else module
        if not isinstance(wanted, (Sequence, np.ndarray, pd.Index)) or not all(isinstance(m, str) for m in wanted):
            raise TypeError(f"`module` must be a module name such as 'M1', a list of names or None, got {module!r}.")
        known = set(table["module"].astype(str))
        if isinstance(table["module"].dtype, pd.CategoricalDtype):
            known |= {str(c) for c in table["module"].cat.categories}
        unknown = [m for m in wanted if m not in known]
        if unknown:
            raise KeyError(f"Unknown module(s) {unknown} in the enrichment under key {key!r}; known: {sorted(known)}.")
        table = table.loc[table["module"].astype(str).isin(list(wanted))]
    if q_max is not None:
        q_max = check_float("q_max", q_max, low=0.0, high=1.0)
        table = table.loc[table["qvalue"] <= q_max]
    return table.reset_index(drop=True)
