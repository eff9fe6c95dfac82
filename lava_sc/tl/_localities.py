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
    max_evaluations: int = 40,
    knn_method: Literal["auto", "exact", "pynndescent"] = "auto",
    max_exact_cells: int = 50_000,
    random_state: int = 0,
    key_added: str = DEFAULT_KEY,
    copy: bool = False,
) -> AnnData | None:
    """Cut an embedding into overlapping localities (LAVA step 1).

    Probes are the centres of a weighted l-means of the cells, l = ceil(n_obs * overlap / n_cells),
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
        Average number of localities each cell falls into (o).
    max_evaluations
        Objective evaluations allowed to DIRECT when choosing alpha and beta.
    knn_method
        ``"auto"``, ``"exact"`` or ``"pynndescent"``.
    max_exact_cells
        Above this many cells, DIRECT searches alpha and beta on a uniform subsample scaled to the
        same geometry (at least 20,000 cells, and at least 20 per locality; the same number of
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
    - ``uns[key_added]["localities"]``: diagnostics ``basis``, ``n_localities``, ``alpha``, ``beta``,
      ``coverage_loss``, ``n_uncovered`` and ``n_evaluations``;
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
    if n_localities_for(n_obs, n_cells, overlap) > n_obs:
        raise ValueError(f"`overlap`={overlap} asks for more localities than cells; lower `overlap`.")

    if not adata.obs_names.is_unique:
        logg.warning(
            "tl.localities: adata.obs_names has duplicates, so per-cell results cannot be told apart by name "
            "(get.activity, adata[names]); run adata.obs_names_make_unique() first."
        )
    adata = writable(adata, copy)
    start = logg.info(f"placing LAVA localities on {basis!r} ({n_cells} cells each, overlap {overlap:g})")
    planned = planned_evaluations(n_obs, max_evaluations, max_exact_cells)
    with progress(planned, "probe search (DIRECT)") as bar:
        centre, scale = float32_frame(points)  # the identity for ordinary embeddings
        result = find_localities(
            (points - centre) / scale,
            n_cells=n_cells,
            overlap=overlap,
            random_state=random_state,
            max_evaluations=max_evaluations,
            knn_method=knn_method,
            max_exact_cells=max_exact_cells,
            search_cells=min(20_000, max_exact_cells),
            progress=lambda: advance(bar),
        )
        bar.total = bar.n  # DIRECT may also stop short of its budget
    members, probes = distinct_localities(result.members, result.probes * scale + centre)
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


def distinct_localities(members: np.ndarray, probes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keep the first of each set of localities with identical members (in their order), with a warning.

    Cells stacked on one coordinate, or ``n_cells`` close to ``n_obs``, give several probes the same
    cells; counted apart, one locality's correlations would count as independent support several
    times and fake recurrence.
    """
    _, first = np.unique(np.sort(members, axis=1), axis=0, return_index=True)
    if len(first) == len(members):
        return members, probes
    keep = np.sort(first)
    logg.warning(
        f"tl.localities: {len(members) - len(keep)} of {len(members)} localities had exactly the same cells as "
        "another (cells stacked on the same coordinates, or n_cells close to the number of cells); kept one of "
        "each, so that a locality's correlations count once as support."
    )
    return members[keep], probes[keep]


def warn_if_coverage_collapsed(coverage: np.ndarray, overlap: float) -> None:
    uncovered = float(np.mean(coverage == 0))
    if uncovered > UNCOVERED_WARN:
        logg.warning(
            f"tl.localities: {uncovered:.0%} of the cells are in no locality (overlap {overlap:g}); their activity "
            "comes from the nearest probe only. Raise `overlap` or `n_cells`."
        )
