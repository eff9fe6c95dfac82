import io

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scanpy as sc
from sklearn.metrics import roc_auc_score

import lava_sc as lv
from lava_sc._core.score import locality_pair_r, module_locality_activity


@pytest.fixture(scope="module")
def ref():
    """LAVA modules learned on one simulation."""
    adata = lv.datasets.simulate_planted(n_cells=2000, random_state=0)
    lv.tl.modules(adata, random_state=0)
    return adata


@pytest.fixture(scope="module")
def query():
    """An independent simulation (other cells, other seed) with its own localities."""
    adata = lv.datasets.simulate_planted(n_cells=2000, random_state=1)
    lv.tl.localities(adata, random_state=0)
    return adata


@pytest.fixture
def log():
    """scanpy's log (info and warnings) as a string buffer."""
    buf = io.StringIO()
    old_file, old_verbosity = sc.settings.logfile, sc.settings.verbosity
    sc.settings.logfile, sc.settings.verbosity = buf, 3
    try:
        yield buf
    finally:
        sc.settings.logfile, sc.settings.verbosity = old_file, old_verbosity


def matched(ref):
    """Planted module -> best-matching LAVA module of ``ref``."""
    genes = lv.get.module_genes(ref)
    sets = {m: set(g["gene"]) for m, g in genes.groupby("module", observed=True)}
    return {
        name: max(sets, key=lambda m: len(sets[m] & set(planted)) / len(sets[m] | set(planted)))
        for name, planted in ref.uns["planted"].items()
    }


def aurocs(adata, key, columns):
    act = lv.get.activity(adata, key=key)
    return {name: roc_auc_score(adata.obs[f"active_{name}"], act[col]) for name, col in columns.items()}


def test_own_modules_reproduce_tl_modules(ref):
    adata = ref.copy()
    lv.tl.score(adata, lv.get.modules(adata))
    np.testing.assert_allclose(adata.obsm["lava_score_activity"].to_numpy(), adata.obsm["lava_activity"].to_numpy())
    pd.testing.assert_frame_equal(
        lv.get.activity(adata, key="lava_score", level="localities"), lv.get.activity(adata, level="localities")
    )
    assert list(adata.obsm["lava_score_activity"].columns) == list(adata.obsm["lava_activity"].columns)
    # the pairs and gene scores written are those of the reference
    scored = lv.get.modules(adata, key="lava_score")
    pd.testing.assert_frame_equal(scored, lv.get.modules(adata), check_categorical=False)
    np.testing.assert_allclose(
        lv.get.module_genes(adata, key="lava_score")["score"], lv.get.module_genes(adata)["score"]
    )


def test_anndata_input_equals_pairs_table(ref):
    a, b = ref.copy(), ref.copy()
    lv.tl.score(a, lv.get.modules(ref))
    lv.tl.score(b, ref)
    pd.testing.assert_frame_equal(lv.get.activity(a, key="lava_score"), lv.get.activity(b, key="lava_score"))


def test_transfer_to_another_dataset(ref, query):
    adata = query.copy()
    lv.tl.score(adata, lv.get.modules(ref))
    result = aurocs(adata, "lava_score", matched(ref))
    print("\n  transfer AUROC (reference module -> planted activity in the query):")
    for name, auc in result.items():
        print(f"    {name:11s} ({matched(ref)[name]}): {auc:.3f}")
    assert min(result.values()) >= 0.9
    # the query's own localities were used, not recomputed
    np.testing.assert_array_equal(adata.uns["lava"]["probes"], query.uns["lava"]["probes"])


def test_dict_input(ref, query):
    adata = query.copy()
    lv.tl.score(adata, ref.uns["planted"], key_added="planted")
    names = list(ref.uns["planted"])
    assert list(lv.get.activity(adata, key="planted").columns) == names
    result = aurocs(adata, "planted", {n: n for n in names})
    print("\n  gene-set (dict) AUROC: " + ", ".join(f"{n} {a:.3f}" for n, a in result.items()))
    assert min(result.values()) >= 0.9
    table = lv.get.modules(adata, key="planted")
    size = len(ref.uns["planted"]["typeB"])
    assert (table["module"] == "typeB").sum() == size * (size - 1) // 2
    assert (table["weight"] == 1).all() and (table["support"] == 0).all()


