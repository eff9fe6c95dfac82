import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.metrics import roc_auc_score

import lava_sc as lv
from lava_sc._params import PIPELINE, CorrelationsSettings


def gene_sets(adata, key="lava"):
    genes = lv.get.module_genes(adata, key=key)
    return {m: set(g["gene"]) for m, g in genes.groupby("module", observed=True)}


def jaccard(a, b):
    return len(a & b) / len(a | b)


def planted_report(adata, key="lava"):
    """Best-matching module, Jaccard and AUROCs (one per active region) for every planted module."""
    sets = gene_sets(adata, key)
    activity = lv.get.activity(adata, key=key)
    report = {}
    for name, genes in adata.uns["planted"].items():
        genes = set(genes)
        best = max(sets, key=lambda m: jaccard(genes, sets[m]))
        active = adata.obs[f"active_{name}"].to_numpy()
        regions = [
            ct for ct in adata.obs["cell_type"].cat.categories if (active & (adata.obs["cell_type"] == ct)).any()
        ]
        aucs = []
        for ct in regions:
            region = active & (adata.obs["cell_type"] == ct).to_numpy()
            mask = region | ~active
            aucs.append(roc_auc_score(region[mask], activity[best].to_numpy()[mask]))
        report[name] = (best, jaccard(genes, sets[best]), aucs)
    spurious = sorted(set(sets) - {b for b, _, _ in report.values()})
    return report, spurious, sets


@pytest.mark.parametrize("method", ["leiden", "nmf"])
def test_planted_modules_are_recovered_and_localised(planted, planted_lava, method):
    if method == "leiden":
        adata = planted_lava
    else:
        adata = planted_lava.copy()
        lv.tl.modules(adata, method="nmf", rank=8)
    report, spurious, sets = planted_report(adata)
    print(f"\n[{method}] {len(sets)} modules; planted recovery:")
    for name, (best, jac, aucs) in report.items():
        print(f"  {name:11s} -> {best}: Jaccard {jac:.2f}, AUROC per active region {np.round(aucs, 3).tolist()}")
    print(f"  spurious modules: {spurious}")
    for name, (_, jac, aucs) in report.items():
        assert jac >= 0.8, name
        assert min(aucs) >= 0.85, name
    assert len({best for best, _, _ in report.values()}) == len(report)  # one module per planted program
    assert len(spurious) <= 1


def test_shared_module_recurs_in_two_distant_cell_types(planted_lava):
    report, _, _ = planted_report(planted_lava)
    best = report["shared"][0]
    loc_act = lv.get.activity(planted_lava, level="localities")[best]
    member = planted_lava.obsm["lava_localities"].tocsc()
    cell_type = planted_lava.obs["cell_type"].to_numpy()
    majority = [pd.Series(cell_type[member[:, i].indices]).mode()[0] for i in range(member.shape[1])]
    active_types = {majority[i] for i in np.flatnonzero(loc_act.to_numpy() > 0.15)}
    assert active_types == {"T0", "T2"}


def test_tables_and_activity_layout(planted_lava):
    mods = lv.get.modules(planted_lava)
    assert list(mods.columns) == ["module", "gene_a", "gene_b", "weight", "support"]
    assert (mods["support"] >= 2).all() and (mods["weight"] > 0).all()
    genes = lv.get.module_genes(planted_lava)
    assert list(genes.columns) == ["module", "gene", "score", "sign"]
    assert genes.groupby("module", observed=True)["score"].max().eq(1).all()
    names = list(genes["module"].cat.categories)
    assert names == [f"M{i + 1}" for i in range(len(names))]
    cells = lv.get.activity(planted_lava)
    assert cells.index.equals(planted_lava.obs_names) and list(cells.columns) == names
    assert np.isfinite(cells.to_numpy()).all()
    locs = lv.get.activity(planted_lava, level="localities")
    assert locs.shape == (planted_lava.obsm["lava_localities"].shape[1], len(names))
    # module M1 is the largest
    sizes = mods.groupby("module", observed=True).size()
    assert sizes.iloc[0] == sizes.max()


