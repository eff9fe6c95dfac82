"""``get.summary``: one row per module, what a biologist reads first (size, genes, where it is active)."""

from __future__ import annotations

import pandas as pd
from anndata import AnnData

from .._docs import doc
from .._keys import DEFAULT_KEY
from .._params import gene_source_in_words, recorded
from .._validate import check_adata, check_float, check_int, check_key
from ._active import active
from ._activity import activity
from ._modules import module_genes, modules

#: how ``active_cells`` is decided by default, in words (see :func:`lava_sc.get.active`)
ACTIVE_RULE = "at least half of its pair weight significant in at least half of the cell's localities"
#: groups named in ``where_active``
WHERE_GROUPS = 2


@doc()
def summary(
    adata: AnnData, *, key: str = DEFAULT_KEY, n_top_genes: int = 5, active_above: float | None = None
) -> pd.DataFrame:
    """One row per module: its size, its top genes, how widely and where it is active.

    Columns: ``module``, ``n_genes``, ``n_pairs``, ``top_genes`` (the ``n_top_genes`` most connected,
    comma-separated), ``active_cells`` (the fraction of cells where the module is active, as
    :func:`lava_sc.get.active` decides it against each locality's permutation null, so that the share
    means the same on every dataset), ``where_active`` (with a ``groupby``: the groups that hold most
    of the active cells, each with the share of its own cells that are active, e.g. ``"CD19+ B (90%),
    Dendritic (12%)"``) and ``mixed_share`` (the share of the module's activity
    that comes from localities where no group holds 80% of the cells: high values mean the
    association may come from two populations side by side rather than from within one; read its
    ``where_active`` with care). The groups are those :func:`lava_sc.tl.modules` described the
    localities by (``groupby``, chosen automatically from ``cell_type``, ``bulk_labels``, ``leiden``,
    ...); the group with the highest mean activity is in ``uns[key]["module_stats"]``.

    Parameters
    ----------
    {adata_modules}
    {key}
    n_top_genes
        Genes listed per module.
    active_above
        ``None``: active as :func:`lava_sc.get.active` says. A number in [-1, 1]: active where the
        cell's activity (a weighted mean correlation) is above it instead, the only choice for
        :func:`lava_sc.tl.score` results, which have no permutation test; a fixed cut does not mean the
        same on sparse and dense data.

    Returns
    -------
    The table, with ``attrs``: ``groupby`` (obs column or None), ``active`` (the rule, in words),
    ``active_above`` (None or the cut),
    ``n_genes_tested`` and ``gene_source`` (in words: e.g. "var['highly_variable']").
    """
    check_adata(adata)
    key = check_key(key)
    n_top_genes = check_int("n_top_genes", n_top_genes, low=1)
    if active_above is not None:
        active_above = check_float("active_above", active_above, low=-1.0, high=1.0)
    genes = module_genes(adata, key)
    pairs = modules(adata, key)
    cells = activity(adata, key, level="cells")
    names = [str(c) for c in cells.columns]
    genes_of = genes.groupby("module", observed=False)["gene"].agg(list)
    pairs_of = pairs.groupby("module", observed=False).size()
    flags = cells > active_above if active_above is not None else active(adata, key, level="cells")
    table = pd.DataFrame(
        {
            "module": names,
            "n_genes": [len(genes_of.get(m, [])) for m in names],
            "n_pairs": [int(pairs_of.get(m, 0)) for m in names],
            "top_genes": [", ".join(map(str, genes_of.get(m, [])[:n_top_genes])) for m in names],
            "active_cells": [float(flags[m].mean()) for m in names],
        }
    )
    groupby = recorded(adata, key, "modules", "groupby")
    stats = adata.uns[key].get("module_stats")
    if groupby is not None and groupby in adata.obs:
        table["where_active"] = [where_active(flags[m], adata.obs[groupby]) for m in names]
    if groupby is not None and stats is not None and len(stats):
        by_module = stats.set_index(stats["module"].astype(str))
        table["mixed_share"] = by_module["mixed_share"].reindex(table["module"]).to_numpy()
    source = recorded(adata, key, "correlations", "genes")
    table.attrs = {
        "groupby": groupby,
        "active": ACTIVE_RULE if active_above is None else f"activity above {active_above:g}",
        "active_above": active_above,
        "n_genes_tested": len(adata.uns[key]["genes"]),
        "gene_source": gene_source_in_words(source),
    }
    return table


def where_active(flags: pd.Series, groups: pd.Series, n_groups: int = WHERE_GROUPS) -> str:
    """The groups holding most of a module's active cells, each with the share of its cells active,
    e.g. ``"CD14+ Monocyte (85%), Dendritic (40%)"``; ``""`` when no cell is active."""
    by_group = flags.groupby(groups.to_numpy(), observed=True).agg(["sum", "mean"])
    by_group = by_group[by_group["sum"] > 0].sort_values("sum", ascending=False, kind="stable")
    return ", ".join(f"{name} ({share:.0%})" for name, share in by_group["mean"].head(n_groups).items())
