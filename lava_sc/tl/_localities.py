"""``tl.localities``: cut the embedding into overlapping localities (probes placed by DIRECT on the
kNN in-degree, then the cells nearest each probe)."""

from __future__ import annotations

from typing import Literal

import numpy as np
import scipy.sparse as sp
from anndata import AnnData

from .. import _logging as logg
from .._adata import invalidate, writable
from .._core.knn import float32_frame
from .._core.localities import find_localities, n_localities_for, planned_evaluations
from .._docs import doc
from .._keys import DEFAULT_KEY, Keys
from .._params import LocalitiesSettings
from .._utils import advance, log_added, progress, store
from .._validate import check_adata, check_choice, check_float, check_int, check_key, embedding, resolve_basis

#: n_placements="auto": enough placements that they hold about this many localities together ...
PLACEMENT_TARGET = 100
#: ... and at most this many placements
MAX_PLACEMENTS = 5


def auto_placements(n_localities: int) -> int:
    """Placements for ``n_placements="auto"``: ``round(PLACEMENT_TARGET / l)`` within [1, MAX_PLACEMENTS]."""
    return int(np.clip(round(PLACEMENT_TARGET / max(n_localities, 1)), 1, MAX_PLACEMENTS))


def default_n_cells(n_obs: int) -> int:
    """Cells per locality when not given: n_obs / 7, kept within [50, 200] (and below n_obs)."""
    return int(min(n_obs, min(200, max(50, n_obs // 7))))


@doc()
def localities(
    adata: AnnData,
    basis: str = "X_umap",
    *,
    n_cells: int | None = None,
    overlap: float = 3.0,
    n_placements: int | Literal["auto"] = "auto",
    max_evaluations: int = 40,
    knn_method: Literal["auto", "exact", "pynndescent"] = "auto",
    max_exact_cells: int = 50_000,
    random_state: int = 0,
    key_added: str = DEFAULT_KEY,
    copy: bool = False,
) -> AnnData | None:
    """Cut an embedding into overlapping localities (LAVA step 1).

    Probes are the centres of a weighted l-means of the cells, l = ceil(n_obs * overlap / n_cells)
    (``n_placements`` independent placements of l probes on small data),
    with weights ``(indeg + 1)^alpha * (1 / mean_dist)^beta`` (kNN in-degree and mean distance to the
    ``n_cells`` nearest neighbours). ``scipy.optimize.direct`` chooses alpha and beta so that how often
    each cell is covered tracks its in-degree. A locality is the ``n_cells`` cells nearest a probe.

    The l-means is greedy weighted k-means++ (on a spatial grid for 2-d embeddings) followed by
    Lloyd iterations with KD-tree assignment; embeddings with more than 10 dimensions use
    scikit-learn's ``KMeans``. Each DIRECT evaluation ranks (alpha, beta) after 10 Lloyd iterations,
    and the winner is run to convergence.

    Parameters
    ----------
    adata
        Annotated data matrix with an embedding in ``obsm``.
    basis
        Embedding to cut: an ``obsm`` key (``"X_umap"`` or ``"umap"``); any dimension works
        (exact KD-tree search up to 10 dimensions, pynndescent above).
    n_cells
        Cells per locality (n). Default: ``n_obs / 7`` clipped to [50, 200]. Correlations need
        around 100 cells to be estimated well; smaller localities resolve finer regions.
    overlap
        Average number of localities each cell falls into (o), in each placement.
    n_placements
        Independent placements of the probes (K), each its own search from seeds drawn from
        ``random_state``, stacked as localities (a locality two placements share is kept once).
        :func:`~lava_sc.tl.modules` then keeps a pair only if it is significant in localities of more
        than half the placements. With few localities, which pairs recur depends on where one
        placement's boundaries fall (many placements have nearly the same coverage loss); the
        majority of placements is what does not. ``"auto"`` (default): ``round(100 / l)`` placements
        of ``l`` localities each, within [1, 5]: 1 wherever one placement has 67 or more localities
        (6,000 cells and more at the default ``n_cells``, so atlases are unchanged), 5 on
        pbmc68k_reduced (21 localities each), 4 on the sklearn digits (27). Each placement costs one
        more search here and one more set of localities in ``tl.correlations``. Measured on
        pbmc68k_reduced (``tl.modules`` under ``random_state`` 0-7, modules matched between every two
        seeds; ``benchmarks/README.md``): mean matched Jaccard 0.47 with 1 placement, 0.54 with 3,
        0.62 with 5, 0.65 with 8, 0.63 with 12; with 5, keeping pairs found in at least 1, 2, 3 or 4
        placements gave 0.51, 0.54, 0.62, 0.55.
    max_evaluations
        Objective evaluations allowed to DIRECT when choosing alpha and beta.
    knn_method
        ``"auto"``, ``"exact"`` or ``"pynndescent"``.
    max_exact_cells
        Above this many cells, DIRECT searches alpha and beta on a uniform subsample scaled to the
        same geometry (at least 20,000 cells, and at least 10 per locality; the same number of
        localities with proportionally fewer cells each, so they cover the same extent of the
        embedding), and the five best (alpha, beta) are placed on all cells, keeping the best: the
        exact search would re-run a k-means of all cells at every evaluation. On data where both
        run, the coverage loss of this path is within 5% of the exact one (see ``benchmarks/``).
    random_state
        Seed for l-means and pynndescent.
    key_added
        Results go to ``obsm[f"{key_added}_localities"]`` and ``uns[key_added]``.
    {copy}

    Returns
    -------
    ``None``, or the copy when ``copy=True``. Writes

    - ``obsm[f"{key_added}_localities"]``: sparse cells x localities membership (1.0 = member);
    - ``uns[key_added]["probes"]``: probe coordinates, localities x dims;
    - ``uns[key_added]["localities"]``: diagnostics ``basis``, ``n_localities`` (over all placements),
      ``n_placements``, ``in_placement`` (localities x placements, boolean: the placements holding each
      locality), ``alpha``, ``beta`` and ``coverage_loss`` (of placement 0, the one ``random_state``
      alone gives), ``n_uncovered`` and ``n_evaluations``;
    - ``obs[f"{key_added}_in_degree"]``: each cell's kNN in-degree (what coverage is matched to). A
      cell's coverage is the row sum of the membership. Everything per cell lives in ``obs`` /
      ``obsm``, so ``adata[mask]`` keeps it aligned;
    - ``uns[key_added]["params"]["localities"]``.

    Earlier results under the same key (correlations, modules, ``obsm[f"{key_added}_activity"]``)
    are removed, since they belong to other localities; use another ``key_added`` to keep both.
    """
    check_adata(adata)
    key = check_key(key_added)
    basis = resolve_basis(adata, basis)
    points = embedding(adata, basis)
    n_obs = adata.n_obs
    n_cells = default_n_cells(n_obs) if n_cells is None else check_int("n_cells", n_cells, low=3)
    if n_cells > n_obs:
        raise ValueError(f"`n_cells`={n_cells} exceeds the {n_obs} cells in adata; pass a smaller `n_cells`.")
    if n_obs < 10:
        raise ValueError(f"adata has {n_obs} cells; LAVA needs at least 10 (and ideally thousands).")
    overlap = check_float("overlap", overlap, low=0.0, open_low=True)
    max_evaluations = check_int("max_evaluations", max_evaluations, low=5, high=100_000)
    max_exact_cells = check_int("max_exact_cells", max_exact_cells, low=1000)
    check_choice("knn_method", knn_method, ("auto", "exact", "pynndescent"))
    random_state = check_int("random_state", random_state, low=0)
    n_loc_each = n_localities_for(n_obs, n_cells, overlap)
    if n_loc_each > n_obs:
        raise ValueError(f"`overlap`={overlap} asks for more localities than cells; lower `overlap`.")
    if isinstance(n_placements, str) and n_placements != "auto":
        raise TypeError(
            f"`n_placements` must be 'auto' or an integer from 1 to {MAX_PLACEMENTS}, got {n_placements!r}."
        )
    placements_used = (
        auto_placements(n_loc_each)
        if n_placements == "auto"
        else check_int("n_placements", n_placements, low=1, high=MAX_PLACEMENTS)
    )

    if not adata.obs_names.is_unique:
        logg.warning(
            "tl.localities: adata.obs_names has duplicates, so per-cell results cannot be told apart by name "
            "(get.activity, adata[names]); run adata.obs_names_make_unique() first."
        )
    adata = writable(adata, copy)
    start = logg.info(
        f"placing LAVA localities on {basis!r} ({n_cells} cells each, overlap {overlap:g}"
        + (f", {placements_used} placements of {n_loc_each})" if placements_used > 1 else ")")
    )
    planned = planned_evaluations(n_obs, max_evaluations, max_exact_cells, placements_used)
    with progress(planned, "probe search (DIRECT)") as bar:
        centre, scale = float32_frame(points)  # the identity for ordinary embeddings
        result = find_localities(
            (points - centre) / scale,
            n_cells=n_cells,
            overlap=overlap,
            random_state=random_state,
            n_placements=placements_used,
            max_evaluations=max_evaluations,
            knn_method=knn_method,
            max_exact_cells=max_exact_cells,
            search_cells=min(20_000, max_exact_cells),
            progress=lambda: advance(bar),
        )
        bar.total = bar.n  # DIRECT may also stop short of its budget
    members, probes, in_placement = distinct_localities(
        result.members, result.probes * scale + centre, result.placement
    )
    n_loc = len(probes)
    coverage = np.bincount(members.ravel(), minlength=n_obs)
    warn_if_coverage_collapsed(coverage, overlap)
    membership = sp.csr_matrix(
        (
            np.ones(members.size, dtype=np.float32),
            (members.ravel(), np.repeat(np.arange(n_loc), n_cells)),
        ),
        shape=(n_obs, n_loc),
    )
    keys = Keys(key)
    adata.obsm[keys.obsm_localities] = membership
    invalidate(adata, key, "localities")
    store(
        adata,
        key,
        probes=probes.astype(np.float64),
        localities={
            "basis": basis,
            "n_localities": n_loc,
            "n_placements": placements_used,
            "in_placement": in_placement,
            "alpha": result.alpha,
            "beta": result.beta,
            "coverage_loss": result.coverage_loss,
            "n_uncovered": int((coverage == 0).sum()),
            "n_evaluations": result.n_evaluations,
        },
    )
    adata.obs[keys.obs_in_degree] = result.in_degree.astype(np.float64)
    LocalitiesSettings(
        basis=basis,
        n_cells=n_cells,
        overlap=overlap,
        n_placements=n_placements,
        n_placements_used=placements_used,
        max_evaluations=max_evaluations,
        knn_method=knn_method,
        max_exact_cells=max_exact_cells,
        random_state=random_state,
    ).store(adata, key, result=(probes, membership))
    log_added(
        f"{n_loc} localities (alpha={result.alpha:.2f}, beta={result.beta:.2f}, "
        f"{int((coverage == 0).sum())} cells uncovered)",
        start,
        [
            f"'{keys.obsm_localities}', locality membership (adata.obsm)",
            f"'{keys.obs_in_degree}', kNN in-degree (adata.obs)",
            f"'{key}' probes, diagnostics, params (adata.uns)",
        ],
    )
    return adata if copy else None


#: share of uncovered cells above which the localities are said not to cover the embedding
UNCOVERED_WARN = 0.2


def distinct_localities(
    members: np.ndarray, probes: np.ndarray, placement: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keep the first of each set of localities with identical members (in their order).

    Returns the kept members and probes and, per kept locality, the placements that hold it
    (localities x placements, boolean): placements often share a locality, which counts once as
    support but belongs to each of them. Cells stacked on one coordinate, or ``n_cells`` close to
    ``n_obs``, give several probes of one placement the same cells (a warning says so); counted apart,
    one locality's correlations would count as independent support several times and fake recurrence.
    """
    n_placements = int(placement.max(initial=0)) + 1
    _, first, inverse = np.unique(np.sort(members, axis=1), axis=0, return_index=True, return_inverse=True)
    inverse = np.asarray(inverse).ravel()
    held = np.zeros((len(first), n_placements), dtype=bool)
    held[inverse, placement] = True
    within = len(members) - int(held.sum())  # repeats inside one placement
    if within:
        logg.warning(
            f"tl.localities: {within} of {len(members)} localities had exactly the same cells as another of their "
            "placement (cells stacked on the same coordinates, or n_cells close to the number of cells); kept one "
            "of each, so that a locality's correlations count once as support."
        )
    order = np.argsort(first, kind="stable")
    keep = first[order]
    return members[keep], probes[keep], held[order]


def warn_if_coverage_collapsed(coverage: np.ndarray, overlap: float) -> None:
    uncovered = float(np.mean(coverage == 0))
    if uncovered > UNCOVERED_WARN:
        logg.warning(
            f"tl.localities: {uncovered:.0%} of the cells are in no locality (overlap {overlap:g}); their activity "
            "comes from the nearest probe only. Raise `overlap` or `n_cells`."
        )
