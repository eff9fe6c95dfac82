from math import comb

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy.stats import fisher_exact, hypergeom

import lava_sc as lv
from lava_sc.tl._enrich import benjamini_hochberg

N_DECOYS = 40


@pytest.fixture(scope="module")
def ref():
    adata = lv.datasets.simulate_planted(n_cells=2000, random_state=0)
    lv.tl.modules(adata, random_state=0)
    return adata


@pytest.fixture(scope="module")
def collection(ref):
    """The planted gene sets plus random decoys of the same size drawn from the tested genes."""
    rng = np.random.default_rng(0)
    tested = np.asarray(ref.uns["lava"]["genes"]).astype(str)
    sets = {f"PLANTED_{name}": list(genes) for name, genes in ref.uns["planted"].items()}
    size = len(next(iter(sets.values())))
    for i in range(N_DECOYS):
        sets[f"DECOY_{i}"] = rng.choice(tested, size, replace=False).tolist()
    return sets


@pytest.fixture(scope="module")
def enriched(ref, collection):
    adata = ref.copy()
    lv.tl.enrich(adata, collection)
    return adata


def matched_module(ref, genes):
    table = lv.get.module_genes(ref)
    sets = {m: set(g["gene"]) for m, g in table.groupby("module", observed=True)}
    return max(sets, key=lambda m: len(sets[m] & set(genes)) / len(sets[m] | set(genes)))


def test_planted_sets_are_top_hits_and_decoys_are_not_significant(ref, enriched):
    table = lv.get.enrichment(enriched)
    print()
    for name, genes in ref.uns["planted"].items():
        module = matched_module(ref, genes)
        hits = table.loc[table["module"] == module].reset_index(drop=True)
        top = hits.iloc[0]
        print(
            f"  {name:11s} -> {module}: top hit {top['gene_set']} (q = {top['qvalue']:.2e}, overlap {top['overlap']})"
        )
        assert top["gene_set"] == f"PLANTED_{name}"
        assert top["qvalue"] < 0.05
    decoys = table.loc[table["gene_set"].str.startswith("DECOY_")]
    print(f"  smallest decoy q: {decoys['qvalue'].min():.3f}")
    assert (decoys["qvalue"] >= 0.05).all()


def test_table_layout_and_order(enriched, collection):
    table = lv.get.enrichment(enriched)
    assert list(table.columns) == [
        "module",
        "gene_set",
        "overlap",
        "module_size",
        "set_size",
        "universe_size",
        "odds_ratio",
        "pvalue",
        "qvalue",
        "genes",
    ]
    assert (table["overlap"] > 0).all()
    assert (table["universe_size"] == len(enriched.uns["lava"]["genes"])).all()
    codes = table["module"].cat.codes.to_numpy()
    assert (np.diff(codes) >= 0).all()
    for _, sub in table.groupby("module", observed=True):
        assert sub["pvalue"].is_monotonic_increasing
    for row in table.itertuples():
        genes = row.genes.split(";")
        assert len(genes) == row.overlap
        assert set(genes) <= set(collection[row.gene_set])
    params = enriched.uns["lava"]["params"]["enrich"]
    assert params["n_sets_tested"] == len(collection)
    assert params["n_tests"] == len(collection) * len(table["module"].cat.categories)


def test_odds_ratio_and_pvalue_match_scipy(enriched):
    for row in lv.get.enrichment(enriched).itertuples():
        a = row.overlap
        b = row.module_size - a
        c = row.set_size - a
        d = row.universe_size - row.module_size - row.set_size + a
        res = fisher_exact([[a, b], [c, d]], alternative="greater")
        assert row.pvalue == pytest.approx(res.pvalue, rel=1e-9, abs=1e-300)
        assert row.odds_ratio == pytest.approx(res.statistic)


def hand_adata():
    """20 tested genes; M1 = g0..g4, M2 = g5..g9 (scores decreasing)."""
    genes = [f"g{i}" for i in range(20)]
    adata = ad.AnnData(np.zeros((3, 20), dtype=np.float32))
    adata.var_names = genes
    module_genes = pd.DataFrame(
        {
            "module": pd.Categorical(["M1"] * 5 + ["M2"] * 5, categories=["M1", "M2"]),
            "gene": genes[:10],
            "score": [1.0, 0.9, 0.8, 0.7, 0.6] * 2,
        }
    )
    adata.uns["lava"] = {"genes": np.asarray(genes), "module_genes": module_genes}
    return adata


HAND_SETS = {"A": ["g0", "g1", "g2", "g10"], "B": ["g5", "g11", "g12"], "C": ["g15", "g16", "g17"]}


