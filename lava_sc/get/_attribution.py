"""``get.attribution``: the gene attributions of COCOA and label-free importance as a DataFrame."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import pandas as pd
from anndata import AnnData

from .._utils import renamed_keyword
from .._validate import check_adata, check_choice, check_key

#: columns of the per-gene table written by the attribution tools
GENE_COLUMNS = ("gene", "mean_attribution", "mean_abs_attribution", "rank")


@renamed_keyword("key_added", "key")
def attribution(adata: AnnData, key: str, *, level: Literal["genes", "groups"] = "genes") -> pd.DataFrame:
    """Gene attributions of :func:`lava_sc.explain.corpus_attribution` or :func:`lava_sc.explain.label_free_importance`.

    Parameters
    ----------
    adata
        Annotated data matrix with attribution results.
    key
        The ``key_added`` the tool was run with (their defaults: ``"cocoa"``, ``"label_free"``).
    level
        ``"genes"``: one row per attributed gene, sorted by rank, columns ``gene, mean_attribution,
        mean_abs_attribution, rank`` (rank 1 = largest mean attribution). ``"groups"``: groups x
        genes mean attribution (from ``label_free_importance(..., groupby=...)``).

    Returns
    -------
    A copy of the table.
    """
    check_adata(adata)
    key = check_key(key)
    check_choice("level", level, ("genes", "groups"))
    slot = adata.uns.get(key)
    table = slot.get("genes") if isinstance(slot, Mapping) else None
    if not isinstance(table, pd.DataFrame) or not set(GENE_COLUMNS) <= set(table.columns):
        raise KeyError(
            f"No attribution results under key {key!r}; run lava_sc.explain.corpus_attribution(adata, corpus, "
            f"key_added={key!r}) or lava_sc.explain.label_free_importance(adata, key_added={key!r}) first."
        )
    if level == "groups":
        if "groups" not in slot:
            raise KeyError(
                f"No per-group attributions under key {key!r}; run "
                f"lava_sc.explain.label_free_importance(adata, groupby=..., key_added={key!r})."
            )
        return slot["groups"].copy()
    return table.copy().reset_index(drop=True)
