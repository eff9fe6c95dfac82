"""Tests for the SIMULATED atlas with realistic nuisance structure: :func:`simulate_atlas`."""

from __future__ import annotations

import itertools

import anndata
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from lava_sc.datasets import simulate_atlas

CELL_TYPES = ["A1", "A2", "B", "C1", "C2", "D"]
CONDITIONS = ["control", "disease"]
TOUCHING = {("A1", "A2"), ("C1", "C2")}
# the documented design: program -> (size, active cell types, active conditions)
DESIGN = {
    "recurring": (12, {"A1", "D"}, {"control", "disease"}),
    "signed": (14, {"B"}, {"control", "disease"}),
    "straddle": (16, {"A1", "A2"}, {"control", "disease"}),
    "condition": (8, {"C1"}, {"disease"}),
    "small": (6, {"C2"}, {"control", "disease"}),
    "gradient": (10, {"D"}, {"control", "disease"}),
    "response": (20, {"B"}, {"disease"}),
}
# programs planted as correlation among their genes (gradient and response move means instead)
CORRELATION_PROGRAMS = ["recurring", "signed", "straddle", "condition", "small"]
N_CELLS = 1500


@pytest.fixture(scope="module")
def atlas() -> anndata.AnnData:
    return simulate_atlas(n_cells=N_CELLS, umap=False, random_state=0)


@pytest.fixture(scope="module")
def no_state() -> anndata.AnnData:
    return simulate_atlas(n_cells=N_CELLS, umap=False, state_strength=0.0, random_state=0)


@pytest.fixture(scope="module")
def no_program() -> anndata.AnnData:
    return simulate_atlas(n_cells=N_CELLS, umap=False, program_strength=0.0, random_state=0)


def _dense(x) -> np.ndarray:
    return x.toarray() if sparse.issparse(x) else np.asarray(x)


def _genes(adata: anndata.AnnData, program: str) -> np.ndarray:
    """Dense log-normalised expression of a program's genes (cells x genes)."""
    cols = adata.var_names.get_indexer(adata.uns["planted"][program])
    assert (cols >= 0).all()
    return _dense(adata.X[:, cols]).astype(np.float64)


