"""``get.stability``: the tables of the stability assay (effects per intervention, seed noise floor)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import pandas as pd
from anndata import AnnData

from .._keys import STABILITY_KEY
from .._utils import renamed_keyword
from .._validate import check_adata, check_choice, check_key

TABLES = ("effects", "noise_floor")


@renamed_keyword("key_added", "key")
def stability(
    adata: AnnData, key: str = STABILITY_KEY, *, table: Literal["effects", "noise_floor"] = "effects"
) -> pd.DataFrame:
    """Results of :func:`lava_sc.explain.stability` as a DataFrame.

    Parameters
    ----------
    adata
        Annotated data matrix with results of :func:`lava_sc.explain.stability`.
    key
        The ``key_added`` the assay wrote its results to (``uns[key]``).
    table
        ``"effects"`` (default): one row per intervention, columns ``factor, kind, value,
        embedding_change, explanation_change, mean_jaccard, activity_corr, n_modules, n_matched,
        unmatched_reference, unmatched, above_noise,
        is_reference``. ``"noise_floor"``: one row per extra LAVA seed,
        columns ``random_state, explanation_change, mean_jaccard, activity_corr, n_modules, n_matched``.

    Returns
    -------
    A copy of the table, index ``0 .. n-1``. The scalars (``noise_floor_mean``, ``noise_floor_max``,
    ``kendall_tau``, ``kendall_pvalue``, ``kendall_note``, ...) are in ``adata.uns[key]``.
    """
    check_adata(adata)
    key = check_key(key)
    check_choice("table", table, TABLES)
    return stability_slot(adata, key)[table].copy().reset_index(drop=True)


def stability_slot(adata: AnnData, key: str) -> Mapping:
    """``uns[key]``, or a KeyError saying to run :func:`lava_sc.explain.stability`."""
    slot = adata.uns.get(key)
    if not isinstance(slot, Mapping) or not all(t in slot for t in TABLES):
        raise KeyError(
            f"No LAVA stability results under {key!r}; run "
            f"lava_sc.explain.stability(adata, vary={{...}}, key_added={key!r}) first."
        )
    return slot
