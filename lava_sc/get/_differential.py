"""``get.differential``: the table of ``tl.differential``, optionally filtered by module and q-value."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from anndata import AnnData

from .._docs import doc
from .._keys import DEFAULT_KEY, Keys
from .._validate import check_adata, check_float, check_key


@doc()
def differential(
    adata: AnnData,
    key: str = DEFAULT_KEY,
    *,
    module: str | Sequence[str] | None = None,
    q_max: float | None = None,
) -> pd.DataFrame:
    """Differential module activity from :func:`lava_sc.tl.differential`, one row per test.

    Columns: ``module, <within>, condition, reference, unit, n_condition, n_reference,
    n_cells_condition, n_cells_reference, mean_condition, mean_reference, effect,
    effect_standardised, statistic, pvalue, qvalue, note`` (see :func:`lava_sc.tl.differential`).

    Parameters
    ----------
    adata
        Annotated data matrix with results of :func:`lava_sc.tl.differential`.
    {key}
    module
        Keep only this module (``"M1"``) or these modules.
    q_max
        Keep only rows with ``qvalue <= q_max`` (rows that were not tested are dropped).

    Returns
    -------
    A copy of the table, index ``0 .. n-1``.
    """
    check_adata(adata)
    key = check_key(key)
    table = differential_table(adata, key).copy()
    if module is not None:
        wanted = _modules(module)
        available = pd.unique(table["module"].astype(str)).tolist()
        unknown = [m for m in wanted if m not in available]
        if unknown:
            raise KeyError(f"Unknown module(s) {unknown} in the differential results; available modules: {available}.")
        table = table[table["module"].astype(str).isin(wanted)]
    if q_max is not None:
        q_max = check_float("q_max", q_max, low=0.0, high=1.0)
        q = table["qvalue"].to_numpy(dtype=np.float64)
        table = table[np.isfinite(q) & (q <= q_max)]
    return table.reset_index(drop=True)


def differential_table(adata: AnnData, key: str) -> pd.DataFrame:
    """The stored table (not a copy), or a KeyError saying to run :func:`lava_sc.tl.differential`."""
    slot = adata.uns.get(key)
    if not isinstance(slot, Mapping) or Keys.differential not in slot:
        raise KeyError(
            f"No LAVA differential results under key {key!r}; run lava_sc.tl.differential(adata, key={key!r}) first."
        )
    return slot[Keys.differential]


def _modules(module) -> list[str]:
    if isinstance(module, str):
        return [module]
    if isinstance(module, (Sequence, np.ndarray, pd.Index)) and len(module) > 0:
        return [str(m) for m in module]
    raise TypeError(f"`module` must be a module name such as 'M1', a non-empty list of names or None, got {module!r}.")