def test_hand_computed_two_by_two_and_bh():
    adata = hand_adata()
    lv.tl.enrich(adata, HAND_SETS)
    table = lv.get.enrichment(adata)
    assert table[["module", "gene_set", "overlap"]].astype(str).values.tolist() == [
        ["M1", "A", "3"],
        ["M2", "B", "1"],
    ]
    # M1 vs A: 3 of the module's 5 genes in a set of 4, universe 20: P(X >= 3)
    p_a = (comb(4, 3) * comb(16, 2) + comb(4, 4) * comb(16, 1)) / comb(20, 5)
    # M2 vs B: 1 of 5 in a set of 3: P(X >= 1) = 1 - P(X = 0)
    p_b = 1 - comb(17, 5) / comb(20, 5)
    assert table["pvalue"].tolist() == pytest.approx([p_a, p_b], rel=1e-12)
    assert p_a == pytest.approx(hypergeom.sf(2, 20, 4, 5))
    assert table.loc[0, "odds_ratio"] == pytest.approx(3 * 14 / (2 * 1))
    assert table.loc[0, "genes"] == "g0;g1;g2"
    # BH over all 6 tests (4 of them p = 1): q_A = 6 p_A; q_B = min(3 p_B, 6/3, ..., 6/6) = 1
    assert table["qvalue"].tolist() == pytest.approx([6 * p_a, 1.0])
    assert adata.uns["lava"]["params"]["enrich"]["n_tests"] == 6


def test_benjamini_hochberg_by_hand():
    p = np.array([0.01, 0.04, 0.03, 0.2])
    # sorted 0.01, 0.03, 0.04, 0.2 -> p * 4 / rank = 0.04, 0.06, 0.0533, 0.2 -> running min from the top
    expected = [0.04, 0.04 * 4 / 3, 0.04 * 4 / 3, 0.2]
    assert benjamini_hochberg(p).tolist() == pytest.approx(expected)
    assert benjamini_hochberg(np.array([0.9, 0.8])).tolist() == pytest.approx([0.9, 0.9])
    assert benjamini_hochberg(np.array([])).size == 0


def test_sets_are_intersected_with_universe_and_size_filtered():
    adata = hand_adata()
    sets = dict(HAND_SETS, D=["g0", "x1", "x2", "x3"], E=["y1", "y2"], F=[f"g{i}" for i in range(12)])
    lv.tl.enrich(adata, sets, max_size=10)
    params = adata.uns["lava"]["params"]["enrich"]
    assert params["n_sets"] == 6 and params["n_sets_tested"] == 3  # D: 1 gene left, E: none, F: 12 > 10
    assert set(lv.get.enrichment(adata)["gene_set"]) == {"A", "B"}


def test_custom_universe():
    adata = hand_adata()
    universe = [f"g{i}" for i in range(40)]
    lv.tl.enrich(adata, HAND_SETS, universe=universe)
    table = lv.get.enrichment(adata)
    assert (table["universe_size"] == 40).all()
    assert table.loc[0, "pvalue"] == pytest.approx(hypergeom.sf(2, 40, 4, 5))
    assert adata.uns["lava"]["params"]["enrich"]["universe"] == "custom"


def test_gmt_path_and_net_inputs_give_the_same_table(tmp_path):
    path = tmp_path / "sets.gmt"
    lv.io.write_gmt(HAND_SETS, path)
    net = pd.DataFrame([(s, g) for s, genes in HAND_SETS.items() for g in genes], columns=["source", "target"])
    tables = []
    for gene_sets in (HAND_SETS, path, str(path), net):
        adata = hand_adata()
        lv.tl.enrich(adata, gene_sets)
        tables.append(lv.get.enrichment(adata))
    for table in tables[1:]:
        pd.testing.assert_frame_equal(table, tables[0])


def test_copy_leaves_input_untouched():
    adata = hand_adata()
    out = lv.tl.enrich(adata, HAND_SETS, copy=True)
    assert "enrichment" not in adata.uns["lava"]
    assert "enrichment" in out.uns["lava"]


def test_round_trips_h5ad(enriched, tmp_path):
    path = tmp_path / "enriched.h5ad"
    enriched.write_h5ad(path)
    back = ad.read_h5ad(path)
    pd.testing.assert_frame_equal(lv.get.enrichment(back), lv.get.enrichment(enriched))
    assert back.uns["lava"]["params"]["enrich"]["n_tests"] == enriched.uns["lava"]["params"]["enrich"]["n_tests"]


