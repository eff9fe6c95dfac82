"""Probe placement: weighted l-means with weights indeg^alpha * (1/mean_dist)^beta, tuned by DIRECT."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize
from scipy.spatial import cKDTree

from .assign import PointGrid
from .indegree import grid_statistics
from .knn import EXACT_MAX_DIMS, NeighbourIndex, kdtree_query
from .seeding import seed_centres


@dataclass
class LocalityResult:
    """Probes, their member cells and the diagnostics of the search."""

    probes: np.ndarray  # (n_localities, n_dims)
    members: np.ndarray  # (n_localities, n_cells) indices of member cells
    coverage: np.ndarray  # (n_points,) number of localities covering each cell
    in_degree: np.ndarray  # (n_points,) kNN in-degree
    alpha: float
    beta: float
    coverage_loss: float  # of placement 0
    n_evaluations: int
    placement: np.ndarray  # (n_localities,) the placement each locality belongs to


def n_localities_for(n_points: int, n_cells: int, overlap: float) -> int:
    """l = ceil(E * o / n): enough localities that each cell lies in about ``overlap`` of them."""
    return int(np.ceil(n_points * overlap / n_cells))


def neighbourhood_statistics(
    index: NeighbourIndex, n_cells: int, chunk_size: int = 20_000, *, grid: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """kNN in-degree and mean distance to the ``n_cells`` nearest neighbours of every point.

    Queried in chunks of points so memory stays at ``chunk_size * n_cells`` neighbours. ``grid``: for
    2-d points, the same statistics from :func:`~lava_sc._core.indegree.grid_statistics` (9x faster at a
    million cells; identical in-degrees, mean distances summed in another order).
    """
    n_points = len(index.data)
    k = min(n_cells, n_points - 1)
    if grid and index.data.shape[1] == 2:
        return grid_statistics(index.data, k)
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


#: Lloyd iterations per DIRECT evaluation: enough to rank (alpha, beta); the winner is run to convergence
SEARCH_ITERATIONS = 10
#: fewest cells per locality in the subsampled search of large data (in-degrees get noisy below). 10
#: halves the subsample at a million cells (100,000 -> 50,000); measured coverage loss, 20 -> 10:
#: planted 300,000 cells 0.0574 -> 0.0574, blobs 300,000 0.0563 -> 0.0550, planted 1M 0.0563 -> 0.0562
MIN_SEARCH_LOCALITY = 10
#: (alpha, beta) candidates from the subsampled search that are placed on all points
FINAL_CANDIDATES = 5
#: k-means++ seeds tried for the winning (alpha, beta) on all points: its own probes converged, and one
#: fresh seeding. Measured on the fidelity benchmark (12 runs at 30k/50k, fast / exact loss): 3 seeds
#: worst 1.039, mean 1.008; 2 seeds worst 1.039, mean 1.017; 1 seed worst 1.068 (misses 1.05). At 300k
#: cells 2 and 3 give the same placements; at 1M a seed costs ~8 s (seeding + converged Lloyd)
FINAL_SEEDS = 2


def planned_evaluations(n_points: int, max_evaluations: int, max_exact_cells: int, n_placements: int = 1) -> int:
    """Placements :func:`find_localities` plans: DIRECT's budget, plus on the fast path the candidates
    ranked on all points and the final seeds, for each placement (DIRECT may end its last sweep a few
    past its budget)."""
    fast = 0 if n_points <= max_exact_cells else FINAL_CANDIDATES + FINAL_SEEDS
    return (max_evaluations + fast) * n_placements


def place_probes(
    points: np.ndarray,
    weights: np.ndarray,
    n_localities: int,
    random_state: int,
    *,
    max_iter: int = 100,
    init: np.ndarray | None = None,
    init_pool: int | None = None,
) -> np.ndarray:
    """Centres of a weighted l-means of the points.

    Low-dimensional embeddings: weighted greedy k-means++ (as scikit-learn's, ``2 + log l`` trials per
    centre) then Lloyd iterations with KD-tree assignment. ``init`` warm-starts Lloyd instead;
    ``init_pool`` draws the k-means++ seeds from a uniform sample of that many points (for very many
    points and localities). Higher dimensions: scikit-learn's ``KMeans``.
    """
    if points.shape[1] > EXACT_MAX_DIMS:
        from sklearn.cluster import KMeans

        km = KMeans(n_clusters=n_localities, n_init=1, max_iter=max_iter, random_state=random_state)
        return km.fit(points, sample_weight=weights).cluster_centers_
    if init is None:
        init = seed_centres(points, weights, n_localities, random_state, pool=init_pool)
    return lloyd(points, weights, np.array(init, dtype=np.float64), max_iter=max_iter)


def lloyd(points: np.ndarray, weights: np.ndarray, centres: np.ndarray, max_iter: int = 100, tol: float = 1e-4):
    """Weighted Lloyd iterations, until the centres move less than ``tol`` x the points' mean variance
    (scikit-learn's criterion). Empty centres are re-seeded at the worst-served points. Points are
    assigned to their nearest centre on grids in 2-d (:class:`~lava_sc._core.assign.PointGrid`,
    exact), with a KD-tree otherwise."""
    k, d = centres.shape
    tol_abs = tol * float(np.mean(np.var(points, axis=0)))
    grid = PointGrid(points, k) if d == 2 else None
    for _ in range(max_iter):
        dist, nearest = grid.nearest(centres) if grid is not None else kdtree_query(cKDTree(centres), points, 1)
        mass = np.bincount(nearest, weights=weights, minlength=k)
        moved = np.column_stack([np.bincount(nearest, weights=weights * points[:, q], minlength=k) for q in range(d)])
        new = centres.copy()
        filled = mass > 0
        new[filled] = moved[filled] / mass[filled, None]
        empty = np.flatnonzero(~filled)
        if len(empty):
            new[empty] = points[np.argsort(-weights * dist**2, kind="stable")[: len(empty)]]
        shift = float(((new - centres) ** 2).sum())
        centres = new
        if shift <= tol_abs and not len(empty):
            break
    return centres


def place_probes_fast(
    points: np.ndarray,
    weights: np.ndarray,
    n_localities: int,
    random_state: int,
    n_iter: int = 50,
    init: np.ndarray | None = None,
) -> np.ndarray:
    """Weighted l-means for very many points: greedy k-means++ seeds then Lloyd.

    In 2-d the grid k-means++ seeds from all points; otherwise from a pool of 5 l points. The greedy
    trials matter more than the pool size: one trial per centre leaves Lloyd in a worse local optimum
    (about 20% higher coverage loss), a pool of a few l points does not.
    """
    pool = None if points.shape[1] == 2 else 5 * n_localities
    return place_probes(points, weights, n_localities, random_state, max_iter=n_iter, init=init, init_pool=pool)


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
    n_placements: int = 1,
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
        Above this many points, DIRECT runs on a uniform subsample with the same geometry (see
        :func:`subsample_search`); its ``FINAL_CANDIDATES`` best (alpha, beta) are placed on all
        points, and the winner is converged from ``FINAL_SEEDS`` k-means++ seeds: the exact search
        would re-run a k-means of all points at every evaluation.
    search_cells
        Smallest size of that subsample (at least ``MIN_SEARCH_LOCALITY`` cells per locality).
    n_placements
        Independent placements, stacked in ``probes`` and ``members`` (``placement`` says which each
        locality belongs to): each its own search, from seeds drawn from ``random_state``
        (:func:`placement_seed`; placement 0 is ``random_state``'s, today's single placement). They
        share the kNN statistics; the diagnostics (alpha, beta, coverage loss) are placement 0's.
    progress
        Optional callable invoked after every evaluation.
    """
    n_points = len(points)
    index = NeighbourIndex(points, method=knn_method, n_neighbors=n_cells, random_state=random_state)
    # the fast path's statistics on a grid; the exact path keeps the KD-tree's, so its sketches stay as they were
    in_degree, mean_dist = neighbourhood_statistics(index, n_cells, grid=n_points > max_exact_cells)
    n_loc = n_localities_for(n_points, n_cells, overlap)
    search = Search(points, index, in_degree, mean_dist, n_cells, n_loc, bounds, max_evaluations, progress)
    placements = [
        search.place(
            random_state if p == 0 else placement_seed(random_state, p), knn_method, max_exact_cells, search_cells
        )
        for p in range(n_placements)
    ]
    alpha, beta, loss, _, _, _, n_eval = placements[0]
    return LocalityResult(
        probes=np.vstack([pl[3] for pl in placements]),
        members=np.vstack([pl[4] for pl in placements]),
        coverage=np.sum([pl[5] for pl in placements], axis=0),
        in_degree=in_degree,
        alpha=alpha,
        beta=beta,
        coverage_loss=loss,
        n_evaluations=int(sum(pl[6] for pl in placements)),
        placement=np.repeat(np.arange(n_placements), n_loc),
    )


def placement_seed(random_state: int, placement: int) -> int:
    """Seed of placement ``placement`` >= 1: drawn from (random_state, placement), so that the
    placements of one ``random_state`` share no seed with those of another."""
    return int(np.random.SeedSequence([random_state, placement]).generate_state(1)[0])


@dataclass
class Search:
    """One placement problem: the points, their kNN statistics and DIRECT's settings."""

    points: np.ndarray
    index: NeighbourIndex
    in_degree: np.ndarray
    mean_dist: np.ndarray
    n_cells: int
    n_loc: int
    bounds: tuple
    max_evaluations: int
    progress: object = None

    def place(self, random_state: int, knn_method: str, max_exact_cells: int, search_cells: int):
        """DIRECT over (alpha, beta) and the winner's probes, from ``random_state``'s k-means++ seeds:
        alpha, beta, loss, probes, members, coverage, evaluations."""
        if len(self.points) <= max_exact_cells:
            return direct_search(
                self.index,
                self.in_degree,
                self.mean_dist,
                self.n_cells,
                self.n_loc,
                random_state,
                self.bounds,
                self.max_evaluations,
                self.progress,
            )
        return self.place_fast(random_state, knn_method, search_cells)

    def place_fast(self, random_state: int, knn_method: str, search_cells: int):
        """The fast path: DIRECT on a subsample, its best few (alpha, beta) ranked on all points."""
        points, index, in_degree, n_cells, n_loc = self.points, self.index, self.in_degree, self.n_cells, self.n_loc
        progress = self.progress
        candidates, n_eval = subsample_search(
            points, n_cells, n_loc, search_cells, random_state, self.bounds, self.max_evaluations, knn_method, progress
        )
        best = None
        shared = None
        for alpha_c, beta_c in candidates:  # the subsample's best few, ranked on all points
            weights = cell_weights(in_degree, self.mean_dist, alpha_c, beta_c)
            if shared is None and points.shape[1] <= EXACT_MAX_DIMS:
                # one k-means++ seeding of all points (with the best candidate's weights) starts every
                # candidate's Lloyd: the seeding costs as much as 15 Lloyd passes at 1M cells, and the
                # candidates' weights differ little (measured: same fast/exact loss ratios)
                shared = seed_centres(points, weights, n_loc, random_state)
            probes_c = place_probes_fast(points, weights, n_loc, random_state, n_iter=SEARCH_ITERATIONS, init=shared)
            members_c, coverage_c = members_and_coverage(index, probes_c, n_cells)
            loss_c = coverage_loss(coverage_c, in_degree)
            if best is None or loss_c < best[2]:
                best = (alpha_c, beta_c, loss_c, probes_c, members_c, coverage_c, weights)
            if progress is not None:
                progress()
        alpha, beta, loss, probes, members, coverage, weights = best
        # the winner to convergence, and from FINAL_SEEDS - 1 other k-means++ seeds: a converged
        # placement still varies by a few percent between seeds, and the exact path keeps the best
        # of its ~40 evaluations
        for seed in range(FINAL_SEEDS):
            init = probes if seed == 0 else None
            final = place_probes_fast(points, weights, n_loc, random_state + seed, init=init)
            final_members, final_coverage = members_and_coverage(index, final, n_cells)
            final_loss = coverage_loss(final_coverage, in_degree)
            if final_loss < loss:
                loss, probes, members, coverage = final_loss, final, final_members, final_coverage
        return alpha, beta, loss, probes, members, coverage, n_eval + len(candidates) + FINAL_SEEDS


def subsample_search(points, n_cells, n_loc, search_cells, random_state, bounds, max_evaluations, knn_method, progress):
    """DIRECT over (alpha, beta) on a uniform subsample scaled to the same geometry as the full problem.

    The subsample keeps the number of localities and shrinks the cells per locality in proportion
    (n * S / E), so its localities have the same extent in the embedding as the real ones and its
    in-degrees and coverage are thinned copies of the real ones: the loss landscape is the full
    one's, only noisier. Returns the ``FINAL_CANDIDATES`` best (alpha, beta) and the number of
    evaluations.
    """
    n_points = len(points)
    sub_cells = max(MIN_SEARCH_LOCALITY, int(round(n_cells * search_cells / n_points)))
    size = min(n_points, max(search_cells, int(np.ceil(MIN_SEARCH_LOCALITY * n_points / n_cells))))
    rows = np.sort(np.random.default_rng(random_state).choice(n_points, size, replace=False))
    sub_index = NeighbourIndex(points[rows], method=knn_method, n_neighbors=sub_cells, random_state=random_state)
    sub_deg, sub_dist = neighbourhood_statistics(sub_index, sub_cells, grid=True)
    cache = direct_search(
        sub_index, sub_deg, sub_dist, sub_cells, n_loc, random_state, bounds, max_evaluations, progress, final=False
    )
    ranked = sorted(cache.items(), key=lambda kv: (kv[1][0], kv[0]))
    return [ab for ab, _ in ranked[:FINAL_CANDIDATES]], len(cache)


def direct_search(
    index, in_degree, mean_dist, n_cells, n_loc, random_state, bounds, max_evaluations, progress, final=True
):
    """DIRECT over (alpha, beta): returns alpha, beta, loss, probes, members, coverage, evaluations."""
    cache: dict[tuple[float, float], tuple[float, np.ndarray, np.ndarray, np.ndarray]] = {}

    def evaluate(ab: np.ndarray) -> float:
        alpha, beta = float(ab[0]), float(ab[1])
        weights = cell_weights(in_degree, mean_dist, alpha, beta)
        probes = place_probes(index.data, weights, n_loc, random_state, max_iter=SEARCH_ITERATIONS)
        members, coverage = members_and_coverage(index, probes, n_cells)
        loss = coverage_loss(coverage, in_degree)
        cache[(alpha, beta)] = (loss, probes, members, coverage)
        if progress is not None:
            progress()
        return loss

    optimize.direct(evaluate, bounds=list(bounds), maxfun=max_evaluations, locally_biased=True)
    (alpha, beta), (loss, probes, members, coverage) = min(cache.items(), key=lambda kv: (kv[1][0], kv[0]))
    if not final:
        return cache
    # the search ranks (alpha, beta) with a few Lloyd iterations; run the winner to convergence
    weights = cell_weights(in_degree, mean_dist, alpha, beta)
    final = place_probes(index.data, weights, n_loc, random_state, init=probes)
    final_members, final_coverage = members_and_coverage(index, final, n_cells)
    final_loss = coverage_loss(final_coverage, in_degree)
    if final_loss <= loss:
        loss, probes, members, coverage = final_loss, final, final_members, final_coverage
    return alpha, beta, loss, probes, members, coverage, len(cache)
