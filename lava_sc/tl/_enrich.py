"""``tl.enrich``: over-representation of gene sets in each module's genes (Fisher's exact test, BH)."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData
from scipy.stats import hypergeom

from .. import _logging as logg
from .._adata import writable
from .._core.stats import benjamini_hochberg
from .._docs import doc
from .._keys import DEFAULT_KEY, Keys
from .._params import gene_source_in_words, recorded, store_params
from .._utils import log_added, store
from .._validate import check_adata, check_int, check_key
from ..io import as_gene_sets

COLUMNS = [
    "module",
    "gene_set",
    "overlap",
    "module_size",
    "set_size",
    "universe_size",
    "odds_ratio",
    "pvalue",
    "qvalue",
    "genes",
]


@doc()
def enrich(
    adata: AnnData,
    gene_sets,
    *,
    key: str = DEFAULT_KEY,
    universe=None,
    min_size: int = 3,
    max_size: int = 500,
    copy: bool = False,
) -> AnnData | None:
    """Over-representation of known gene sets among each module's genes (hypergeometric test).

    For every module (its genes in ``uns[key]["module_genes"]``) and every gene set, the overlap is
    tested against the hypergeometric distribution of drawing the module's genes from the
    ``universe`` (one-sided: more overlap than chance; the p-value of Fisher's exact test with
    ``alternative="greater"``). Gene sets are first intersected with the universe and kept when they
    then have between ``min_size`` and ``max_size`` genes. p-values are adjusted with
    Benjamini-Hochberg across all (module, set) tests.

    Parameters
    ----------
    {adata_modules}
    gene_sets
        A ``dict`` set name -> genes, a GMT file path (see :func:`lava_sc.io.read_gmt`) or a
        decoupler-style net DataFrame (``source`` = set name, ``target`` = gene; ``weight`` ignored).
        Names and genes must be strings.
    {key}
    universe
        Genes that could have been found (a list of names). Default: the genes LAVA tested,
        ``uns[key]["genes"]`` (the right background: a module can only contain tested genes). Module
        genes outside the universe are ignored.
    min_size, max_size
        Gene sets with fewer / more genes in the universe are not tested (the number dropped is
        logged). An error is raised when no set is left, e.g. when no set shares a gene with the
        universe (gene naming mismatch).
    {copy}

    Returns
    -------
    ``None`` or the copy. Writes ``uns[key]["enrichment"]``, one row per (module, set) with at least
    one shared gene, sorted by module then p-value: ``module``, ``gene_set``, ``overlap`` (shared
    genes), ``module_size`` and ``set_size`` (genes in the universe), ``universe_size``,
    ``odds_ratio`` (the sample odds ratio of the 2 x 2 table, as :func:`scipy.stats.fisher_exact`;
    ``inf`` when the module lies inside the set), ``pvalue``, ``qvalue`` (BH over all tests,
    including pairs without overlap, whose p-value is 1) and ``genes`` (the shared genes, ``;``-joined,
    by decreasing module score); and ``uns[key]["params"]["enrich"]``. Read it with
    :func:`lava_sc.get.enrichment`.

    Examples
    --------
    >>> import lava_sc as lv
    >>> lv.tl.enrich(adata, "h.all.v2024.1.Hs.symbols.gmt")  # doctest: +SKIP
    >>> lv.get.enrichment(adata, q_max=0.05)  # doctest: +SKIP
    """
    check_adata(adata)
    key = check_key(key)
    min_size = check_int("min_size", min_size, low=1)
    max_size = check_int("max_size", max_size, low=1)
    if max_size < min_size:
        raise ValueError(f"`max_size` ({max_size}) must be >= `min_size` ({min_size}).")
    if key not in adata.uns or Keys.module_genes not in adata.uns[key] or Keys.genes not in adata.uns[key]:
        raise KeyError(f"No LAVA modules under key {key!r}; run lava_sc.tl.modules(adata, key={key!r}) first.")
    sets = as_gene_sets(gene_sets)
    universe_index = resolve_universe(adata.uns[key][Keys.genes], universe)
    modules = module_gene_lists(adata.uns[key][Keys.module_genes], universe_index)
    if not modules:
        raise ValueError(
            f"No LAVA module under key {key!r} has genes in the universe, so there is nothing to test; "
            "rerun lava_sc.tl.modules (lower `min_support`/`min_genes`) or widen `universe`."
        )
    kept = filter_sets(sets, universe_index, min_size, max_size)
    if universe is None:
        warn_untested(sets, adata.var_names, universe_index, recorded(adata, key, "correlations", "genes"))

    adata = writable(adata, copy)
    start = logg.info(f"testing {len(modules)} modules against {len(kept)} gene sets")
    result, n_tests = enrichment_table(modules, kept, universe_index)
    store(adata, key, **{Keys.enrichment: result})
    store_params(
        adata,
        key,
        "enrich",
        dict(
            gene_sets=str(gene_sets) if isinstance(gene_sets, (str, os.PathLike)) else type(gene_sets).__name__,
            universe="tested genes" if universe is None else "custom",
            universe_size=len(universe_index),
            min_size=min_size,
            max_size=max_size,
            n_sets=len(sets),
            n_sets_tested=len(kept),
            n_tests=n_tests,
            statistic="hypergeometric (one-sided), odds_ratio = sample odds ratio",
            correction="benjamini-hochberg",
        ),
    )
    log_added(
        f"{int((result['qvalue'] < 0.05).sum())} enrichments with q < 0.05 from {n_tests} tests",
        start,
        [f"'{key}': 'enrichment' (adata.uns)"],
    )
    return adata if copy else None


def resolve_universe(tested, universe) -> pd.Index:
    """The universe as a unique index of gene names."""
    if universe is None:
        return pd.Index(np.asarray(tested, dtype=object).astype(str)).unique()  # zarr may read StringDType
    if isinstance(universe, str) or not np.iterable(universe):
        raise TypeError(f"`universe` must be a list of gene names or None, got {type(universe).__name__}.")
    values = list(universe)
    bad = [g for g in values if not isinstance(g, str)]
    if bad:
        raise TypeError(f"`universe` must hold gene names (strings), found {bad[0]!r}; convert with str().")
    index = pd.Index(values, dtype=object).unique()
    if len(index) < 2:
        raise ValueError(f"`universe` has {len(index)} gene(s); pass all genes that could be in a module.")
    return index


def module_gene_lists(table: pd.DataFrame, universe: pd.Index) -> dict[str, list[str]]:
    """Each module's genes in the universe, by decreasing score (modules in their stored order)."""
    labels = table["module"]
    names = list(labels.cat.categories) if isinstance(labels.dtype, pd.CategoricalDtype) else list(pd.unique(labels))
    out = {}
    outside = 0
    for name in names:
        sub = table.loc[labels == name].sort_values("score", ascending=False, kind="stable")
        genes = sub["gene"].astype(str)
        inside = genes[genes.isin(universe)].tolist()
        outside += len(genes) - len(inside)
        if inside:
            out[str(name)] = inside
    if outside:
        logg.warning(f"{outside} module gene(s) are not in the universe and are ignored.")
    return out


