import numpy as np
import pytest
import scipy.sparse as sp

import lava_sc as lv
from lava_sc._core.knn import NeighbourIndex
from lava_sc._core.localities import (
    coverage_loss,
    find_localities,
    members_and_coverage,
    n_localities_for,
    place_probes,
)


def test_writes_membership_probes_and_diagnostics(pbmc):
    adata = pbmc.copy()
    lv.tl.localities(adata, n_cells=100, overlap=3, n_placements=1)
    member = adata.obsm["lava_localities"]
    n_loc = int(np.ceil(700 * 3 / 100))
    assert sp.issparse(member) and member.shape == (700, n_loc)
    np.testing.assert_array_equal(np.asarray(member.sum(axis=0)).ravel(), 100)
    diag = adata.uns["lava"]["localities"]
    assert adata.uns["lava"]["probes"].shape == (n_loc, 2)
    assert 0 <= diag["alpha"] <= 3 and 0 <= diag["beta"] <= 3
    assert diag["n_uncovered"] == int((np.asarray(member.sum(axis=1)).ravel() == 0).sum())
    assert adata.uns["lava"]["params"]["localities"]["n_cells"] == 100


def test_auto_placements_hold_about_100_localities_together():
    from lava_sc.tl._localities import auto_placements

    assert [auto_placements(n) for n in (1, 21, 27, 45, 66, 67, 90, 5000)] == [5, 5, 4, 2, 2, 1, 1, 1]


def test_placements_are_independent_and_the_first_is_the_single_one(pbmc):
    single, several = pbmc.copy(), pbmc.copy()
    lv.tl.localities(single, n_cells=100, n_placements=1, random_state=2)
    lv.tl.localities(several, n_cells=100, random_state=2)  # auto: 21 localities per placement -> 5
    diag = several.uns["lava"]["localities"]
    held = np.asarray(diag["in_placement"])
    member = several.obsm["lava_localities"].tocsc()
    assert diag["n_placements"] == 5 and several.uns["lava"]["params"]["localities"]["n_placements_used"] == 5
    assert held.shape == (member.shape[1], 5) and diag["n_localities"] == member.shape[1]
    np.testing.assert_array_equal(held.sum(axis=0), 21)  # every placement keeps its 21 localities
    assert held.any(axis=1).all()
    # a locality is stored once, however many placements hold it
    cells = [tuple(member.indices[member.indptr[j] : member.indptr[j + 1]]) for j in range(member.shape[1])]
    assert len(set(cells)) == len(cells)
    # placement 0 is what random_state gives alone; the others are other cuts of the embedding
    np.testing.assert_array_equal(several.uns["lava"]["probes"][:21], single.uns["lava"]["probes"])
    assert (member[:, :21] != single.obsm["lava_localities"].tocsc()).nnz == 0
    assert held[:21, 0].all() and not held[21:, 0].any()
    assert len(cells) > 21 + 21  # the other placements are not copies of the first


def test_members_are_the_nearest_cells_to_each_probe(pbmc):
    adata = pbmc.copy()
    lv.tl.localities(adata, n_cells=50, overlap=2)
    probes = adata.uns["lava"]["probes"]
    umap = adata.obsm["X_umap"]
    member = adata.obsm["lava_localities"].tocsc()
    for loc in range(3):
        d = np.linalg.norm(umap - probes[loc], axis=1)
        inside = member[:, loc].toarray().ravel() > 0
        assert d[inside].max() <= np.sort(d)[50] + 1e-4


def test_direct_improves_on_unweighted_kmeans(planted):
    points = planted.obsm["X_umap"]
    tuned = find_localities(points, n_cells=150, overlap=3, max_evaluations=30)
    index = NeighbourIndex(points)
    n_loc = n_localities_for(len(points), 150, 3)
    probes = place_probes(index.data, np.ones(len(points)), n_loc, 0)
    _, coverage = members_and_coverage(index, probes, 150)
    unweighted = coverage_loss(coverage, tuned.in_degree)
    print(f"coverage loss: DIRECT-tuned {tuned.coverage_loss:.4f}, unweighted l-means {unweighted:.4f}")
    assert tuned.coverage_loss <= unweighted
    assert tuned.coverage_loss == pytest.approx(coverage_loss(tuned.coverage, tuned.in_degree))


