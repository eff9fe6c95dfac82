"""Tests for :func:`lava_sc.pl.module_network`."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection, PathCollection

import lava_sc as lv

from .conftest import is_png


def _nodes(ax: Axes) -> PathCollection:
    (coll,) = [c for c in ax.collections if isinstance(c, PathCollection)]
    return coll


def _edges(ax: Axes) -> LineCollection:
    (coll,) = [c for c in ax.collections if isinstance(c, LineCollection)]
    return coll


def _module(adata, name):
    genes = lv.get.module_genes(adata)
    genes = genes[genes["module"] == name].sort_values("score", ascending=False)
    pairs = lv.get.modules(adata)
    return genes, pairs[pairs["module"] == name]


def test_nodes_edges_and_labels(pbmc_lava):
    smallest = str(lv.get.module_genes(pbmc_lava)["module"].cat.categories[-1])
    genes, pairs = _module(pbmc_lava, smallest)
    ax = lv.pl.module_network(pbmc_lava, smallest, max_genes=100, show=False)
    assert isinstance(ax, Axes)
    assert len(_nodes(ax).get_offsets()) == len(genes)
    np.testing.assert_allclose(np.sort(np.asarray(_nodes(ax).get_array())), np.sort(genes["score"].to_numpy()))
    assert len(_edges(ax).get_segments()) == len(pairs)
    assert sorted(t.get_text() for t in ax.texts) == sorted(genes["gene"])
    assert ax.get_title().startswith(f"{smallest}:")


def test_max_genes_keeps_top_scores(pbmc_lava):
    genes, pairs = _module(pbmc_lava, "M1")
    ax = lv.pl.module_network(pbmc_lava, "M1", max_genes=6, show=False)
    kept = genes["gene"].head(6).tolist()
    assert sorted(t.get_text() for t in ax.texts) == sorted(kept)
    inside = pairs["gene_a"].isin(kept) & pairs["gene_b"].isin(kept)
    assert len(_edges(ax).get_segments()) == int(inside.sum())
    assert f"top 6 of {len(genes)}" in ax.get_title()


def test_layout_is_deterministic(pbmc_lava):
    a = np.asarray(_nodes(lv.pl.module_network(pbmc_lava, "M2", show=False)).get_offsets())
    b = np.asarray(_nodes(lv.pl.module_network(pbmc_lava, "M2", show=False)).get_offsets())
    np.testing.assert_array_equal(a, b)
    c = np.asarray(_nodes(lv.pl.module_network(pbmc_lava, "M2", random_state=1, show=False)).get_offsets())
    assert not np.allclose(a, c)
    for layout in ("kk", "circle"):
        assert isinstance(lv.pl.module_network(pbmc_lava, "M2", layout=layout, show=False), Axes)


def test_labels_do_not_overlap(pbmc_lava):
    ax = lv.pl.module_network(pbmc_lava, "M1", show=False)
    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in ax.texts]
    overlaps = [
        (ax.texts[i].get_text(), ax.texts[j].get_text())
        for i in range(len(boxes))
        for j in range(i + 1, len(boxes))
        if boxes[i].overlaps(boxes[j])
    ]
    assert not overlaps


def test_draws_into_ax_and_saves(pbmc_lava, tmp_path):
    from matplotlib import pyplot as plt

    _, ax = plt.subplots()
    assert lv.pl.module_network(pbmc_lava, "M3", ax=ax) is ax
    path = tmp_path / "net.png"
    lv.pl.module_network(pbmc_lava, "M3", show=False, save=path)
    assert path.stat().st_size > 1000 and is_png(path)


def test_errors(pbmc, pbmc_lava):
    with pytest.raises(KeyError, match=r"run lava_sc\.tl\.modules"):
        lv.pl.module_network(pbmc, "M1", show=False)
    with pytest.raises(KeyError, match="available modules"):
        lv.pl.module_network(pbmc_lava, "M99", show=False)
    with pytest.raises(TypeError, match="one module name"):
        lv.pl.module_network(pbmc_lava, ["M1", "M2"], show=False)
    with pytest.raises(ValueError, match="layout"):
        lv.pl.module_network(pbmc_lava, "M1", layout="spring", show=False)
    with pytest.raises(ValueError, match="max_genes"):
        lv.pl.module_network(pbmc_lava, "M1", max_genes=1, show=False)
