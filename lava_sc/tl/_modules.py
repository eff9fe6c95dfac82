"""``tl.modules``: modules of gene-gene associations that recur across localities (Leiden or NMF on
the pair graph), their genes, and their activity per locality and per cell."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from .. import _logging as logg
from .._adata import covariates, ensure_localities, gene_columns, invalidate, nearest_probe, writable
from .._core import distributed
from .._core.chance import chance_support
from .._core.modules import (
    cell_activity,
    gene_scores,
    gene_sides,
    leiden_pair_modules,
    merge_overlapping,
    module_support,
    nmf_pair_modules,
    order_modules,
    placement_majority,
    split_large,
)
from .._core.score import module_set_activity
from .._docs import doc
from .._keys import DEFAULT_KEY, Keys, locality_names, module_names
from .._params import CorrelationsSettings, ModulesSettings, upstream_of
from .._utils import explained_memory_error, log_added, progress, restore_on_error, store
from .._validate import (
    check_adata,
    check_choice,
    check_float,
    check_int,
    check_key,
    check_localities,
    expression,
    require,
)
from ._correlations import FEWER_GENES, correlations
from ._populations import (
    between_population_modules,
    composition_entry,
    composition_table,
    group_codes,
    group_indicators,
    log_groupby,
    module_stats,
    resolve_groupby,
)


@explained_memory_error("tl.modules", FEWER_GENES)
@doc()
@distributed.one_statistics_pass()  # a lazy X: finite check, variances and floors in one pass
def modules(
    adata: AnnData,
    *,
    key: str = DEFAULT_KEY,
    method: Literal["leiden", "nmf"] = "leiden",
    resolution: float = 1.0,
    rank: int = 10,
    min_support: int | Literal["auto"] = "auto",
    min_genes: int = 4,
    max_genes: int | None = 50,
    merge_overlap: float = 0.8,
    n_neighbors: int = 15,
    groupby: str | None = "auto",
    between_populations: Literal["drop", "keep"] = "drop",
    basis: str = "X_umap",
    layer: str | None = None,
    random_state: int = 0,
    copy: bool = False,
) -> AnnData | None:
    """Find modules: gene pairs that switch on together across localities, wherever those lie (LAVA step 3).

    Runs :func:`~lava_sc.tl.localities` (on ``basis``) and :func:`~lava_sc.tl.correlations` (with
    ``layer``) with their defaults first if they have not been run under ``key``.

    Parameters
    ----------
    adata
        Annotated data matrix.
    {key}
    method
        ``"leiden"`` (default): Leiden on a graph of significant pairs, where pairs sharing a gene are
        linked by the cosine similarity of their locality profiles. ``"nmf"``: non-negative
        factorisation of the localities x pairs association matrix.
    resolution
        Leiden resolution of the pair graph. Without ``max_genes`` higher gives more, smaller
        modules; with it, size is set mostly by ``max_genes`` (the granularity knob, monotone in
        module size), and a higher resolution need not give smaller modules: on MNIST
        ``resolution=4`` gave 29 modules of median 25 pixels against the default's 55 of median 16
        (tutorial 03), because fewer communities reach the split and overlapping parts are merged.
    rank
        Number of NMF components (``method="nmf"``); higher gives more, smaller modules.
    min_support
        Pairs significant in fewer localities are ignored (recurring evidence only); with several
        placements (``tl.localities(n_placements=)``), so are pairs significant in localities of at
        most half of them, and ``"auto"`` counts only the pairs left. ``"auto"``
        (default): at least the support that fewer than one tested pair reaches at the uniform
        Poisson rate of single-locality discoveries, raised until chance pairs are expected to be at
        most 5% of the pairs kept, with chance recurrence modelled per pair as negative binomial
        (well-expressed genes collect more chance discoveries, overlapping localities share them;
        :mod:`lava_sc._core.chance`). It stays 2 for a few hundred localities and rises with their
        number (5-6 at a million cells, 12 at five million), where pairs recurring in a few localities
        are mostly chance.
    min_genes
        Smallest module, in genes. A module keeps only genes that take part in at least two of its
        pairs (its 2-core): a gene attached by a single association is more likely a stray.
    max_genes
        Granularity: the largest module, in genes. A community of the pair graph with more genes is
        split by Leiden on its own pairs at doubled resolution until every part fits (modules within
        the limit are untouched, so module size only grows with ``max_genes``). Where correlation is
        dense (image pixels, a large programme) this reports its tightest parts; a programme larger
        than ``max_genes`` comes out as several modules active in the same places. ``None``: no limit
        (``resolution`` alone sets the granularity).
    merge_overlap
        Modules whose gene sets overlap by at least this fraction of the smaller set are merged:
        they are one program found in separate regions. ``1.0`` merges only nested modules; values
        above 1 disable merging.
    n_neighbors
        Strongest neighbours kept per pair in the Leiden pair graph.
    groupby
        Column of ``adata.obs`` with the populations (cell types or clusters). ``"auto"`` (default) takes
        the first categorical column named like ``cell_type``, ``bulk_labels``, ``leiden``, ``louvain``
        or ``clusters`` (logged); ``None`` skips the check. Each locality's composition is stored, and
        each module's activity is recomputed with the population indicators partialled out inside every
        locality. A locality of one population is unchanged by this; where a locality straddles two
        populations, pairs that correlate only through the populations' different means lose their
        correlation. ``within_group_ratio`` (activity kept / activity before, over the localities where
        the module is active) below 0.5 marks a module that is a between-population mean difference,
        not a programme that varies within a population. Differences between conditions *within* a
        population (disease cells beside healthy ones) are kept: only ``groupby`` is partialled out.
    between_populations
        What to do with the modules that are mostly a between-population difference: ``"drop"``
        (default; logged with their genes) or ``"keep"`` (reported, flagged in ``uns[key]["module_stats"]``).
    basis, layer
        Used only when localities or correlations must be computed first.
    random_state
        Seed for Leiden / NMF (and for missing steps).
    {copy}

    Returns
    -------
    ``None`` or the copy. Writes ``uns[key]["modules"]`` (``module, gene_a, gene_b, weight, support``),
    ``uns[key]["module_genes"]`` (``module, gene, score, sign``), ``uns[key]["locality_activity"]``
    (localities x modules: weighted mean correlation of the module's pairs in each locality),
    ``uns[key]["locality_support"]`` (localities x modules: the share of the module's pair weight found
    significant, with the module's sign, by the permutation test in each locality; the module is
    *active* there when the share is at least 0.5, see :func:`lava_sc.get.active`),
    ``obsm[f"{key}_activity"]`` (cells x modules: mean over the localities containing the cell; cells
    in no locality take the nearest probe's value), ``uns[key]["module_stats"]`` (one row per module:
    ``module``, ``n_genes``, ``within_group_ratio``, ``mixed_share`` (share of its positive locality
    activity in localities where no ``groupby`` group holds 80% of the cells), ``top_group`` (highest
    mean cell activity), ``top_group_share``, ``mixed`` (``mixed_share >= 0.5``); NaN without
    ``groupby``) and, with ``groupby``, ``uns[key]["locality_composition"]`` (read it with
    :func:`lava_sc.get.locality_composition`).
    """
    check_adata(adata)
    key = check_key(key)
    check_choice("method", method, ("leiden", "nmf"))
    resolution = check_float("resolution", resolution, low=0.0, open_low=True)
    rank = check_int("rank", rank, low=1)
    if not (isinstance(min_support, str) and min_support == "auto"):
        min_support = check_int("min_support", min_support, low=1)
    min_genes = check_int("min_genes", min_genes, low=2)
    if max_genes is not None:
        max_genes = check_int("max_genes", max_genes, low=2)
    merge_overlap = check_float("merge_overlap", merge_overlap, low=0.0, open_low=True)
    n_neighbors = check_int("n_neighbors", n_neighbors, low=1)
    random_state = check_int("random_state", random_state, low=0)
    check_choice("between_populations", between_populations, ("drop", "keep"))
    requested_groupby = groupby
    groupby = resolve_groupby(adata, groupby)
    adata = writable(adata, copy)
    with restore_on_error(adata):  # interrupted (Ctrl-C) or failed: adata as it was
        keys = Keys(key)
        ensure_localities(adata, key, basis, random_state)
        if "sketch" not in adata.uns[key]:
            correlations(adata, layer=layer, key=key, random_state=random_state)
        require(adata, key, "sketch", "correlations")
        check_localities(adata, key, sketch=True)

        start = logg.info(f"finding LAVA modules ({method})")
        slot = adata.uns[key]
        gene_names = np.asarray(slot["genes"], dtype=object).astype(str)  # zarr may read StringDType
        pairs = slot["pairs"]
        sketch = sp.csr_matrix(slot["sketch"])
        gene_index = pd.Index(gene_names)
        ga = gene_index.get_indexer(pairs["gene_a"].astype(str))
        gb = gene_index.get_indexer(pairs["gene_b"].astype(str))
        support = pairs["support"].to_numpy() * placement_majority(sketch, locality_placement(slot, sketch.shape[0]))
        min_support_used = chance_support(support, ga, gb, len(gene_names)) if min_support == "auto" else min_support
        recurring = np.flatnonzero(support >= min_support_used)

        labels = np.full(len(pairs), -1, dtype=np.int64)
        if len(recurring) >= 2:
            sub = sketch[:, recurring]
            if method == "leiden":
                sub_labels = leiden_pair_modules(
                    sub,
                    ga[recurring],
                    gb[recurring],
                    resolution=resolution,
                    n_neighbors=n_neighbors,
                    random_state=random_state,
                )
            else:
                sub_labels, _ = nmf_pair_modules(sub, rank=rank, random_state=random_state)
            if max_genes is not None:
                sub_labels = split_large(
                    sub_labels,
                    sub,
                    ga[recurring],
                    gb[recurring],
                    max_genes=max_genes,
                    resolution=resolution,
                    n_neighbors=n_neighbors,
                    random_state=random_state,
                )
            labels[recurring] = sub_labels
        labels = prune_to_core_genes(labels, ga, gb)
        labels = merge_overlapping(labels, ga, gb, merge_overlap, max_genes)
        labels = order_modules(labels, ga, gb, min_genes)
        names = module_names(int(labels.max(initial=-1)) + 1)

        table, gene_table = module_tables(labels, ga, gb, pairs, gene_names, names)
        loc_act = locality_activity(adata, key, table, gene_index, names)
        support = module_support(sketch, labels, pairs["mean_r"].to_numpy(), len(names))
        nearest = nearest_probe(adata, key)
        cell_act = cell_activity(adata.obsm[keys.obsm_localities], loc_act, nearest)
        log_groupby(groupby, requested_groupby)
        stats, composition, dropped = population_check(adata, key, groupby, table, gene_index, names, loc_act, cell_act)
        if dropped and between_populations == "drop":
            logg.warning(
                f"dropped {len(dropped)} module(s) that are mostly a difference between the means of the "
                f"{groupby!r} groups in straddling localities: "
                + "; ".join(f"{m} ({', '.join(gene_table.loc[gene_table.module == m, 'gene'][:4])})" for m in dropped)
                + " (between_populations='keep' reports them)"
            )
            keep = [i for i, m in enumerate(names) if m not in dropped]
            old_names = names
            labels = np.where(np.isin(labels, [i for i, m in enumerate(old_names) if m in dropped]), -1, labels)
            labels = order_modules(labels, ga, gb, min_genes)
            names = module_names(len(keep))
            table, gene_table = module_tables(labels, ga, gb, pairs, gene_names, names)
            loc_act, cell_act, support = loc_act[:, keep], cell_act[:, keep], support[:, keep]
            stats = stats.iloc[keep].reset_index(drop=True)
            stats["module"] = names
        stats.insert(1, "n_genes", gene_table.groupby("module", observed=False).size().reindex(names).to_numpy())
        invalidate(adata, key, "modules")
        store(
            adata,
            key,
            modules=table,
            module_genes=gene_table,
            locality_activity=pd.DataFrame(loc_act, index=locality_names(len(loc_act)), columns=names),
            locality_support=pd.DataFrame(support, index=locality_names(len(support)), columns=names),
            module_stats=stats,
        )
        if composition is not None:
            store(adata, key, locality_composition=composition)
        adata.obsm[keys.obsm_activity] = pd.DataFrame(cell_act, index=adata.obs_names.copy(), columns=names)
        ModulesSettings(
            method=method,
            resolution=resolution,
            rank=rank,
            min_support=min_support,
            min_support_used=int(min_support_used),
            min_genes=min_genes,
            max_genes=max_genes,
            merge_overlap=merge_overlap,
            n_neighbors=n_neighbors,
            groupby=groupby,
            between_populations=between_populations,
            n_between_population=len(dropped),
            random_state=random_state,
        ).store(
            adata,
            key,
            upstream=upstream_of(adata, key, "localities", "correlations"),
            result=(table, adata.obsm[keys.obsm_activity]),
        )
        log_added(
            f"{len(names)} modules from {len(recurring)} pairs found in >= {min_support_used} localities",
            start,
            [
                f"'{key}': 'modules', 'module_genes', 'locality_activity', 'locality_support', 'module_stats'"
                + (", 'locality_composition'" if groupby is not None else "")
                + " (adata.uns)",
                f"'{keys.obsm_activity}', module activity per cell (adata.obsm)",
            ],
        )
    return adata if copy else None


def population_check(adata, key, groupby, table, gene_index, names, loc_act, cell_act):
    """Locality composition, per-module statistics and the between-population modules (see ``groupby``)."""
    if groupby is None or not names:
        return module_stats(names, loc_act, None, None, None, None, None), None, []
    codes, groups = group_codes(adata, groupby)
    membership = adata.obsm[Keys(key).obsm_localities]
    composition = composition_table(membership, adata.obs[groupby])
    within = locality_activity(
        adata, key, table, gene_index, names, extra_covariates=group_indicators(codes, len(groups))
    )
    stats = module_stats(names, loc_act, within, composition["purity"].to_numpy(), cell_act, codes, groups)
    return stats, composition_entry(composition, groupby), between_population_modules(stats)


def locality_placement(slot, n_localities: int) -> np.ndarray:
    """Localities x placements: the placements holding each locality (``tl.localities(n_placements=)``)."""
    held = slot.get("localities", {}).get("in_placement")
    if held is None or np.ndim(held) != 2 or len(held) != n_localities:
        return np.ones((n_localities, 1), dtype=bool)
    return np.asarray(held, dtype=bool)


def prune_to_core_genes(labels: np.ndarray, ga: np.ndarray, gb: np.ndarray) -> np.ndarray:
    """Drop module pairs touching a gene with only one pair in that module (a stray association).

    Repeated until every remaining gene has at least two pairs in its module (the 2-core of the
    module's gene graph). A module that is a star or a chain has no such core and vanishes;
    ``order_modules`` drops cores with fewer than ``min_genes`` genes.
    """
    out = labels.copy()
    for lab in np.unique(labels[labels >= 0]):
        sel = np.flatnonzero(labels == lab)
        keep = np.ones(len(sel), dtype=bool)
        while True:
            genes, counts = np.unique(np.concatenate([ga[sel[keep]], gb[sel[keep]]]), return_counts=True)
            stray_genes = genes[counts < 2]
            if len(stray_genes) == 0:
                break
            keep &= ~(np.isin(ga[sel], stray_genes) | np.isin(gb[sel], stray_genes))
        out[sel[~keep]] = -1
    return out


def module_tables(labels, ga, gb, pairs: pd.DataFrame, gene_names, names) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The pair table (module, gene_a, gene_b, weight, support) and the gene table (module, gene, score, sign)."""
    in_module = np.flatnonzero(labels >= 0)
    weight = pairs["mean_r"].to_numpy(dtype=np.float64)
    support = pairs["support"].to_numpy(dtype=np.int64)
    table = pd.DataFrame(
        {
            "module": [names[i] for i in labels[in_module]],
            "gene_a": gene_names[ga[in_module]].tolist(),
            "gene_b": gene_names[gb[in_module]].tolist(),
            "weight": weight[in_module],
            "support": support[in_module],
        }
    )
    order = np.lexsort((-table["weight"].to_numpy(), labels[in_module]))
    table = table.iloc[order].reset_index(drop=True)
    rows = []
    for m, name in enumerate(names):
        sel = labels == m
        score = gene_scores(ga[sel], gb[sel], weight[sel] * support[sel], len(gene_names))
        sides = gene_sides(ga[sel], gb[sel], weight[sel] * support[sel], len(gene_names))
        for g in np.argsort(-score, kind="stable"):
            if score[g] > 0:
                rows.append((name, str(gene_names[g]), float(score[g]), int(sides[g])))
    gene_table = pd.DataFrame(rows, columns=["module", "gene", "score", "sign"])
    for df in (table, gene_table):
        df["module"] = pd.Categorical(df["module"], categories=names)
    return table, gene_table


def locality_activity(
    adata: AnnData, key: str, table: pd.DataFrame, gene_index: pd.Index, names, extra_covariates=None
) -> np.ndarray:
    """Weighted mean correlation of each module's pairs inside each locality (localities x modules).

    As in ``tl.correlations``, a pair counts as 0 in a locality where one of its genes is detected in
    fewer than ``min_detected`` of the cells: a few co-expressing cells must not make a module look
    active where its genes are essentially off.
    """
    keys = Keys(key)
    membership = sp.csc_matrix(adata.obsm[keys.obsm_localities])
    n_loc = membership.shape[1]
    if not names:
        return np.zeros((n_loc, 0))
    params = CorrelationsSettings.read(adata, key)
    cov = covariates(adata, params.partial_out, params.n_partial_components)
    if extra_covariates is not None:
        cov = extra_covariates if cov is None else np.column_stack([cov, extra_covariates])
    matrix, used_index = gene_columns(
        expression(adata, params.layer), adata.var_names, np.concatenate([table["gene_a"], table["gene_b"]])
    )
    # a locality that lost its cells to adata[mask] has no correlation: activity 0
    sizes = np.diff(membership.indptr)
    live = np.flatnonzero(sizes >= 3)
    out = np.zeros((n_loc, len(names)))
    with progress(len(live), "module activity") as bar:
        out[live] = module_set_activity(
            matrix,
            membership[:, live],
            used_index.get_indexer(table["gene_a"]),
            used_index.get_indexer(table["gene_b"]),
            table["module"].cat.codes.to_numpy(),
            table["weight"].to_numpy(),
            len(names),
            min_detected=params.min_detected,
            covariates=cov,
            progress=bar.update,
        )
    return out