def test_high_dimensional_basis_uses_pynndescent(pbmc):
    adata = pbmc.copy()
    lv.tl.localities(adata, "X_pca", n_cells=60, knn_method="pynndescent", n_placements=1)
    assert adata.obsm["lava_localities"].shape[0] == 700
    # approximate neighbours agree closely with exact ones on 50-d PCA
    exact = pbmc.copy()
    lv.tl.localities(exact, "X_pca", n_cells=60, knn_method="exact", n_placements=1)
    a, b = adata.obsm["lava_localities"], exact.obsm["lava_localities"]
    assert abs(a.sum() - b.sum()) == 0


def test_deterministic_and_basis_alias(pbmc):
    a, b = pbmc.copy(), pbmc.copy()
    lv.tl.localities(a, "X_umap", random_state=3)
    lv.tl.localities(b, "umap", random_state=3)
    assert (a.obsm["lava_localities"] != b.obsm["lava_localities"]).nnz == 0


def test_copy_leaves_input_untouched(pbmc):
    adata = pbmc.copy()
    out = lv.tl.localities(adata, copy=True)
    assert "lava" not in adata.uns and "lava_localities" not in adata.obsm
    assert "lava_localities" in out.obsm


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"basis": "X_tsne"}, KeyError, "sc.tl.umap"),
        ({"n_cells": 10_000}, ValueError, "smaller `n_cells`"),
        ({"n_cells": 0}, ValueError, "n_cells"),
        ({"n_cells": 2.5}, TypeError, "integer"),
        ({"overlap": -1}, ValueError, "overlap"),
        ({"overlap": 500}, ValueError, "lower `overlap`"),
        ({"knn_method": "annoy"}, ValueError, "knn_method"),
        ({"n_placements": 0}, ValueError, "`n_placements` must be >= 1"),
        ({"n_placements": 6}, ValueError, "`n_placements` must be <= 5"),
        ({"n_placements": "many"}, TypeError, "'auto' or an integer from 1 to 5"),
    ],
)
def test_bad_arguments(pbmc, kwargs, error, match):
    with pytest.raises(error, match=match):
        lv.tl.localities(pbmc.copy(), **kwargs)


def test_nan_in_embedding_is_reported(pbmc):
    adata = pbmc.copy()
    adata.obsm["X_umap"] = adata.obsm["X_umap"].copy()
    adata.obsm["X_umap"][5, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or inf in 1 cells"):
        lv.tl.localities(adata)


def test_not_anndata():
    with pytest.raises(TypeError, match="AnnData"):
        lv.tl.localities(np.zeros((10, 2)))


def test_fast_path_for_large_data_places_probes_like_the_exact_path(planted):
    exact = planted.copy()
    fast = planted.copy()
    lv.tl.localities(exact, n_cells=100)
    lv.tl.localities(fast, n_cells=100, max_exact_cells=1000)  # forces the subsample search + fast l-means
    e, f = exact.uns["lava"]["localities"], fast.uns["lava"]["localities"]
    print(f"coverage loss: exact {e['coverage_loss']:.4f}, fast path {f['coverage_loss']:.4f}")
    assert fast.obsm["lava_localities"].shape == exact.obsm["lava_localities"].shape
    assert f["n_uncovered"] <= max(2 * e["n_uncovered"], 0.01 * planted.n_obs)
    assert f["coverage_loss"] <= 1.5 * e["coverage_loss"]


@pytest.mark.parametrize("max_exact_cells", [100_000, 1000])
def test_the_progress_bar_never_ends_past_its_total(monkeypatch, max_exact_cells):
    """`probe search (DIRECT): 0/40` used to end at 48it: DIRECT's last sweep and the fast path's final
    placements ran past the total (issue 15)."""
    from tqdm import tqdm

    import lava_sc._utils as lava_utils

    seen = []

    class Recording(tqdm):
        def update(self, n=1):  # the state the previous step left shown
            seen.append((self.n, self.total))
            return super().update(n)

        def close(self):
            seen.append((self.n, self.total))
            super().close()

    monkeypatch.setattr(lava_utils, "tqdm", lambda **kw: Recording(**{**kw, "disable": False}))
    adata = lv.datasets.simulate_planted(n_cells=2500, random_state=0, counts_layer=False)
    lv.tl.localities(adata, max_exact_cells=max_exact_cells)
    assert seen, "the search reported no progress"
    assert all(n <= total for n, total in seen), seen
    assert seen[-1][0] == seen[-1][1]  # it ends full
    assert len(seen) >= adata.uns["lava"]["params"]["localities"]["max_evaluations"] * 0.9
