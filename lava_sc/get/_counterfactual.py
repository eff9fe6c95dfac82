from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
from anndata import AnnData

from .._keys import DAC_KEY, FAITHFULNESS_KEY
from .._validate import check_adata, check_choice, check_key

#: tables written by :func:`lava_sc.tl.counterfactual_attribution`
DAC_TABLES = ("genes", "curve", "pairs")

#: tables written by :func:`lava_sc.tl.module_faithfulness`
FAITHFULNESS_TABLES = ("modules", "pairs")


def counterfactual(adata: AnnData, key_added: str = DAC_KEY, *, table: str = "genes") -> pd.DataFrame:
    """A table of :func:`lava_sc.tl.counterfactual_attribution` (a copy).

    Parameters
    ----------
    adata
        Annotated data matrix with results of :func:`lava_sc.tl.counterfactual_attribution`.
    key_added
        The ``key_added`` the tool wrote to.
    table
        ``"genes"`` (default): ``gene, weight, mean_attribution, mean_abs_attribution, top_fraction``,
        most attributed first; ``"curve"``: ``mask_size, mask_fraction, restored_attribution,
        restored_random``; ``"pairs"``: each query cell with its counterfactual. The scalars
        (``dac_auc``, ``random_auc``, ``classifier_accuracy``) are in ``adata.uns[key_added]``.

    Returns
    -------
    The table as a DataFrame.

    Examples
    --------
    >>> lv.get.counterfactual(adata).head(10)  # doctest: +SKIP
    >>> lv.get.counterfactual(adata, table="curve")  # doctest: +SKIP
    """
    return _table(adata, key_added, table, DAC_TABLES, "counterfactual_attribution", "group_a, group_b, ")


def faithfulness(adata: AnnData, key_added: str = FAITHFULNESS_KEY, *, table: str = "modules") -> pd.DataFrame:
    """A table of :func:`lava_sc.tl.module_faithfulness` (a copy).

    Parameters
    ----------
    adata
        Annotated data matrix with results of :func:`lava_sc.tl.module_faithfulness`.
    key_added
        The ``key_added`` the tool wrote to.
    table
        ``"modules"`` (default): one row per module, ``module, n_genes, n_genes_used, restored,
        random_mean, random_sd, random_median, zscore, pvalue, qvalue``; ``"pairs"``: each query cell
        with its counterfactual.

    Returns
    -------
    The table as a DataFrame.
    """
    return _table(adata, key_added, table, FAITHFULNESS_TABLES, "module_faithfulness", "group_a, group_b, ")


def _table(adata: AnnData, key_added: str, table: str, tables, tool: str, args: str) -> pd.DataFrame:
    check_adata(adata)
    key_added = check_key(key_added)
    table = check_choice("table", table, tables)
    slot = adata.uns.get(key_added)
    if not isinstance(slot, Mapping) or table not in slot:
        raise KeyError(
            f"No {tool} results under adata.uns[{key_added!r}]; run "
            f"lava_sc.tl.{tool}(adata, groupby, {args}key_added={key_added!r}) first."
        )
    return slot[table].copy()
