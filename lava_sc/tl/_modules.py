from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData
from scanpy import logging as logg

from .._core.correlations import gene_matrix
from .._core.distributed import gather_columns, is_dask
from .._core.knn import NeighbourIndex
from .._core.modules import (
    cell_activity,
    gene_scores,
    leiden_pair_modules,
    merge_overlapping,
    nmf_pair_modules,
    order_modules,
)
from .._core.score import module_set_activity
from .._keys import DEFAULT_KEY, Keys, locality_names, module_names
from .._utils import log_added, progress, restore_on_error, store, store_params
from .._validate import (
    check_adata,
    check_choice,
    check_float,
    check_int,
    check_key,
    check_localities,
    embedding,
    expression,
    require,
)
from ._correlations import correlations, covariate_matrix
from ._localities import localities


def modules(
    adata: AnnData,
    *,
    key: str = DEFAULT_KEY,
    method: str = "leiden",
    resolution: float = 1.0,
    rank: int = 10,
    min_support: int | str = "auto",
    min_genes: int = 4,
    merge_overlap: float = 0.8,
    n_neighbors: int = 15,
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
    key
        Key of the LAVA results in ``uns`` / ``obsm``.
    method
        ``"leiden"`` (default): Leiden on a graph of significant pairs, where pairs sharing a gene are
        linked by the cosine similarity of their locality profiles. ``"nmf"``: non-negative
        factorisation of the localities x pairs association matrix.
    resolution
        Leiden resolution; higher gives more, smaller modules.
    rank
        Number of NMF components (``method="nmf"``); higher gives more, smaller modules.
    min_support
        Pairs significant in fewer localities are ignored (recurring evidence only). ``"auto"``
        (default): the smallest support (at least 2) that fewer than one of the tested pairs would
        reach by chance, with chance recurrence modelled as Poisson at the rate of single-locality
        discoveries. It stays 2 for a few hundred localities and rises with their number (5 at a
        million cells), where pairs recurring in two or three localities are mostly chance.
    min_genes
        Smallest module, in genes. A module keeps only genes that take part in at least two of its
        pairs (its 2-core): a gene attached by a single association is more likely a stray.
    merge_overlap
        Modules whose gene sets overlap by at least this fraction of the smaller set are merged:
        they are one program found in separate regions. ``1.0`` merges only nested modules; values
        above 1 disable merging.
    n_neighbors
        Strongest neighbours kept per pair in the Leiden pair graph.
    basis, layer
        Used only when localities or correlations must be computed first.
    random_state
        Seed for Leiden / NMF (and for missing steps).
    copy
        Return a modified copy instead of writing into ``adata``.

    Returns
    -------
    ``None`` or the copy. Writes ``uns[key]["modules"]`` (``module, gene_a, gene_b, weight, support``),
    ``uns[key]["module_genes"]`` (``module, gene, score``), ``uns[key]["locality_activity"]``
    (localities x modules: weighted mean correlation of the module's pairs in each locality) and
    ``obsm[f"{key}_activity"]`` (cells x modules: mean over the localities containing the cell; cells
    in no locality take the nearest probe's value).
    """
    check_adata(adata)
    key = check_key(key)
    check_choice("method", method, ("leiden", "nmf"))
    resolution = check_float("resolution", resolution, low=0.0, open_low=True)
    rank = check_int("rank", rank, low=1)
    if not (isinstance(min_support, str) and min_support == "auto"):
        min_support = check_int("min_support", min_support, low=1)
    min_genes = check_int("min_genes", min_genes, low=2)
    merge_overlap = check_float("merge_overlap", merge_overlap, low=0.0, open_low=True)
    n_neighbors = check_int("n_neighbors", n_neighbors, low=1)
    random_state = check_int("random_state", random_state, low=0)
    adata = adata.copy() if copy else adata
    with restore_on_error(adata):  # interrupted (Ctrl-C) or failed: adata as it was
        keys = Keys(key)
        if keys.uns not in adata.uns or keys.obsm_localities not in adata.obsm or "probes" not in adata.uns[key]:
            localities(adata, basis, random_state=random_state, key_added=key)
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
        support = pairs["support"].to_numpy()
        min_support_used = chance_support(support, len(gene_names)) if min_support == "auto" else min_support
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
            labels[recurring] = sub_labels
        labels = prune_to_core_genes(labels, ga, gb)
        labels = merge_overlapping(labels, ga, gb, merge_overlap)
        labels = order_modules(labels, ga, gb, min_genes)
        names = module_names(int(labels.max(initial=-1)) + 1)

        table, gene_table = module_tables(labels, ga, gb, pairs, gene_names, names)
        loc_act = locality_activity(adata, key, table, gene_index, names)
        cell_act = cell_activity(adata.obsm[keys.obsm_localities], loc_act, nearest_probe(adata, key))
        store(
            adata,
            key,
            modules=table,
            module_genes=gene_table,
            locality_activity=pd.DataFrame(loc_act, index=locality_names(len(loc_act)), columns=names),
        )
        adata.obsm[keys.obsm_activity] = pd.DataFrame(cell_act, index=adata.obs_names.copy(), columns=names)
        store_params(
            adata,
            key,
            "modules",
            dict(
                method=method,
                resolution=resolution,
                rank=rank,
                min_support=min_support,
                min_support_used=int(min_support_used),
                min_genes=min_genes,
                merge_overlap=merge_overlap,
                n_neighbors=n_neighbors,
                random_state=random_state,
            ),
        )
        log_added(
            f"{len(names)} modules from {len(recurring)} pairs found in >= {min_support_used} localities",
            start,
            [
                f"'{key}': 'modules', 'module_genes', 'locality_activity' (adata.uns)",
                f"'{keys.obsm_activity}', module activity per cell (adata.obsm)",
            ],
        )
    return adata if copy else None


def chance_support(support: np.ndarray, n_genes: int) -> int:
    """Smallest support s >= 2 with N * P(Poisson(lam) >= s) < 1: fewer than one chance-recurring pair.

    N = G (G - 1) / 2 tested pairs; lam = (pairs found in exactly one locality) / N, the rate at which
    a pair is discovered by chance somewhere (programs recur, so single discoveries are mostly chance).
    """
    from scipy.stats import poisson

    n_pairs = max(n_genes * (n_genes - 1) / 2, 1.0)
    lam = float(np.sum(support == 1)) / n_pairs
    s = 2
    while n_pairs * poisson.sf(s - 1, lam) >= 1.0 and s < 1000:
        s += 1
    return s


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
    """The pair table (module, gene_a, gene_b, weight, support) and the gene table (module, gene, score)."""
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
        for g in np.argsort(-score, kind="stable"):
            if score[g] > 0:
                rows.append((name, str(gene_names[g]), float(score[g])))
    gene_table = pd.DataFrame(rows, columns=["module", "gene", "score"])
    for df in (table, gene_table):
        df["module"] = pd.Categorical(df["module"], categories=names)
    return table, gene_table


def locality_activity(adata: AnnData, key: str, table: pd.DataFrame, gene_index: pd.Index, names) -> np.ndarray:
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
    params = adata.uns[key]["params"]["correlations"]
    layer = params["layer"]
    layer = None if layer == "None" else layer
    partial_out = params["partial_out"]
    partial_out = None if isinstance(partial_out, str) and partial_out == "None" else partial_out
    if isinstance(partial_out, np.ndarray):
        partial_out = [str(p) for p in partial_out]
    covariates = covariate_matrix(adata, partial_out, int(params["n_partial_components"]))
    used = np.unique(np.concatenate([table["gene_a"], table["gene_b"]]))
    values = expression(adata, layer)
    used_idx = adata.var_names.get_indexer(used)
    matrix = gather_columns(values, used_idx) if is_dask(values) else gene_matrix(values, used_idx)
    used_index = pd.Index(used)
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
            min_detected=float(params["min_detected"]),
            covariates=covariates,
            progress=bar.update,
        )
    return out


def nearest_probe(adata: AnnData, key: str) -> np.ndarray:
    """Index of the probe nearest each cell in the embedding the localities were placed on."""
    basis = str(adata.uns[key]["params"]["localities"]["basis"])
    probes = np.asarray(adata.uns[key]["probes"])
    index = NeighbourIndex(probes, method="exact")
    idx, _ = index.query(embedding(adata, basis), 1)
    return idx[:, 0]
