from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
from anndata import AnnData

from .._keys import STABILITY_KEY
from .._validate import check_adata, check_choice, check_key

TABLES = ("effects", "noise_floor")


def stability(adata: AnnData, key_added: str = STABILITY_KEY, *, table: str = "effects") -> pd.DataFrame:
    """Results of :func:`lava_sc.tl.stability` as a DataFrame.

    Parameters
    ----------
    adata
        Annotated data matrix with results of :func:`lava_sc.tl.stability`.
    key_added
        Where the assay wrote its results (``uns[key_added]``).
    table
        ``"effects"`` (default): one row per intervention, columns ``factor, kind, value,
        embedding_change, explanation_change, mean_jaccard, activity_corr, n_modules, n_matched,
        unmatched_reference, unmatched, above_noise,
        is_reference``. ``"noise_floor"``: one row per extra LAVA seed,
        columns ``random_state, explanation_change, mean_jaccard, activity_corr, n_modules, n_matched``.

    Returns
    -------
    A copy of the table, index ``0 .. n-1``. The scalars (``noise_floor_mean``, ``noise_floor_max``,
    ``kendall_tau``, ``kendall_pvalue``, ``kendall_note``, ...) are in ``adata.uns[key_added]``.
    """
    check_adata(adata)
    key_added = check_key(key_added)
    check_choice("table", table, TABLES)
    return stability_slot(adata, key_added)[table].copy().reset_index(drop=True)


def stability_slot(adata: AnnData, key_added: str) -> Mapping:
    """``uns[key_added]``, or a KeyError saying to run :func:`lava_sc.tl.stability`."""
    slot = adata.uns.get(key_added)
    if not isinstance(slot, Mapping) or not all(t in slot for t in TABLES):
        raise KeyError(
            f"No LAVA stability results under {key_added!r}; run "
            f"lava_sc.tl.stability(adata, vary={{...}}, key_added={key_added!r}) first."
        )
    return slot
