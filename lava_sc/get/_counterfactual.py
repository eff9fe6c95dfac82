"""``get.counterfactual`` and ``get.faithfulness``: the tables of DAC and of module faithfulness."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import pandas as pd
from anndata import AnnData

from .._keys import DAC_KEY, FAITHFULNESS_KEY
from .._utils import renamed_keyword
from .._validate import check_adata, check_choice, check_key

#: tables written by :func:`lava_sc.explain.counterfactual_attribution`
DAC_TABLES = ("genes", "curve", "pairs")

#: tables written by :func:`lava_sc.explain.module_faithfulness`
FAITHFULNESS_TABLES = ("modules", "pairs")


@renamed_keyword("key_added", "key")
def counterfactual(
    adata: AnnData, key: str = DAC_KEY, *, table: Literal["genes", "curve", "pairs"] = "genes"
) -> pd.DataFrame:
    """A table of :func:`lava_sc.explain.counterfactual_attribution` (a copy).

    Parameters
    ----------
    adata
        Annotated data matrix with results of :func:`lava_sc.explain.counterfactual_attribution`.
    key
        The ``key_added`` the tool wrote to.
    table
        ``"genes"`` (default): ``gene, weight, mean_attribution, mean_abs_attribution, top_fraction``,
        most attributed first; ``"curve"``: ``mask_size, mask_fraction, restored_attribution,
        restored_random``; ``"pairs"``: each query cell with its counterfactual. The scalars
        (``dac_auc``, ``random_auc``, ``classifier_accuracy``) are in ``adata.uns[key]``.

    Returns
    -------
    The table as a DataFrame.

    Examples
    --------
    >>> lv.get.counterfactual(adata).head(10)  # doctest: +SKIP
    >>> lv.get.counterfactual(adata, table="curve")  # doctest: +SKIP
    """
    return _table(adata, key, table, DAC_TABLES, "counterfactual_attribution", "group_a, group_b, ")


@renamed_keyword("key_added", "key")
def faithfulness(
    adata: AnnData, key: str = FAITHFULNESS_KEY, *, table: Literal["modules", "pairs"] = "modules"
) -> pd.DataFrame:
    """A table of :func:`lava_sc.explain.module_faithfulness` (a copy).

    Parameters
    ----------
    adata
        Annotated data matrix with results of :func:`lava_sc.explain.module_faithfulness`.
    key
        The ``key_added`` the tool wrote to.
    table
        ``"modules"`` (default): one row per module, ``module, n_genes, n_genes_used, restored,
        random_mean, random_sd, random_median, zscore, pvalue, qvalue``; ``"pairs"``: each query cell
        with its counterfactual.

    Returns
    -------
    The table as a DataFrame.
    """
    return _table(adata, key, table, FAITHFULNESS_TABLES, "module_faithfulness", "group_a, group_b, ")


def _table(adata: AnnData, key: str, table: str, tables, tool: str, args: str) -> pd.DataFrame:
    check_adata(adata)
    key = check_key(key)
    table = check_choice("table", table, tables)
    slot = adata.uns.get(key)
    if not isinstance(slot, Mapping) or table not in slot:
        raise KeyError(
            f"No {tool} results under adata.uns[{key!r}]; run "
            f"lava_sc.explain.{tool}(adata, groupby, {args}key_added={key!r}) first."
        )
    return slot[table].copy()
