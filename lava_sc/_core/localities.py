"""Probe placement: weighted l-means with weights indeg^alpha * (1/mean_dist)^beta, tuned by DIRECT."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize
from sklearn.cluster import KMeans

from .knn import NeighbourIndex


@dataclass
class LocalityResult:
    """Probes, their member cells and the diagnostics of the search."""

    probes: np.ndarray  # (n_localities, n_dims)
    members: np.ndarray  # (n_localities, n_cells) indices of member cells
    coverage: np.ndarray  # (n_points,) number of localities covering each cell
    in_degree: np.ndarray  # (n_points,) kNN in-degree
    alpha: float
    beta: float
    coverage_loss: float
    n_evaluations: int


def n_localities_for(n_points: int, n_cells: int, overlap: float) -> int:
    """l = ceil(E * o / n): enough localities that each cell lies in about ``overlap`` of them."""
    return int(np.ceil(n_points * overlap / n_cells))


def neighbourhood_statistics(
    index: NeighbourIndex, n_cells: int, chunk_size: int = 20_000
) -> tuple[np.ndarray, np.ndarray]:
    """kNN in-degree and mean distance to the ``n_cells`` nearest neighbours of every point.

    Queried in chunks of points so memory stays at ``chunk_size * n_cells`` neighbours.
    """
    n_points = len(index.data)
    k = min(n_cells, n_points - 1)
    in_degree = np.zeros(n_points, dtype=np.float64)
    mean_dist = np.empty(n_points, dtype=np.float64)
    for start in range(0, n_points, chunk_size):
        rows = slice(start, min(start + chunk_size, n_points))
        idx, dist = index.self_neighbours(k, rows)
        in_degree += np.bincount(idx.ravel(), minlength=n_points)
        mean_dist[rows] = dist.mean(axis=1)
    return in_degree, mean_dist


def cell_weights(in_degree: np.ndarray, mean_dist: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    """w_i = (indeg_i + 1)^alpha * (1 / mean_dist_i)^beta, rescaled to mean 1 (the +1 keeps outliers > 0)."""
    density = 1.0 / np.maximum(mean_dist, np.finfo(np.float64).tiny)
    log_w = alpha * np.log1p(in_degree) + beta * np.log(density)
    w = np.exp(log_w - log_w.max())
    return w / w.mean()


def coverage_loss(coverage: np.ndarray, in_degree: np.ndarray) -> float:
    """Mean squared gap between relative coverage and relative in-degree, plus the uncovered fraction."""
    rel_cov = coverage / max(coverage.mean(), 1e-12)
    rel_deg = in_degree / max(in_degree.mean(), 1e-12)
    return float(np.mean((rel_cov - rel_deg) ** 2) + np.mean(coverage == 0))


def place_probes(points: np.ndarray, weights: np.ndarray, n_localities: int, random_state: int) -> np.ndarray:
    """Centres of a weighted l-means of the points."""
    km = KMeans(n_clusters=n_localities, n_init=1, max_iter=100, random_state=random_state)
    km.fit(points, sample_weight=weights)
    return km.cluster_centers_


def place_probes_fast(
    points: np.ndarray,
    weights: np.ndarray,
    n_localities: int,
    random_state: int,
    n_iter: int = 50,
    init: np.ndarray | None = None,
) -> np.ndarray:
    """Weighted l-means for large data: Lloyd iterations with KD-tree assignment (low dimensions)
    or mini-batch k-means (high dimensions), seeded by k-means++ on a weighted sample of points."""
    if points.shape[1] > 10:
        from sklearn.cluster import MiniBatchKMeans

        km = MiniBatchKMeans(n_clusters=n_localities, n_init=1, random_state=random_state, batch_size=4096)
        return km.fit(points, sample_weight=weights).cluster_centers_
    from scipy.spatial import cKDTree
    from sklearn.cluster import kmeans_plusplus

    if init is not None:  # warm start from an earlier placement
        centres = np.array(init, dtype=np.float64)
    else:
        rng = np.random.default_rng(random_state)
        pool = np.sort(rng.choice(len(points), min(len(points), 10 * n_localities), replace=False))
        centres, _ = kmeans_plusplus(
            points[pool].astype(np.float64),
            n_localities,
            random_state=random_state,
            sample_weight=weights[pool],
            n_local_trials=1,
        )
    scale = np.ptp(points, axis=0).max() + 1e-12
    for _ in range(n_iter):
        dist, nearest = cKDTree(centres).query(points, k=1, workers=-1)
        mass = np.bincount(nearest, weights=weights, minlength=n_localities)
        moved = np.column_stack(
            [
                np.bincount(nearest, weights=weights * points[:, d], minlength=n_localities)
                for d in range(points.shape[1])
            ]
        )
        new = centres.copy()
        filled = mass > 0
        new[filled] = moved[filled] / mass[filled, None]
        empty = np.flatnonzero(~filled)
        if len(empty):  # re-seed dead centres at the worst-served points
            new[empty] = points[np.argsort(-weights * dist**2)[: len(empty)]]
        shift = np.abs(new - centres).max()
        centres = new
        if shift < 1e-4 * scale and not len(empty):
            break
    return centres


def members_and_coverage(index: NeighbourIndex, probes: np.ndarray, n_cells: int) -> tuple[np.ndarray, np.ndarray]:
    members, _ = index.query(probes, n_cells)
    coverage = np.bincount(members.ravel(), minlength=len(index.data))
    return members, coverage


def find_localities(
    points: np.ndarray,
    *,
    n_cells: int,
    overlap: float,
    random_state: int = 0,
    bounds: tuple[tuple[float, float], tuple[float, float]] = ((0.0, 3.0), (0.0, 3.0)),
    max_evaluations: int = 40,
    knn_method: str = "auto",
    max_exact_cells: int = 50_000,
    search_cells: int = 20_000,
    progress=None,
) -> LocalityResult:
    """Place probes so that locality coverage tracks kNN in-degree, then take each probe's n nearest cells.

    Parameters
    ----------
    points
        Embedding coordinates, ``(n_points, n_dims)``.
    n_cells
        Cells per locality (n).
    overlap
        Average number of localities a cell falls in (o).
    random_state
        Seed of the l-means initialisation (the same seed is used at every DIRECT evaluation so the
        objective is a deterministic function of alpha and beta).
    bounds
        Search box for (alpha, beta).
    max_evaluations
        Budget of objective evaluations for :func:`scipy.optimize.direct`.
    knn_method
        Passed to :class:`~lava_sc._core.knn.NeighbourIndex`.
    max_exact_cells
        Above this many points, DIRECT runs on a uniform subsample of ``search_cells`` points and
        the chosen weights place the probes on all points with one fast weighted l-means (Lloyd
        with KD-tree assignment): the exact search would re-run a full k-means of all points at
        every evaluation.
    search_cells
        Size of that subsample.
    progress
        Optional callable invoked after every evaluation (e.g. a tqdm ``update``).
    """
    n_points = len(points)
    index = NeighbourIndex(points, method=knn_method, n_neighbors=n_cells, random_state=random_state)
    in_degree, mean_dist = neighbourhood_statistics(index, n_cells)
    n_loc = n_localities_for(n_points, n_cells, overlap)
    if n_points <= max_exact_cells:
        search = direct_search(
            index, in_degree, mean_dist, n_cells, n_loc, random_state, bounds, max_evaluations, progress
        )
        alpha, beta, loss, probes, members, coverage, n_eval = search
    else:
        # DIRECT on a uniform subsample (same n_cells and overlap, so fewer, wider localities), then one
        # weighted l-means of all points with the chosen alpha and beta
        rng = np.random.default_rng(random_state)
        sub = np.sort(rng.choice(n_points, search_cells, replace=False))
        sub_index = NeighbourIndex(points[sub], method=knn_method, n_neighbors=n_cells, random_state=random_state)
        sub_deg, sub_dist = neighbourhood_statistics(sub_index, n_cells)
        sub_loc = n_localities_for(search_cells, n_cells, overlap)
        search = direct_search(
            sub_index, sub_deg, sub_dist, n_cells, sub_loc, random_state, bounds, max_evaluations, progress
        )
        alpha, beta, loss, probes, members, coverage, n_refine = refine_on_all_points(
            index, in_degree, mean_dist, n_cells, n_loc, random_state, search[0], search[1], bounds, progress
        )
        n_eval = search[6] + n_refine
    return LocalityResult(
        probes=probes,
        members=members,
        coverage=coverage,
        in_degree=in_degree,
        alpha=alpha,
        beta=beta,
        coverage_loss=loss,
        n_evaluations=n_eval,
    )


def refine_on_all_points(
    index, in_degree, mean_dist, n_cells, n_loc, random_state, alpha, beta, bounds, progress, step=0.4, min_step=0.1
):
    """Compass search around the subsample's (alpha, beta) on all points, each placement warm-started.

    The subsample's localities are wider than the real ones, so its optimum is only a starting point.
    Returns alpha, beta, loss, probes, members, coverage, evaluations.
    """

    def evaluate(a, b, init):
        probes = place_probes_fast(index.data, cell_weights(in_degree, mean_dist, a, b), n_loc, random_state, init=init)
        members, coverage = members_and_coverage(index, probes, n_cells)
        if progress is not None:
            progress()
        return coverage_loss(coverage, in_degree), probes, members, coverage

    best = (alpha, beta, *evaluate(alpha, beta, None))
    n_eval = 1
    while step >= min_step:
        improved = False
        for da, db in ((step, 0.0), (-step, 0.0), (0.0, step), (0.0, -step)):
            a = float(np.clip(best[0] + da, *bounds[0]))
            b = float(np.clip(best[1] + db, *bounds[1]))
            if (a, b) == best[:2]:
                continue
            trial = (a, b, *evaluate(a, b, best[3]))
            n_eval += 1
            if trial[2] < best[2]:
                best, improved = trial, True
                break
        if not improved:
            step /= 2
    return (*best, n_eval)


def direct_search(index, in_degree, mean_dist, n_cells, n_loc, random_state, bounds, max_evaluations, progress):
    """DIRECT over (alpha, beta): returns alpha, beta, loss, probes, members, coverage, evaluations."""
    cache: dict[tuple[float, float], tuple[float, np.ndarray, np.ndarray, np.ndarray]] = {}

    def evaluate(ab: np.ndarray) -> float:
        alpha, beta = float(ab[0]), float(ab[1])
        probes = place_probes(index.data, cell_weights(in_degree, mean_dist, alpha, beta), n_loc, random_state)
        members, coverage = members_and_coverage(index, probes, n_cells)
        loss = coverage_loss(coverage, in_degree)
        cache[(alpha, beta)] = (loss, probes, members, coverage)
        if progress is not None:
            progress()
        return loss

    optimize.direct(evaluate, bounds=list(bounds), maxfun=max_evaluations, locally_biased=True)
    (alpha, beta), (loss, probes, members, coverage) = min(cache.items(), key=lambda kv: (kv[1][0], kv[0]))
    return alpha, beta, loss, probes, members, coverage, len(cache)