def test_cell_activity_is_mean_of_covering_localities(planted_lava):
    member = planted_lava.obsm["lava_localities"].tocsr()
    locs = lv.get.activity(planted_lava, level="localities").to_numpy()
    cells = lv.get.activity(planted_lava).to_numpy()
    for i in [0, 10, 100, 1000]:
        cover = member[i].indices
        if len(cover):
            np.testing.assert_allclose(cells[i], locs[cover].mean(0), rtol=1e-6)


def test_runs_missing_steps_and_records_params(planted):
    adata = planted[:2000].copy()
    lv.tl.modules(adata, resolution=0.8, random_state=1)
    params = adata.uns["lava"]["params"]
    assert set(params) == {"localities", "correlations", "modules"}
    assert params["modules"]["resolution"] == 0.8
    assert params["localities"]["random_state"] == 1


def test_same_random_state_gives_identical_modules(planted):
    a, b = planted[:2000].copy(), planted[:2000].copy()
    lv.tl.modules(a, random_state=7)
    lv.tl.modules(b, random_state=7)
    pd.testing.assert_frame_equal(lv.get.modules(a), lv.get.modules(b))
    pd.testing.assert_frame_equal(lv.get.activity(a), lv.get.activity(b))


def test_identical_results_whatever_the_thread_count(planted):
    """BLAS threads and n_jobs change how the work is spread, never the modules or activities."""
    from threadpoolctl import threadpool_limits

    runs = []
    for threads in (1, 2):
        adata = planted[:2000].copy()
        with threadpool_limits(limits=threads):
            lv.tl.localities(adata, random_state=3)
            lv.tl.correlations(adata, random_state=3, n_jobs=threads)
            lv.tl.modules(adata, random_state=3)
        runs.append(adata)
    one, two = runs
    assert one.uns["lava"]["sketch"].nnz > 0
    np.testing.assert_array_equal(one.uns["lava"]["probes"], two.uns["lava"]["probes"])
    assert (one.uns["lava"]["sketch"] != two.uns["lava"]["sketch"]).nnz == 0
    pd.testing.assert_frame_equal(lv.get.modules(one), lv.get.modules(two))
    pd.testing.assert_frame_equal(lv.get.activity(one), lv.get.activity(two))


def test_x_untouched_and_copy(planted):
    adata = planted[:1500].copy()
    before = adata.X.copy()
    out = lv.tl.modules(adata, copy=True)
    assert (adata.X != before).nnz == 0
    assert "lava" not in adata.uns and "lava_activity" in out.obsm
    keys_before = set(adata.obsm) | set(adata.uns) | set(adata.layers)
    lv.tl.modules(adata)
    assert (adata.X != before).nnz == 0
    added = (set(adata.obsm) | set(adata.uns) | set(adata.layers)) - keys_before
    assert added == {"lava", "lava_localities", "lava_activity"}


def test_second_key_keeps_both_results(planted):
    adata = planted[:1500].copy()
    lv.tl.modules(adata)
    lv.tl.localities(adata, n_cells=80, key_added="fine")
    lv.tl.modules(adata, key="fine")
    assert adata.uns["lava"]["params"]["localities"]["n_cells"] != adata.uns["fine"]["params"]["localities"]["n_cells"]
    assert "lava_activity" in adata.obsm and "fine_activity" in adata.obsm


