"""``get.modules`` and ``get.module_genes``: a module's gene pairs and its genes."""

from __future__ import annotations

import pandas as pd
from anndata import AnnData

from .._docs import doc
from .._keys import DEFAULT_KEY, Keys
from .._validate import check_adata, check_key, require


@doc()
def modules(adata: AnnData, key: str = DEFAULT_KEY) -> pd.DataFrame:
    """One row per association in a module: ``module, gene_a, gene_b, weight, support``.

    ``weight`` is the mean correlation of the pair over the localities where it is significant and
    ``support`` the number of those localities.

    Parameters
    ----------
    {adata_modules}
    {key}

    Returns
    -------
    A copy of ``uns[key]["modules"]``.
    """
    return _table(adata, key, Keys.modules)


@doc()
def module_genes(adata: AnnData, key: str = DEFAULT_KEY) -> pd.DataFrame:
    """The genes of each module: ``module, gene, score, sign``.

    ``score`` is the gene's weighted degree in the module, ``sum |w|`` over its pairs, scaled so the
    module's most connected gene scores 1. ``sign`` is the gene's side: +1 for the genes that rise with
    the module's hub gene, -1 for those that fall as it rises (anti-correlated pairs, found with
    ``tl.correlations(alternative="two-sided")``); a module of correlated pairs only is all +1.

    Parameters
    ----------
    {adata_modules}
    {key}

    Returns
    -------
    A copy of ``uns[key]["module_genes"]``, the genes a user reads as each module.
    """
    return _table(adata, key, Keys.module_genes)


def _table(adata: AnnData, key: str, entry: str) -> pd.DataFrame:
    check_adata(adata)
    check_key(key)
    require(adata, key, entry, "modules")
    return adata.uns[key][entry].copy()