#: genes named in a warning
N_EXAMPLES = 6


def warn_untested(sets: dict[str, list[str]], var_names: pd.Index, tested: pd.Index, source: str | None) -> None:
    """Warn about set genes that are in ``adata`` but were not tested: no module can contain them."""
    known, tried = set(var_names), set(tested)
    missed = {name: [g for g in genes if g in known and g not in tried] for name, genes in sets.items()}
    missed = {name: genes for name, genes in missed.items() if genes}
    if not missed:
        return
    genes = list(dict.fromkeys(g for found in missed.values() for g in found))
    worst = max(missed, key=lambda name: len(missed[name]))
    logg.warning(
        f"tl.enrich: {len(genes)} gene(s) of the gene sets are in adata but were not tested by tl.correlations "
        f"(e.g. {', '.join(genes[:N_EXAMPLES])}; {len(missed[worst])} of them in {worst!r}), so no module can "
        f"contain them. The genes tested were {gene_source_in_words(source)}; to test these too, rerun "
        "lava_sc.tl.correlations(adata, genes=...) with them added, e.g. "
        "genes=adata.var['highly_variable'] | adata.var_names.isin(my_genes)."
    )


def filter_sets(sets: dict[str, list[str]], universe: pd.Index, min_size: int, max_size: int) -> dict[str, list[str]]:
    """Sets intersected with the universe, kept when their size is in [min_size, max_size]."""
    known = set(universe)
    inter = {name: [g for g in genes if g in known] for name, genes in sets.items()}
    sizes = np.array([len(g) for g in inter.values()])
    empty, small, large = (
        int((sizes == 0).sum()),
        int(((sizes > 0) & (sizes < min_size)).sum()),
        int((sizes > max_size).sum()),
    )
    if empty == len(sets):
        raise ValueError(
            f"None of the {len(sets)} gene set(s) shares a gene with the universe ({len(universe)} genes, e.g. "
            f"{universe[:3].tolist()}); check the gene naming (symbols vs Ensembl ids, species, case) or pass `universe=`."
        )
    kept = {name: genes for name, genes in inter.items() if min_size <= len(genes) <= max_size}
    if empty + small + large:
        logg.info(
            f"    dropped {empty + small + large} of {len(sets)} gene sets: {empty} share no gene with the universe, "
            f"{small} have fewer than {min_size} and {large} more than {max_size} genes in it"
        )
    if not kept:
        nonzero = sizes[sizes > 0]
        raise ValueError(
            f"No gene set has between {min_size} and {max_size} genes in the universe (sizes there range "
            f"{int(nonzero.min())}-{int(nonzero.max())}); change `min_size` / `max_size`."
        )
    return kept