@pytest.mark.parametrize("fmt", ["h5ad", "zarr"])
def test_results_round_trip(planted_lava, tmp_path, fmt):
    import anndata as ad

    path = tmp_path / f"lava.{fmt}"
    if fmt == "h5ad":
        planted_lava.write_h5ad(path)
        back = ad.read_h5ad(path)
    else:
        planted_lava.write_zarr(path)
        back = ad.read_zarr(path)
    for getter in (lv.get.modules, lv.get.module_genes):
        pd.testing.assert_frame_equal(getter(back), getter(planted_lava))
    for level in ("cells", "localities"):
        pd.testing.assert_frame_equal(lv.get.activity(back, level=level), lv.get.activity(planted_lava, level=level))
    a, b = back.uns["lava"]["sketch"], planted_lava.uns["lava"]["sketch"]
    assert sp.issparse(a) and (a != b).nnz == 0
    assert (back.obsm["lava_localities"] != planted_lava.obsm["lava_localities"]).nnz == 0
    for settings in PIPELINE:  # the typed settings read back exactly, None included
        assert settings.read(back, "lava") == settings.read(planted_lava, "lava")
    assert CorrelationsSettings.read(back, "lava").layer is None


def test_no_modules_gives_empty_but_valid_results(planted):
    adata = planted[:1000, adata_noise_genes(planted)].copy()
    lv.tl.modules(adata)
    assert lv.get.modules(adata).empty
    assert lv.get.activity(adata).shape == (1000, 0)


def adata_noise_genes(adata):
    return adata.var_names[adata.var_names.str.startswith("noise_")]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"method": "louvain"}, ValueError, "method"),
        ({"resolution": 0}, ValueError, "resolution"),
        ({"rank": 0}, ValueError, "rank"),
        ({"min_genes": 1}, ValueError, "min_genes"),
        ({"key": ""}, TypeError, "key"),
        ({"basis": "X_tsne"}, KeyError, "X_tsne"),
    ],
)
def test_bad_arguments(pbmc, kwargs, error, match):
    with pytest.raises(error, match=match):
        lv.tl.modules(pbmc.copy(), **kwargs)


def test_get_before_tool_names_the_tool(pbmc):
    for getter in (lv.get.modules, lv.get.module_genes, lv.get.activity):
        with pytest.raises(KeyError, match=r"lava_sc.tl.modules"):
            getter(pbmc)


def test_pbmc_modules_are_readable(pbmc_lava):
    sizes = lv.get.module_genes(pbmc_lava).groupby("module", observed=True).size()
    print(f"\npbmc68k_reduced: {len(sizes)} modules, genes per module {sizes.to_dict()}")
    assert len(sizes) >= 3
    assert sizes.median() <= 60
    # the NK cytotoxic programme is one module
    genes = lv.get.module_genes(pbmc_lava)
    nk = genes.loc[genes["gene"] == "NKG7", "module"]
    assert len(nk) == 1
    assert {"GNLY", "GZMB"} <= set(genes.loc[genes["module"] == nk.iloc[0], "gene"])


def test_module_pairs_are_found_in_most_placements(pbmc_lava):
    """On pbmc68k_reduced the defaults place 5 independent sets of localities; a module pair must be
    significant in localities of at least 3 of them, and the known programmes must still be found."""
    slot = pbmc_lava.uns["lava"]
    held = np.asarray(slot["localities"]["in_placement"])
    assert held.shape[1] == 5
    pairs = slot["pairs"].reset_index(drop=True)
    column = {(a, b): j for j, (a, b) in enumerate(zip(pairs["gene_a"], pairs["gene_b"], strict=True))}
    sketch = sp.csc_matrix(slot["sketch"])
    table = slot["modules"]
    for a, b in zip(table["gene_a"], table["gene_b"], strict=True):
        j = column[(a, b)]
        rows = sketch.indices[sketch.indptr[j] : sketch.indptr[j + 1]]
        assert held[rows].any(axis=0).sum() >= 3, (a, b)
    found_once = pairs.loc[pairs["support"] == 1, ["gene_a", "gene_b"]].apply(tuple, axis=1)
    assert not set(found_once) & set(zip(table["gene_a"], table["gene_b"], strict=True))
    sets = [set(g) for g in lv.get.module_genes(pbmc_lava).groupby("module", observed=True)["gene"].agg(list)]
    assert any({"NKG7", "GNLY", "GZMB"} <= s for s in sets)  # cytotoxic
    assert any({"HLA-DRA", "HLA-DPA1", "CD74"} <= s for s in sets)  # MHC class II
