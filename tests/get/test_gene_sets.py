import anndata as ad
import numpy as np
import pytest

import lava_sc as lv


@pytest.fixture(scope="module")
def ref():
    adata = lv.datasets.simulate_planted(n_cells=1000, random_state=0)
    lv.tl.modules(adata, random_state=0)
    return adata


def test_net_layout_matches_module_genes(ref):
    net = lv.get.gene_sets(ref)
    genes = lv.get.module_genes(ref)
    assert list(net.columns) == ["source", "target", "weight"]
    assert net["source"].tolist() == genes["module"].astype(str).tolist()
    assert net["target"].tolist() == genes["gene"].tolist()
    np.testing.assert_allclose(net["weight"], genes["score"])
    assert net["source"].map(type).eq(str).all() and net["target"].map(type).eq(str).all()
    assert net.groupby("source")["weight"].max().eq(1).all()


def test_min_score(ref):
    full = lv.get.gene_sets(ref)
    strong = lv.get.gene_sets(ref, min_score=0.5)
    assert (strong["weight"] >= 0.5).all()
    assert len(strong) == (full["weight"] >= 0.5).sum() < len(full)
    assert strong.index.tolist() == list(range(len(strong)))
    with pytest.raises(TypeError, match="min_score"):
        lv.get.gene_sets(ref, min_score="high")


def test_round_trips_through_gmt(ref, tmp_path):
    net = lv.get.gene_sets(ref)
    path = tmp_path / "modules.gmt"
    lv.io.write_gmt(net, path)
    sets = lv.io.read_gmt(path)
    assert sets == {m: g["target"].tolist() for m, g in net.groupby("source", sort=False)}


def test_planted_genes_are_in_their_modules(ref):
    net = lv.get.gene_sets(ref)
    sets = {m: set(g["target"]) for m, g in net.groupby("source")}
    for genes in ref.uns["planted"].values():
        best = max(sets.values(), key=lambda s: len(s & set(genes)))
        shared = len(best & set(genes))
        assert shared >= 0.9 * len(best) and shared >= 0.5 * len(genes)


def test_requires_modules():
    adata = ad.AnnData(np.zeros((3, 4), dtype=np.float32))
    with pytest.raises(KeyError, match=r"run lava_sc.tl.modules\(adata, key='lava'\) first"):
        lv.get.gene_sets(adata)
    with pytest.raises(TypeError, match="AnnData"):
        lv.get.gene_sets(None)