def membership_matrix(groups: dict[str, list[str]], universe: pd.Index) -> sp.csr_matrix:
    """Groups x universe boolean incidence."""
    cols = np.concatenate([universe.get_indexer(g) for g in groups.values()])
    rows = np.repeat(np.arange(len(groups)), [len(g) for g in groups.values()])
    return sp.csr_matrix((np.ones(len(cols)), (rows, cols)), shape=(len(groups), len(universe)))


def enrichment_table(
    modules: dict[str, list[str]], sets: dict[str, list[str]], universe: pd.Index
) -> tuple[pd.DataFrame, int]:
    """Tests of every module against every set; rows with overlap > 0 and the number of tests."""
    n_universe = len(universe)
    mod_m = membership_matrix(modules, universe)
    set_m = membership_matrix(sets, universe)
    overlap = np.asarray((mod_m @ set_m.T).toarray()).astype(np.int64)
    module_size = np.array([len(g) for g in modules.values()])[:, None]
    set_size = np.array([len(g) for g in sets.values()])[None, :]
    pvalue = hypergeometric_pvalues(overlap, n_universe, set_size, module_size)
    qvalue = benjamini_hochberg(pvalue.ravel()).reshape(pvalue.shape)
    odds = odds_ratio(overlap, n_universe, set_size, module_size)
    mi, si = np.nonzero(overlap > 0)
    set_names = list(sets)
    set_genes = [set(g) for g in sets.values()]
    module_names = list(modules)
    shared = [";".join(g for g in modules[module_names[m]] if g in set_genes[s]) for m, s in zip(mi, si, strict=True)]
    table = pd.DataFrame(
        {
            "module": pd.Categorical([module_names[m] for m in mi], categories=module_names),
            "gene_set": [set_names[s] for s in si],
            "overlap": overlap[mi, si],
            "module_size": module_size[mi, 0],
            "set_size": set_size[0, si],
            "universe_size": np.full(len(mi), n_universe, dtype=np.int64),
            "odds_ratio": odds[mi, si],
            "pvalue": pvalue[mi, si],
            "qvalue": qvalue[mi, si],
            "genes": shared,
        },
        columns=COLUMNS,
    )
    order = np.lexsort((table["gene_set"].to_numpy(dtype=str), table["pvalue"].to_numpy(), table["module"].cat.codes))
    return table.iloc[order].reset_index(drop=True), int(overlap.size)


def hypergeometric_pvalues(overlap, n_universe: int, set_size, module_size) -> np.ndarray:
    """P(X >= overlap) for X ~ Hypergeometric(universe, set size, module size)."""
    return np.clip(hypergeom.sf(overlap - 1, n_universe, set_size, module_size), 0.0, 1.0)


def odds_ratio(overlap, n_universe: int, set_size, module_size) -> np.ndarray:
    """Sample odds ratio ``(a d) / (b c)`` of the 2 x 2 table, ``inf`` when ``b c = 0`` (as scipy's fisher_exact)."""
    a = overlap.astype(np.float64)
    b = module_size - a  # in module, not in set
    c = set_size - a  # in set, not in module
    d = n_universe - module_size - set_size + a
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((b > 0) & (c > 0), a * d / np.maximum(b * c, 1), np.inf)
