"""Modules: groups of gene pairs that switch on together across localities.

Two routes over the localities x pairs sketch ``S`` (entries: correlation of significant pairs):

* ``leiden``: a graph whose nodes are pairs; two pairs sharing a gene are linked with the cosine
  similarity of their locality profiles (columns of ``S``), sparsified to each pair's strongest
  neighbours; Leiden (RB configuration, ``resolution``) partitions it.
* ``nmf``: non-negative factorisation ``S+ ~ W H`` of rank ``rank``; each pair joins the component
  with its largest loading when that loading is a fair share of the component's strongest one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

if TYPE_CHECKING:
    import igraph as ig


def pair_graph(sketch: sp.csr_matrix, gene_a: np.ndarray, gene_b: np.ndarray, n_neighbors: int = 15) -> ig.Graph:
    """Pairs linked to pairs sharing a gene, weighted by cosine similarity of their locality profiles."""
    profiles = sp.csc_matrix(abs(sketch), dtype=np.float64)
    norms = np.sqrt(np.asarray(profiles.multiply(profiles).sum(axis=0)).ravel())
    profiles = profiles @ sp.diags(1.0 / np.maximum(norms, 1e-12))
    n_pairs = profiles.shape[1]
    incidence = sp.csr_matrix(
        (np.ones(2 * n_pairs), (np.concatenate([gene_a, gene_b]), np.tile(np.arange(n_pairs), 2))),
        shape=(int(max(gene_a.max(initial=-1), gene_b.max(initial=-1))) + 1, n_pairs),
    )
    rows, cols, weights = [], [], []
    for g in range(incidence.shape[0]):
        incident = incidence.indices[incidence.indptr[g] : incidence.indptr[g + 1]]
        if len(incident) < 2:
            continue
        sub = profiles[:, incident]
        sim = (sub.T @ sub).toarray()
        np.fill_diagonal(sim, 0.0)
        k = min(n_neighbors, len(incident) - 1)
        top = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        src = np.repeat(np.arange(len(incident)), k)
        dst = top.ravel()
        w = sim[src, dst]
        keep = w > 0
        rows.append(incident[src[keep]])
        cols.append(incident[dst[keep]])
        weights.append(w[keep])
    if rows:
        adj = sp.coo_matrix(
            (np.concatenate(weights), (np.concatenate(rows), np.concatenate(cols))), shape=(n_pairs, n_pairs)
        ).tocsr()
        adj = adj.maximum(adj.T).tocoo()
        upper = adj.row < adj.col
        edges = np.column_stack([adj.row[upper], adj.col[upper]])
        edge_w = adj.data[upper]
    else:
        edges, edge_w = np.zeros((0, 2), dtype=np.int64), np.zeros(0)
    import igraph as ig  # igraph, leidenalg and scikit-learn are imported where used: ~1 s at import

    graph = ig.Graph(n=n_pairs, edges=edges.tolist(), directed=False)
    graph.es["weight"] = edge_w.tolist()
    return graph


def leiden_pair_modules(
    sketch: sp.csr_matrix,
    gene_a: np.ndarray,
    gene_b: np.ndarray,
    *,
    resolution: float = 1.0,
    n_neighbors: int = 15,
    random_state: int = 0,
) -> np.ndarray:
    """Module label per pair (-1 for pairs left alone) from Leiden on the pair graph."""
    graph = pair_graph(sketch, gene_a, gene_b, n_neighbors=n_neighbors)
    if graph.ecount() == 0:
        return np.full(graph.vcount(), -1, dtype=np.int64)
    import leidenalg

    partition = leidenalg.find_partition(
        graph,
        leidenalg.RBConfigurationVertexPartition,
        weights="weight",
        resolution_parameter=resolution,
        seed=int(random_state),
        n_iterations=2,
    )
    labels = np.asarray(partition.membership, dtype=np.int64)
    degree = np.asarray(graph.degree())
    labels[degree == 0] = -1
    return labels


def nmf_pair_modules(
    sketch: sp.csr_matrix, *, rank: int, min_loading: float = 0.2, random_state: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Module label per pair from a rank-``rank`` NMF of the non-negative sketch, and the locality loadings."""
    data = abs(sp.csr_matrix(sketch, dtype=np.float64))
    rank = int(min(rank, min(data.shape)))
    from sklearn.decomposition import NMF

    model = NMF(n_components=rank, init="nndsvda", random_state=random_state, max_iter=500)
    w = model.fit_transform(data)
    h = model.components_
    best = h.argmax(axis=0)
    best_loading = h[best, np.arange(h.shape[1])]
    share = best_loading / np.maximum(h.max(axis=1)[best], 1e-12)
    labels = np.where((share >= min_loading) & (best_loading > 0), best, -1)
    return labels.astype(np.int64), w