def test_net_and_module_genes_inputs(ref, query):
    a, b = query.copy(), query.copy()
    net = lv.get.gene_sets(ref)
    lv.tl.score(a, net)
    lv.tl.score(b, lv.get.module_genes(ref))
    pd.testing.assert_frame_equal(lv.get.activity(a, key="lava_score"), lv.get.activity(b, key="lava_score"))
    # the reference's gene scores are kept, so plots are titled with the reference's top genes
    top = net.sort_values("weight", ascending=False, kind="stable").groupby("source").head(1)
    scored = lv.get.module_genes(a, key="lava_score")
    for row in top.itertuples():
        assert scored.loc[scored["module"] == row.source, "gene"].iloc[0] == row.target
    result = aurocs(a, "lava_score", matched(ref))
    assert min(result.values()) >= 0.9


def test_gmt_input(ref, query, tmp_path):
    path = tmp_path / "planted.gmt"
    lv.io.write_gmt(ref.uns["planted"], path)
    a, b = query.copy(), query.copy()
    lv.tl.score(a, path)
    lv.tl.score(b, ref.uns["planted"])
    pd.testing.assert_frame_equal(lv.get.activity(a, key="lava_score"), lv.get.activity(b, key="lava_score"))


def test_missing_genes_are_dropped_with_a_warning(ref, query, log):
    pairs = lv.get.modules(ref)
    genes = lv.get.module_genes(ref)
    first = genes.loc[genes["module"] == "M1", "gene"].tolist()
    drop = first[:2]
    adata = query[:, ~query.var_names.isin(drop)].copy()
    lv.tl.score(adata, pairs)
    n_dropped = int((pairs["gene_a"].isin(drop) | pairs["gene_b"].isin(drop)).sum())
    assert "2 gene(s) of the modules are not in adata.var_names" in log.getvalue()
    assert f"dropped {n_dropped} of {len(pairs)} gene pairs" in log.getvalue()
    scored = lv.get.modules(adata, key="lava_score")
    assert len(scored) == len(pairs) - n_dropped
    assert not (scored["gene_a"].isin(drop) | scored["gene_b"].isin(drop)).any()
    assert np.isfinite(adata.obsm["lava_score_activity"].to_numpy()).all()


def test_module_without_pairs_is_nan_and_all_missing_raises(query, log):
    adata = query.copy()
    sets = {"typeB": query.uns["planted"]["typeB"], "absent": ["NOT_A_GENE", "typeB_0"]}
    lv.tl.score(adata, sets)
    act = lv.get.activity(adata, key="lava_score")
    assert act["absent"].isna().all() and act["typeB"].notna().all()
    assert "['absent'] have no gene pair" in log.getvalue()
    assert lv.get.activity(adata, key="lava_score", level="localities")["absent"].isna().all()
    with pytest.raises(ValueError, match="No module has a gene pair"):
        lv.tl.score(query.copy(), {"x": ["A1", "A2"], "y": ["B1", "B2"]})


def test_localities_are_computed_when_missing(ref, log):
    adata = ref.copy()
    del adata.obsm["lava_localities"]
    del adata.uns["lava"]
    lv.tl.score(adata, ref, basis="X_umap", random_state=0)
    assert "no localities under key 'lava'" in log.getvalue()
    assert "lava_localities" in adata.obsm
    # the same localities as the reference run, hence the same activity
    np.testing.assert_allclose(adata.obsm["lava_score_activity"].to_numpy(), ref.obsm["lava_activity"].to_numpy())


def test_get_and_pl_activity_work_on_scores(ref, query):
    import matplotlib.pyplot as plt

    adata = query.copy()
    lv.tl.score(adata, ref)
    cells = lv.get.activity(adata, key="lava_score")
    assert cells.shape == (adata.n_obs, len(lv.get.activity(ref).columns))
    assert cells.index.equals(adata.obs_names)
    axes = lv.pl.activity(adata, key="lava_score", show=False)
    assert len(axes) == cells.shape[1]
    assert axes[0].get_title().startswith("M1: ")
    plt.close("all")


def test_round_trips_h5ad(ref, query, tmp_path):
    adata = query.copy()
    lv.tl.score(adata, ref)
    path = tmp_path / "scored.h5ad"
    adata.write_h5ad(path)
    back = ad.read_h5ad(path)
    for level in ("cells", "localities"):
        pd.testing.assert_frame_equal(
            lv.get.activity(back, key="lava_score", level=level), lv.get.activity(adata, key="lava_score", level=level)
        )
    for getter in (lv.get.modules, lv.get.module_genes):
        pd.testing.assert_frame_equal(
            getter(back, key="lava_score").reset_index(drop=True),
            getter(adata, key="lava_score").reset_index(drop=True),
        )
    assert back.uns["lava_score"]["params"]["score"]["min_detected"] == 0.1