@pytest.mark.parametrize(
    ("gene_sets", "kwargs", "error", "match"),
    [
        ({}, {}, ValueError, "empty"),
        ({"A": ["x1", "x2", "x3"]}, {}, ValueError, "shares a gene with the universe"),
        ({1: ["g0", "g1", "g2"]}, {}, TypeError, "must be a string"),
        ({"A": ["g0", 1, "g2"]}, {}, TypeError, "must be a string"),
        (pd.DataFrame({"term": ["A"], "gene": ["g0"]}), {}, KeyError, "source"),
        (["g0", "g1"], {}, TypeError, "dict name -> genes"),
        ({"A": ["g0", "g1"]}, {}, ValueError, "min_size"),
        (HAND_SETS, {"min_size": 5, "max_size": 4}, ValueError, "max_size"),
        (HAND_SETS, {"universe": "g0"}, TypeError, "universe"),
        (HAND_SETS, {"universe": [1, 2, 3]}, TypeError, "universe"),
    ],
)
def test_bad_input(gene_sets, kwargs, error, match):
    with pytest.raises(error, match=match):
        lv.tl.enrich(hand_adata(), gene_sets, **kwargs)


def test_requires_modules(tmp_path):
    adata = ad.AnnData(np.zeros((3, 4), dtype=np.float32))
    with pytest.raises(KeyError, match=r"run lava_sc.tl.modules"):
        lv.tl.enrich(adata, HAND_SETS)
    with pytest.raises(FileNotFoundError):
        lv.tl.enrich(hand_adata(), tmp_path / "missing.gmt")


def test_get_enrichment_filters(enriched):
    full = lv.get.enrichment(enriched)
    m1 = lv.get.enrichment(enriched, module="M1")
    assert set(m1["module"].astype(str)) == {"M1"} and len(m1) == (full["module"] == "M1").sum()
    both = lv.get.enrichment(enriched, module=["M1", "M2"])
    assert set(both["module"].astype(str)) == {"M1", "M2"}
    sig = lv.get.enrichment(enriched, q_max=0.05)
    assert (sig["qvalue"] <= 0.05).all() and len(sig) == (full["qvalue"] <= 0.05).sum()
    assert sig.index.tolist() == list(range(len(sig)))
    with pytest.raises(KeyError, match="Unknown module"):
        lv.get.enrichment(enriched, module="M99")
    with pytest.raises(TypeError, match="module name"):
        lv.get.enrichment(enriched, module=1)
    with pytest.raises(ValueError, match="q_max"):
        lv.get.enrichment(enriched, q_max=2)
    with pytest.raises(KeyError, match=r"run lava_sc.tl.enrich"):
        lv.get.enrichment(hand_adata())


def test_genes_in_adata_that_were_not_tested_are_named_with_the_fix(pbmc_lava, monkeypatch):
    """On real PBMC data most interferon genes were never tested (not highly variable), and nothing said so
    (issue 15): a module cannot contain them, so enrichment for them is empty for that reason."""
    import lava_sc.tl._enrich as enrich_module

    tested = set(pbmc_lava.uns["lava"]["genes"])
    untested = [g for g in pbmc_lava.var_names if g not in tested][:3]
    logged = []
    monkeypatch.setattr(enrich_module.logg, "warning", lambda msg, **kw: logged.append(msg))
    sets = {"response": [*untested, "HLA-DRA", "CD74", "HLA-DRB1"], "absent": ["NOT_A_GENE_1", "NOT_A_GENE_2"]}
    lv.tl.enrich(pbmc_lava.copy(), sets, min_size=2)
    (message,) = [m for m in logged if "not tested" in m]
    assert all(g in message for g in untested) and "'response'" in message
    assert "var['highly_variable']" in message and "genes=" in message
    assert "NOT_A_GENE" not in message  # genes absent from adata are a naming matter, not this one


def test_no_warning_when_every_set_gene_was_tested_or_a_universe_is_given(pbmc_lava, monkeypatch):
    import lava_sc.tl._enrich as enrich_module

    tested = list(pbmc_lava.uns["lava"]["genes"])
    logged = []
    monkeypatch.setattr(enrich_module.logg, "warning", lambda msg, **kw: logged.append(msg))
    lv.tl.enrich(pbmc_lava.copy(), {"s": tested[:10]}, min_size=2)
    untested = [g for g in pbmc_lava.var_names if g not in set(tested)][:3]
    lv.tl.enrich(pbmc_lava.copy(), {"s": [*tested[:5], *untested]}, universe=pbmc_lava.var_names, min_size=2)
    assert not [m for m in logged if "not tested" in m]