def _sign(program: str, size: int) -> np.ndarray:
    """The documented signs: ``signed`` has a positive first half and a negative second half."""
    if program == "signed":
        return np.where(np.arange(size) < size // 2, 1.0, -1.0)
    return np.ones(size)


def _mean_pairwise_corr(x: np.ndarray, sign: np.ndarray | None = None) -> float:
    r = np.corrcoef(x.T)
    if sign is not None:
        r = r * np.outer(sign, sign)
    return float(np.nanmean(r[np.triu_indices(x.shape[1], 1)]))


def _mask(adata: anndata.AnnData, cell_type: str, condition: str | None = None) -> np.ndarray:
    m = (adata.obs["cell_type"] == cell_type).to_numpy()
    if condition is not None:
        m &= (adata.obs["condition"] == condition).to_numpy()
    return m


# ---------------------------------------------------------------- layout


def test_layout_obs_var_uns(atlas):
    assert atlas.shape == (N_CELLS, 1000)
    assert atlas.obs_names.is_unique and atlas.var_names.is_unique
    obs = atlas.obs
    for col in ("cell_type", "condition", "donor"):
        assert isinstance(obs[col].dtype, pd.CategoricalDtype), col
    assert list(obs["cell_type"].cat.categories) == CELL_TYPES
    assert list(obs["condition"].cat.categories) == CONDITIONS
    assert set(obs["cell_type"]) == set(CELL_TYPES)
    # conditions about balanced; 4 donors per condition, each nested in exactly one condition
    assert abs((obs["condition"] == "disease").mean() - 0.5) < 0.01
    donors = [f"{c}_{i}" for c in CONDITIONS for i in range(1, 5)]
    assert list(obs["donor"].cat.categories) == donors
    per_donor = obs.groupby("donor", observed=True)["condition"].agg(["nunique", "first"])
    assert len(per_donor) == len(donors) and (per_donor["nunique"] == 1).all()
    for donor, cond in per_donor["first"].items():
        assert donor.startswith(f"{cond}_"), (donor, cond)
    assert (obs["depth"] > 0).all() and (obs["total_counts"] > 0).all()

    # the active masks are the documented design: cell types x conditions
    for program, (_, types, conds) in DESIGN.items():
        col = obs[f"active_{program}"]
        assert col.dtype == bool, program
        expected = obs["cell_type"].isin(types).to_numpy() & obs["condition"].isin(conds).to_numpy()
        np.testing.assert_array_equal(col.to_numpy(), expected, err_msg=program)
        assert col.sum() > 50, program

    # the gradient axis: standardised inside D, 0 elsewhere
    axis = obs["axis"].to_numpy()
    inside = _mask(atlas, "D")
    assert (axis[~inside] == 0).all()
    assert abs(axis[inside].mean()) < 1e-8 and abs(axis[inside].std() - 1.0) < 1e-8

    # uns["planted"]: the documented sizes (6 to 20), disjoint, and var["planted_module"] agrees
    planted = atlas.uns["planted"]
    assert list(planted) == list(DESIGN)
    sizes = {p: len(g) for p, g in planted.items()}
    assert sizes == {p: d[0] for p, d in DESIGN.items()}
    assert min(sizes.values()) == 6 and max(sizes.values()) == 20
    all_genes = np.concatenate([np.asarray(g) for g in planted.values()])
    assert len(set(all_genes)) == len(all_genes)
    assert set(all_genes) <= set(atlas.var_names)
    module = atlas.var["planted_module"].astype(str)
    for program, genes in planted.items():
        assert (module.loc[list(genes)] == program).all(), program
        assert all(g.startswith(f"{program}_") for g in genes)
    # markers and background genes belong to no program
    rest = module.index[~module.index.isin(all_genes)]
    assert (module.loc[rest] == "none").all()
    assert set(module.unique()) == set(DESIGN) | {"none"}
    n_markers = 4 * 12 + 2 * 4  # 12 per type, 4 for each touching type
    assert rest.str.startswith("mk_").sum() == n_markers
    assert rest.str.startswith("gene_").sum() == 1000 - n_markers - sum(sizes.values())

    sim = atlas.uns["simulation"]
    assert "SIMULATED" in sim["description"]
    assert sim["n_cells"] == N_CELLS and sim["n_genes"] == 1000 and sim["umap"] is False
    assert sim["program_strength"] == 1.0 and sim["state_strength"] == 0.25
    assert sim["n_state"] == 3 and sim["n_donors"] == 4 and sim["random_state"] == 0


def test_matrices_and_embedding(atlas):
    x, counts = atlas.X, atlas.layers["counts"]
    assert sparse.issparse(x) and x.format == "csr" and x.dtype == np.float32
    assert sparse.issparse(counts) and counts.format == "csr" and np.issubdtype(counts.dtype, np.integer)
    c = _dense(counts).astype(np.float64)
    assert c.min() >= 0 and c.sum() > 0
    # X is normalize_total(target 1e4 of the cell's total, incl. unsimulated genes) + log1p of the counts
    total = atlas.obs["total_counts"].to_numpy()[:, None]
    assert (total >= c.sum(1, keepdims=True)).all()
    np.testing.assert_allclose(_dense(x), np.log1p(c / total * 1e4), rtol=1e-5, atol=1e-5)
    assert x.nnz == counts.nnz  # same sparsity pattern: zeros stay zeros

    hvg = atlas.var["highly_variable"]
    assert hvg.dtype == bool and hvg.any()
    for col in ("means", "dispersions", "dispersions_norm"):
        assert col in atlas.var
    assert atlas.obsm["X_pca"].shape == (N_CELLS, 30) and atlas.obsm["X_pca"].dtype == np.float32
    assert np.isfinite(atlas.obsm["X_pca"]).all()
    # umap=False: X_umap is the first two PCs and no graph is computed
    np.testing.assert_array_equal(atlas.obsm["X_umap"], atlas.obsm["X_pca"][:, :2])
    assert "connectivities" not in atlas.obsp and "umap" not in atlas.uns


def test_smallest_allowed_size():
    adata = simulate_atlas(n_cells=1000, n_genes=242, umap=False, n_donors=1, random_state=3)
    assert adata.shape == (1000, 242)
    assert (adata.var_names.str.startswith("gene_")).sum() == 100
    assert list(adata.obs["donor"].cat.categories) == ["control_1", "disease_1"]
    assert adata.obsm["X_pca"].shape == (1000, 30)


def test_umap_embedding_separates_types_and_places_touching_types_together():
    adata = simulate_atlas(n_cells=1000, n_genes=300, umap=True, random_state=1)
    umap = adata.obsm["X_umap"]
    assert umap.shape == (1000, 2) and umap.dtype == np.float32 and np.isfinite(umap).all()
    assert not np.allclose(umap, adata.obsm["X_pca"][:, :2])
    assert "connectivities" in adata.obsp and "distances" in adata.obsp and "umap" in adata.uns
    assert adata.uns["simulation"]["umap"] is True
    touching, other = _centroid_distances(adata, "X_umap")
    assert max(touching) < 0.5 * min(other), (touching, other)


# ---------------------------------------------------------------- determinism


def test_deterministic_for_a_seed_and_different_across_seeds(atlas):
    again = simulate_atlas(n_cells=N_CELLS, umap=False, random_state=0)
    assert (again.X != atlas.X).nnz == 0
    assert (again.layers["counts"] != atlas.layers["counts"]).nnz == 0
    pd.testing.assert_frame_equal(again.obs, atlas.obs)
    pd.testing.assert_frame_equal(again.var, atlas.var)
    np.testing.assert_array_equal(again.obsm["X_pca"], atlas.obsm["X_pca"])
    for p in atlas.uns["planted"]:
        np.testing.assert_array_equal(again.uns["planted"][p], atlas.uns["planted"][p])

    other = simulate_atlas(n_cells=N_CELLS, umap=False, random_state=1)
    assert other.shape == atlas.shape
    assert (other.layers["counts"] != atlas.layers["counts"]).nnz > 0.1 * atlas.layers["counts"].nnz
    assert (other.obs["cell_type"].to_numpy() != atlas.obs["cell_type"].to_numpy()).mean() > 0.5
    # the gene names (and so the planted gene sets) are the same design for every seed
    assert list(other.var_names) == list(atlas.var_names)


# ---------------------------------------------------------------- planted structure


@pytest.mark.parametrize("program", CORRELATION_PROGRAMS)
def test_correlation_programs_correlate_only_where_active(atlas, no_program, program):
    x = _genes(atlas, program)
    sign = _sign(program, x.shape[1])
    active = atlas.obs[f"active_{program}"].to_numpy()
    inside = _mean_pairwise_corr(x[active], sign)
    outside = _mean_pairwise_corr(x[~active], sign)
    assert inside > 0.12, (program, inside)
    assert abs(outside) < 0.03, (program, outside)
    # program_strength=0 plants nothing: the same genes in the same cells do not correlate
    x0 = _genes(no_program, program)
    none = _mean_pairwise_corr(x0[no_program.obs[f"active_{program}"].to_numpy()], sign)
    assert abs(none) < 0.05, (program, none)


def test_signed_program_has_two_anticorrelated_halves(atlas):
    x = _genes(atlas, "signed")[atlas.obs["active_signed"].to_numpy()]
    r = np.corrcoef(x.T)
    half = x.shape[1] // 2
    within = np.concatenate([r[:half, :half][np.triu_indices(half, 1)], r[half:, half:][np.triu_indices(half, 1)]])
    across = r[:half, half:].ravel()
    assert within.mean() > 0.15, within.mean()
    assert across.mean() < -0.1, across.mean()
    assert (across < 0).mean() > 0.9
    # unsigned, the two halves cancel: the mean pairwise correlation is near 0
    assert abs(_mean_pairwise_corr(x)) < 0.1


def test_condition_program_changes_correlation_not_mean(atlas):
    x = _genes(atlas, "condition")
    disease, control = _mask(atlas, "C1", "disease"), _mask(atlas, "C1", "control")
    assert _mean_pairwise_corr(x[disease]) > 0.15
    assert abs(_mean_pairwise_corr(x[control])) < 0.06
    # inactive cells carry independent noise of the same size: the genes' mean does not move
    assert abs((x[disease].mean(0) - x[control].mean(0)).mean()) < 0.1


def test_gradient_genes_follow_the_axis_inside_d(atlas, no_program):
    inside = _mask(atlas, "D")
    axis = atlas.obs["axis"].to_numpy()[inside]
    x = _genes(atlas, "gradient")[inside]
    r = np.array([np.corrcoef(g, axis)[0, 1] for g in x.T])
    assert (r > 0.2).all() and r.mean() > 0.45, r
    inside0 = _mask(no_program, "D")
    axis0 = no_program.obs["axis"].to_numpy()[inside0]
    r0 = np.array([np.corrcoef(g, axis0)[0, 1] for g in _genes(no_program, "gradient")[inside0].T])
    assert abs(r0.mean()) < 0.1, r0


def test_response_genes_are_raised_in_disease_cells_of_b(atlas, no_program):
    x = _genes(atlas, "response")
    diff = {t: x[_mask(atlas, t, "disease")].mean(0) - x[_mask(atlas, t, "control")].mean(0) for t in CELL_TYPES}
    assert diff["B"].mean() > 0.3 and (diff["B"] > 0).mean() >= 0.9, diff["B"]
    for t in CELL_TYPES:
        if t != "B":
            assert abs(diff[t].mean()) < 0.1, (t, diff[t].mean())
    x0 = _genes(no_program, "response")
    d0 = x0[_mask(no_program, "B", "disease")].mean(0) - x0[_mask(no_program, "B", "control")].mean(0)
    assert abs(d0.mean()) < 0.1, d0.mean()


# ---------------------------------------------------------------- dense within-type state


def _state_spectrum(adata: anndata.AnnData, cell_type: str, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Top eigenvalues of the within-type correlation of background genes, and of a shuffled copy.

    Log total counts are regressed out first: library size is a (real, expected) common factor of
    log-normalised sparse counts that exists whatever ``state_strength`` is.
    """
    cells = _mask(adata, cell_type)
    background = adata.var_names.str.startswith("gene_")
    x = _dense(adata.X[cells][:, background]).astype(np.float64)
    z = np.column_stack([np.ones(cells.sum()), np.log(adata.obs["total_counts"].to_numpy()[cells])])
    x -= z @ np.linalg.lstsq(z, x, rcond=None)[0]
    x = x[:, x.std(0) > 1e-8]
    rng = np.random.default_rng(0)
    shuffled = np.column_stack([rng.permutation(col) for col in x.T])
    top = np.linalg.eigvalsh(np.corrcoef(x.T))[::-1][:k]
    null = np.linalg.eigvalsh(np.corrcoef(shuffled.T))[::-1][:k]
    return top, null


@pytest.mark.parametrize("cell_type", ["A1", "B"])
def test_dense_state_makes_background_genes_correlate_within_a_type(atlas, no_state, cell_type):
    top, null = _state_spectrum(atlas, cell_type)
    # rank n_state = 3: three eigenvalues far above the shuffled spectrum, the fourth is not
    assert (top[:3] > 2.5 * null[0]).all(), (top, null)
    assert top[3] < 1.5 * null[0], (top, null)
    # state_strength=0: the spectrum is that of shuffled data
    top0, null0 = _state_spectrum(no_state, cell_type)
    assert top0[0] < 1.25 * null0[0], (top0, null0)


def test_state_rank_follows_n_state():
    adata = simulate_atlas(n_cells=N_CELLS, umap=False, n_state=1, random_state=0)
    top, null = _state_spectrum(adata, "A1")
    assert top[0] > 2.5 * null[0] and top[1] < 1.5 * null[0], (top, null)


# ---------------------------------------------------------------- touching types


def _centroid_distances(adata: anndata.AnnData, basis: str) -> tuple[list[float], list[float]]:
    emb = np.asarray(adata.obsm[basis], dtype=np.float64)
    centre = {t: emb[_mask(adata, t)].mean(0) for t in CELL_TYPES}
    touching, other = [], []
    for s, t in itertools.combinations(CELL_TYPES, 2):
        d = float(np.linalg.norm(centre[s] - centre[t]))
        (touching if (s, t) in TOUCHING else other).append(d)
    return touching, other


def test_touching_types_are_closer_in_pca(atlas):
    touching, other = _centroid_distances(atlas, "X_pca")
    assert len(touching) == 2 and len(other) == 13
    assert max(touching) < 0.5 * min(other), (touching, other)
    # but they are still distinct populations (different within-type state, a few markers): a cell's
    # nearest neighbours in X_pca are mostly of its own type, far above the mixing proportion
    from sklearn.neighbors import NearestNeighbors

    emb = atlas.obsm["X_pca"].astype(np.float64)
    labels = atlas.obs["cell_type"].to_numpy()
    for pair in TOUCHING:
        cells = np.flatnonzero(np.isin(labels, pair))
        _, nbrs = NearestNeighbors(n_neighbors=16).fit(emb[cells]).kneighbors(emb[cells])
        lab = labels[cells]
        purity = (lab[nbrs[:, 1:]] == lab[:, None]).mean()
        chance = max((lab == t).mean() for t in pair)
        assert purity > 0.85 and purity > chance + 0.2, (pair, purity, chance)


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n_cells": 999}, ValueError, r"`n_cells` must be at least 1000"),
        ({"n_cells": 1500.0}, TypeError, r"`n_cells` must be an int"),
        ({"n_cells": True}, TypeError, r"`n_cells` must be an int, got bool"),
        ({"n_genes": 241}, ValueError, r"`n_genes` must be at least 242"),
        ({"n_state": 0}, ValueError, r"`n_state` must be at least 1"),
        ({"n_donors": 0}, ValueError, r"`n_donors` must be at least 1"),
        ({"n_donors": "4"}, TypeError, r"`n_donors` must be an int, got str"),
        ({"random_state": -1}, ValueError, r"`random_state` must be at least 0"),
        ({"random_state": None}, TypeError, r"`random_state` must be an int"),
        ({"program_strength": -0.5}, ValueError, r"`program_strength` must be finite and >= 0"),
        ({"state_strength": -1}, ValueError, r"`state_strength` must be finite and >= 0"),
        ({"state_strength": float("nan")}, ValueError, r"`state_strength` must be finite"),
        ({"program_strength": float("inf")}, ValueError, r"`program_strength` must be finite"),
        ({"program_strength": "1"}, TypeError, r"`program_strength` must be a number, got str"),
        ({"state_strength": True}, TypeError, r"`state_strength` must be a number, got bool"),
    ],
)
def test_bad_input_raises_clear_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        simulate_atlas(umap=False, **kwargs)


def test_numpy_scalars_are_accepted():
    adata = simulate_atlas(
        n_cells=np.int64(1000),
        n_genes=np.int32(300),
        program_strength=np.float32(0.5),
        state_strength=np.float64(0.1),
        umap=False,
        random_state=np.int64(2),
    )
    assert adata.shape == (1000, 300)
    sim = adata.uns["simulation"]
    assert type(sim["n_cells"]) is int and type(sim["program_strength"]) is float
    assert sim["program_strength"] == 0.5 and sim["state_strength"] == 0.1