def placement_majority(sketch: sp.csr_matrix, in_placement: np.ndarray) -> np.ndarray:
    """Per pair, whether it is significant in some locality of more than half the placements.

    ``sketch`` is localities x pairs, ``in_placement`` localities x placements (boolean: the
    placements holding each locality). With one placement every pair found anywhere passes. A pair
    that only one way of cutting the embedding shows sits where one set of locality boundaries
    happened to fall; a programme shows in most cuts.
    """
    in_placement = np.asarray(in_placement, dtype=bool)
    found = sp.csc_matrix(sketch)
    found.data = np.ones_like(found.data)
    placements_found = (sp.csr_matrix(in_placement.T.astype(np.float64)) @ found) > 0  # placements x pairs
    return np.asarray(placements_found.sum(axis=0)).ravel() > in_placement.shape[1] / 2


def module_size(labels: np.ndarray, gene_a: np.ndarray, gene_b: np.ndarray, label: int) -> int:
    """Number of distinct genes in the pairs labelled ``label``."""
    sel = labels == label
    return len(np.union1d(gene_a[sel], gene_b[sel]))


def split_large(
    labels: np.ndarray,
    sketch: sp.csr_matrix,
    gene_a: np.ndarray,
    gene_b: np.ndarray,
    *,
    max_genes: int,
    resolution: float,
    n_neighbors: int = 15,
    random_state: int = 0,
    max_rounds: int = 8,
) -> np.ndarray:
    """Split every module with more than ``max_genes`` genes by Leiden on its own pairs.

    A module's pairs are re-partitioned on their own pair graph, first at the resolution that made
    the module (alone, its pairs form a smaller graph whose null model differs), then at 1.5 times
    that, and so on (at most ``max_rounds`` times) while Leiden keeps them in one community; each
    part larger than ``max_genes`` is split the same way, from the resolution that split its parent. Where correlation is
    dense (images: every inked pixel with many others, or a large program) this turns one sprawling
    community into its tightest parts; modules within the limit are untouched, so module size is
    monotone in ``max_genes``.
    """
    out = labels.copy()
    next_label = int(out.max(initial=-1)) + 1
    queue = [(int(lab), resolution) for lab in np.unique(out[out >= 0])]
    while queue:
        lab, res = queue.pop()
        if module_size(out, gene_a, gene_b, lab) <= max_genes:
            continue
        sel = np.flatnonzero(out == lab)
        for round_ in range(max_rounds):
            res *= 1.0 if round_ == 0 else 1.5
            parts = leiden_pair_modules(
                sketch[:, sel],
                gene_a[sel],
                gene_b[sel],
                resolution=res,
                n_neighbors=n_neighbors,
                random_state=random_state,
            )
            if len(np.unique(parts[parts >= 0])) > 1:
                break
        else:
            continue  # cannot be split: kept whole
        out[sel[parts < 0]] = -1
        for part in np.unique(parts[parts >= 0]):
            out[sel[parts == part]] = next_label
            queue.append((next_label, res))
            next_label += 1
    return out


def merge_overlapping(
    labels: np.ndarray, gene_a: np.ndarray, gene_b: np.ndarray, min_overlap: float, max_genes: int | None = None
) -> np.ndarray:
    """Merge modules whose gene sets overlap by at least ``min_overlap`` of the smaller set.

    Such modules are one gene program found in separate places (NMF and Leiden can split a program
    by region); LAVA reports it once, active wherever it recurs. Merging is transitive; a merge
    whose union would exceed ``max_genes`` genes is not made.
    """
    labs = np.unique(labels[labels >= 0])
    genes = {lab: np.union1d(gene_a[labels == lab], gene_b[labels == lab]) for lab in labs}
    parent = {lab: lab for lab in labs}

    def root(lab):
        while parent[lab] != lab:
            lab = parent[lab]
        return lab

    union = {lab: genes[lab] for lab in labs}  # gene set of each root's merged module
    for i, a in enumerate(labs):
        for b in labs[i + 1 :]:
            shared = len(np.intersect1d(genes[a], genes[b], assume_unique=True))
            if shared >= min_overlap * min(len(genes[a]), len(genes[b])):
                ra, rb = root(a), root(b)
                if ra == rb:
                    continue
                merged = np.union1d(union[ra], union[rb])
                if max_genes is not None and len(merged) > max_genes:
                    continue
                parent[rb] = ra
                union[ra] = merged
    out = labels.copy()
    for lab in labs:
        out[labels == lab] = root(lab)
    return out


def order_modules(labels: np.ndarray, gene_a: np.ndarray, gene_b: np.ndarray, min_genes: int) -> np.ndarray:
    """Relabel modules 0..K-1 by decreasing number of pairs; modules with fewer than ``min_genes`` genes -> -1."""
    out = np.full_like(labels, -1)
    candidates = []
    for lab in np.unique(labels[labels >= 0]):
        sel = labels == lab
        genes = np.union1d(gene_a[sel], gene_b[sel])
        if len(genes) >= min_genes:
            # ties broken by the smallest pair index, so names do not depend on Leiden's label order
            candidates.append((-int(sel.sum()), int(np.flatnonzero(sel)[0]), lab))
    for new, (_, _, lab) in enumerate(sorted(candidates)):
        out[labels == lab] = new
    return out