def test_copy(ref, query):
    adata = query.copy()
    out = lv.tl.score(adata, ref, copy=True)
    assert "lava_score" not in adata.uns and "lava_score_activity" not in adata.obsm
    assert "lava_score_activity" in out.obsm


def test_kernel_matches_numpy_corrcoef_and_constant_gene_is_zero():
    rng = np.random.default_rng(0)
    block = rng.poisson(2.0, size=(60, 6)).astype(np.float32)
    block[:, 3] = 5.0  # constant in this locality
    block[:55, 5] = 0.0  # detected in 5 of 60 cells (< 10%)
    ga = np.array([0, 0, 1, 2, 3, 0])
    gb = np.array([1, 2, 4, 4, 0, 5])
    r = locality_pair_r(block, np.zeros(6, np.float32), ga, gb, 0.1)
    full = np.corrcoef(block[:, :3].T.astype(np.float64))
    assert r[:2] == pytest.approx([full[0, 1], full[0, 2]], abs=1e-6)
    assert r[2] == pytest.approx(np.corrcoef(block[:, 1], block[:, 4])[0, 1], abs=1e-6)
    assert r[4] == 0.0  # constant gene
    assert r[5] == 0.0  # undetected gene
    assert locality_pair_r(block, np.zeros(6, np.float32), ga, gb, 0.0)[5] != 0.0


def test_kernel_weighted_mean():
    import scipy.sparse as sp

    rng = np.random.default_rng(1)
    x = rng.normal(size=(30, 3)).astype(np.float32) + 5
    membership = sp.csc_matrix(np.ones((30, 1)))
    ga, gb = np.array([0, 0, 1]), np.array([1, 2, 2])
    w = np.array([1.0, 2.0, 3.0])
    act = module_locality_activity(x, membership, ga, gb, np.zeros(3, int), w, 1, min_detected=0.0)
    c = np.corrcoef(x.T.astype(np.float64))
    expected = (1 * c[0, 1] + 2 * c[0, 2] + 3 * c[1, 2]) / 6
    assert act[0, 0] == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(
    ("modules", "kwargs", "error", "match"),
    [
        (["g1", "g2"], {}, TypeError, "`modules` must be"),
        ({}, {}, ValueError, "empty"),
        ({1: ["typeB_0", "typeB_1"]}, {}, TypeError, "must be a string"),
        (pd.DataFrame({"set": ["A"], "gene_name": ["typeB_0"]}), {}, KeyError, "'module', 'gene'"),
        (pd.DataFrame({"gene_a": ["typeB_0"], "gene_b": ["typeB_1"]}), {}, KeyError, "'module' column"),
        (pd.DataFrame({"module": ["A"], "gene_a": ["typeB_0"], "gene_b": ["typeB_0"]}), {}, ValueError, "itself"),
        (pd.DataFrame({"module": [1], "gene_a": ["typeB_0"], "gene_b": ["typeB_1"]}), {}, TypeError, "strings"),
        (
            pd.DataFrame(
                {
                    "module": ["A", "A"],
                    "gene_a": ["typeB_0", "typeB_1"],
                    "gene_b": ["typeB_1", "typeB_2"],
                    "weight": [0.0, 0.0],
                }
            ),
            {},
            ValueError,
            "all 0",
        ),
        ({"big": [f"g{i}" for i in range(1001)]}, {}, ValueError, "more than 1000 genes"),
        (
            pd.DataFrame({"module": ["A", "A"], "gene": ["typeB_0", "typeB_1"], "score": 1.0, "sign": ["+", "-"]}),
            {},
            ValueError,
            "Column 'sign'.*numbers",
        ),
        ({"A": ["typeB_0", "typeB_1"]}, {"key_added": "lava"}, ValueError, "must differ"),
        ({"A": ["typeB_0", "typeB_1"]}, {"min_detected": 2}, ValueError, "min_detected"),
        ({"A": ["typeB_0", "typeB_1"]}, {"layer": "nope"}, KeyError, "Layer"),
    ],
)
def test_bad_input(query, modules, kwargs, error, match):
    with pytest.raises(error, match=match):
        lv.tl.score(query.copy(), modules, **kwargs)


def test_reference_without_modules(query):
    with pytest.raises(KeyError, match=r"run lava_sc.tl.modules\(reference"):
        lv.tl.score(query.copy(), query)
