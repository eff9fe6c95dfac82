"""``get.summary``: one row per module, what a biologist reads first (size, genes, where it is active)."""

from __future__ import annotations

import pandas as pd
from anndata import AnnData

from .._docs import doc
from .._keys import DEFAULT_KEY
from .._params import gene_source_in_words, recorded
from .._validate import check_adata, check_float, check_int, check_key
from ._activity import activity
from ._modules import module_genes, modules

#: a module counts as active in a cell when its activity (mean correlation of its pairs) exceeds this
ACTIVE_ABOVE = 0.2


@doc()
def summary(
    adata: AnnData, *, key: str = DEFAULT_KEY, n_top_genes: int = 5, active_above: float = ACTIVE_ABOVE
) -> pd.DataFrame:
    """One row per module: its size, its top genes, how widely and where it is active.

    Columns: ``module``, ``n_genes``, ``n_pairs``, ``top_genes`` (the ``n_top_genes`` most connected,
    comma-separated), ``active_cells`` (the fraction of cells whose activity is above
    ``active_above``), and, when :func:`lava_sc.tl.modules` described the localities by an obs column
    (``groupby``, chosen automatically from ``cell_type``, ``bulk_labels``, ``leiden``, ...):
    ``top_group`` (the group with the highest mean cell activity), ``top_group_share`` (its share of
    the module's positive cell activity) and ``mixed_share`` (the share of the module's activity
    that comes from localities where no group holds 80% of the cells: high values mean the
    association may come from two populations side by side rather than from within one).

    Parameters
    ----------
    {adata_modules}
    {key}
    n_top_genes
        Genes listed per module.
    active_above
        Activity above which a cell counts as active (activity is a correlation, in [-1, 1]).

    Returns
    -------
    The table, with ``attrs``: ``groupby`` (obs column or None), ``active_above``,
    ``n_genes_tested`` and ``gene_source`` (in words: e.g. "var['highly_variable']").
    """
    check_adata(adata)
    key = check_key(key)
    n_top_genes = check_int("n_top_genes", n_top_genes, low=1)
    active_above = check_float("active_above", active_above, low=-1.0, high=1.0)
    genes = module_genes(adata, key)
    pairs = modules(adata, key)
    cells = activity(adata, key, level="cells")
    names = [str(c) for c in cells.columns]
    genes_of = genes.groupby("module", observed=False)["gene"].agg(list)
    pairs_of = pairs.groupby("module", observed=False).size()
    table = pd.DataFrame(
        {
            "module": names,
            "n_genes": [len(genes_of.get(m, [])) for m in names],
            "n_pairs": [int(pairs_of.get(m, 0)) for m in names],
            "top_genes": [", ".join(map(str, genes_of.get(m, [])[:n_top_genes])) for m in names],
            "active_cells": [float((cells[m].to_numpy() > active_above).mean()) for m in names],
        }
    )
    groupby = recorded(adata, key, "modules", "groupby")
    stats = adata.uns[key].get("module_stats")
    if groupby is not None and stats is not None and len(stats):
        by_module = stats.set_index(stats["module"].astype(str))
        for column in ("top_group", "top_group_share", "mixed_share"):
            table[column] = by_module[column].reindex(table["module"]).to_numpy()
    source = recorded(adata, key, "correlations", "genes")
    table.attrs = {
        "groupby": groupby,
        "active_above": active_above,
        "n_genes_tested": len(adata.uns[key]["genes"]),
        "gene_source": gene_source_in_words(source),
    }
    return table
