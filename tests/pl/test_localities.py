"""Tests for :func:`lava_sc.pl.localities`."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from matplotlib.axes import Axes
from matplotlib.collections import PathCollection
from matplotlib.legend import Legend

import lava_sc as lv

from .conftest import is_png


def _n_localities(adata) -> int:
    return adata.obsm["lava_localities"].shape[1]


def _cell_layer(ax: Axes) -> PathCollection:
    return ax.collections[0]


def test_default_colours_by_coverage(pbmc_lava):
    ax = lv.pl.localities(pbmc_lava, show=False)
    assert isinstance(ax, Axes)
    coverage = np.diff(sp.csr_matrix(pbmc_lava.obsm["lava_localities"]).indptr).astype(float)
    colours = np.asarray(_cell_layer(ax).get_array())
    np.testing.assert_array_equal(np.sort(colours), np.sort(coverage))
    assert ax.get_xlabel() == "UMAP1"  # the recorded basis
    n = _n_localities(pbmc_lava)
    assert str(n) in ax.get_title()
    assert n > 60 and not ax.texts  # 5 placements of 21 on this data: too many probes to number by default
    ax = lv.pl.localities(pbmc_lava, probe_labels=True, show=False)  # every probe numbered
    assert sorted(int(t.get_text()) for t in ax.texts) == list(range(n))


def test_probes_at_recorded_positions(pbmc_lava):
    ax = lv.pl.localities(pbmc_lava, color=None, show=False)
    probes = np.asarray(pbmc_lava.uns["lava"]["probes"])[:, :2]
    probe_layer = ax.collections[1]
    np.testing.assert_allclose(np.asarray(probe_layer.get_offsets()), probes)


def test_in_degree_and_obs_colours(pbmc_lava):
    ax = lv.pl.localities(pbmc_lava, color="in_degree", show=False)
    indeg = pbmc_lava.obs["lava_in_degree"].to_numpy(dtype=float)
    np.testing.assert_allclose(np.sort(np.asarray(_cell_layer(ax).get_array())), np.sort(indeg))
    ax = lv.pl.localities(pbmc_lava, color="bulk_labels", show=False)
    legend = ax.get_legend()
    assert legend is not None
    assert {t.get_text() for t in legend.get_texts()} == set(pbmc_lava.obs["bulk_labels"].cat.categories)
    ax = lv.pl.localities(pbmc_lava, color="n_genes", show=False)
    assert np.asarray(_cell_layer(ax).get_array()).shape == (pbmc_lava.n_obs,)


def test_show_members(pbmc_lava):
    membership = pbmc_lava.obsm["lava_localities"].tocsc()
    ax = lv.pl.localities(pbmc_lava, show_members=[2, "L5"], color="bulk_labels", show=False)
    legends = [a for a in ax.get_children() if isinstance(a, Legend)]
    assert len(legends) == 2  # the categories keep their legend next to the members'
    member_text = [t.get_text() for lg in legends for t in lg.get_texts() if t.get_text().startswith("L")]
    assert member_text == [f"L2 ({membership[:, 2].nnz} cells)", f"L5 ({membership[:, 5].nnz} cells)"]
    rings = [c for c in ax.collections if len(c.get_offsets()) == membership[:, 2].nnz]
    assert rings
    umap = pbmc_lava.obsm["X_umap"][:, :2]
    members = membership[:, 2].nonzero()[0]
    assert any(np.allclose(np.asarray(c.get_offsets()), umap[members]) for c in rings)
    ax = lv.pl.localities(pbmc_lava, show_members=3, show=False)
    assert isinstance(ax, Axes)


def test_other_basis_places_probes_at_member_centroids(pbmc_lava):
    ax = lv.pl.localities(pbmc_lava, basis="pca", color=None, show=False)
    assert ax.get_xlabel() == "PC1"
    membership = pbmc_lava.obsm["lava_localities"].tocsc()
    pca = pbmc_lava.obsm["X_pca"][:, :2]
    expected = np.vstack([pca[membership[:, j].nonzero()[0]].mean(axis=0) for j in range(membership.shape[1])])
    np.testing.assert_allclose(np.asarray(ax.collections[1].get_offsets()), expected, rtol=1e-5)


def test_probe_labels_switch(pbmc_lava):
    ax = lv.pl.localities(pbmc_lava, probe_labels=False, show=False)
    assert len(ax.texts) == 0


def test_save(pbmc_lava, tmp_path):
    path = tmp_path / "loc.png"
    ax = lv.pl.localities(pbmc_lava, show_members=1, show=False, save=path)
    assert isinstance(ax, Axes)
    assert path.stat().st_size > 1000 and is_png(path)


def test_errors(pbmc, pbmc_lava):
    with pytest.raises(KeyError, match=r"run lava_sc\.tl\.localities"):
        lv.pl.localities(pbmc, show=False)
    n = _n_localities(pbmc_lava)
    with pytest.raises(ValueError, match=rf"there are {n} localities"):
        lv.pl.localities(pbmc_lava, show_members=n, show=False)
    with pytest.raises(ValueError, match="locality indices"):
        lv.pl.localities(pbmc_lava, show_members="X1", show=False)
    with pytest.raises(KeyError, match="neither 'coverage'"):
        lv.pl.localities(pbmc_lava, color="nope", show=False)
    with pytest.raises(KeyError, match="not found in adata.obsm"):
        lv.pl.localities(pbmc_lava, basis="tsne", show=False)