def gene_scores(gene_a: np.ndarray, gene_b: np.ndarray, weight: np.ndarray, n_genes: int) -> np.ndarray:
    """Weighted degree of each gene within one module, scaled so the top gene scores 1.

    ``score_g = sum_{pairs (g, h)} |w_gh| / max_g(...)``: an anti-correlated pair ties its genes to the
    module as firmly as a correlated one (which side a gene is on is ``gene_sides``).
    """
    weight = np.abs(weight)
    deg = np.bincount(gene_a, weights=weight, minlength=n_genes) + np.bincount(
        gene_b, weights=weight, minlength=n_genes
    )
    top = deg.max(initial=0.0)
    return deg / top if top > 0 else deg


def gene_sides(gene_a: np.ndarray, gene_b: np.ndarray, weight: np.ndarray, n_genes: int) -> np.ndarray:
    """Side (+1 or -1) of each gene in a module whose pairs may be anti-correlated; 0 off the module.

    The sides ``s`` maximise the agreement ``sum_pairs w_ab s_a s_b`` (correlated genes on one side,
    anti-correlated ones on opposite sides): the signs of the leading eigenvector of the signed,
    weighted gene adjacency, oriented so the gene of highest ``gene_scores`` is +1. A module of
    positive pairs only is all +1.
    """
    sides = np.zeros(n_genes, dtype=np.int8)
    genes = np.union1d(gene_a, gene_b)
    if len(genes) == 0:
        return sides
    if np.all(weight >= 0):
        sides[genes] = 1
        return sides
    local_a, local_b = np.searchsorted(genes, gene_a), np.searchsorted(genes, gene_b)
    adj = np.zeros((len(genes), len(genes)))
    np.add.at(adj, (local_a, local_b), weight)
    adj = adj + adj.T
    _, vectors = np.linalg.eigh(adj)
    lead = vectors[:, -1]
    hub = int(np.argmax(gene_scores(local_a, local_b, weight, len(genes))))
    orient = 1.0 if lead[hub] >= 0 else -1.0
    sides[genes] = np.where(lead * orient >= 0, 1, -1)
    return sides


def cell_activity(membership: sp.csr_matrix, locality_activity: np.ndarray, nearest_locality: np.ndarray) -> np.ndarray:
    """Mean activity of the localities containing each cell; uncovered cells take their nearest probe's locality."""
    membership = sp.csr_matrix(membership, dtype=np.float64)
    counts = np.asarray(membership.sum(axis=1)).ravel()
    act = membership @ locality_activity
    covered = counts > 0
    act[covered] /= counts[covered, None]
    act[~covered] = locality_activity[nearest_locality[~covered]]
    return act


#: a module is active in a locality when at least this share of its pair weight is significant there
#: (0.25 recovered more active cells on the simulators but called the demo's cytotoxic module active in
#: monocytes, from localities that straddle both)
LOCALITY_ACTIVE_SHARE = 0.5
#: a cell is active when at least this share of the localities containing it are
CELL_ACTIVE_SHARE = 0.5


def module_support(sketch: sp.csr_matrix, labels: np.ndarray, weight: np.ndarray, n_modules: int) -> np.ndarray:
    """Share of each module's pair weight that is significant, with the module's sign, in each locality.

    With ``S`` the localities x pairs sketch (correlation of the pairs found significant by the
    permutation test, 0 elsewhere), ``w_p`` the weight of pair ``p`` and ``P_m`` the pairs of module
    ``m``: ``support[l, m] = sum_{p in P_m} |w_p| [S_lp w_p > 0] / sum_{p in P_m} |w_p|``. Under the null
    of no association a pair is significant at about the FDR level, so a share near 1 is not reached by
    chance: the share is calibrated by each locality's own permutation null, whatever the data.
    ``labels[p]`` is the module of sketch column ``p`` (-1: none).
    """
    sketch = sp.csr_matrix(sketch)
    n_loc = sketch.shape[0]
    member = np.flatnonzero(labels >= 0)
    if not n_modules or not len(member):
        return np.zeros((n_loc, n_modules))
    w = np.asarray(weight, dtype=np.float64)[member]
    total = np.bincount(labels[member], weights=np.abs(w), minlength=n_modules)
    share = sp.csr_matrix(
        (np.abs(w) / np.maximum(total[labels[member]], 1e-300), (member, labels[member])),
        shape=(sketch.shape[1], n_modules),
    )
    agrees = sketch.multiply(sp.csr_matrix(np.sign(np.where(labels >= 0, weight, 0.0))[None, :])) > 0
    return np.asarray((sp.csr_matrix(agrees, dtype=np.float64) @ share).todense())


def active_cells(membership: sp.csr_matrix, support: np.ndarray, nearest_locality: np.ndarray) -> np.ndarray:
    """Cells x modules, True where at least ``CELL_ACTIVE_SHARE`` of the localities containing the cell
    are active (``support >= LOCALITY_ACTIVE_SHARE``); uncovered cells take their nearest probe's locality."""
    active = (np.asarray(support) >= LOCALITY_ACTIVE_SHARE).astype(np.float64)
    return cell_activity(membership, active, nearest_locality) >= CELL_ACTIVE_SHARE
