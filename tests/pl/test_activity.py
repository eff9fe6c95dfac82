"""Tests for :func:`lava_sc.pl.activity`."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure

import lava_sc as lv

from .conftest import is_png


def _points(ax: Axes) -> PathCollection:
    (coll,) = [c for c in ax.collections if isinstance(c, PathCollection)]
    return coll


def test_all_modules_one_panel_each(pbmc_lava):
    names = list(lv.get.activity(pbmc_lava).columns)
    axes = lv.pl.activity(pbmc_lava, show=False)
    assert isinstance(axes, list) and len(axes) == len(names) > 1
    assert all(isinstance(ax, Axes) for ax in axes)
    assert [ax.get_title().split(":")[0] for ax in axes] == names
    fig = axes[0].figure
    assert len(fig.axes) == 2 * len(names)  # one colourbar per panel, unused grid cells removed


def test_single_module_returns_axes(pbmc_lava):
    ax = lv.pl.activity(pbmc_lava, "M1", show=False)
    assert isinstance(ax, Axes)
    ax1 = lv.pl.activity(pbmc_lava, ["M1"], show=False)
    assert isinstance(ax1, Axes)


def test_list_of_modules_in_order(pbmc_lava):
    axes = lv.pl.activity(pbmc_lava, ["M2", "M1"], ncols=1, show=False)
    assert len(axes) == 2
    assert axes[0].get_title().startswith("M2:") and axes[1].get_title().startswith("M1:")
    assert axes[0].get_subplotspec().get_geometry()[:2] == (2, 1)


def test_colours_are_the_activity_high_on_top(pbmc_lava):
    act = lv.get.activity(pbmc_lava)
    umap = pbmc_lava.obsm["X_umap"][:, :2]
    for name, ax in zip(["M1", "M3"], lv.pl.activity(pbmc_lava, ["M1", "M3"], show=False), strict=True):
        coll = _points(ax)
        colours = np.asarray(coll.get_array())
        values = act[name].to_numpy()
        np.testing.assert_allclose(np.sort(colours), np.sort(values))
        assert np.all(np.diff(colours) >= 0), "most active cells must be drawn last"
        # each drawn point carries its own cell's activity
        offsets = np.asarray(coll.get_offsets())
        order = np.argsort(values, kind="stable")
        np.testing.assert_allclose(offsets, umap[order])
        np.testing.assert_allclose(colours, values[order])


def test_title_has_top_three_genes(pbmc_lava):
    genes = lv.get.module_genes(pbmc_lava)
    top = genes[genes["module"] == "M1"].sort_values("score", ascending=False)["gene"].head(3).tolist()
    ax = lv.pl.activity(pbmc_lava, "M1", show=False)
    assert ax.get_title() == "M1: " + ", ".join(top)


def test_basis_with_or_without_prefix(pbmc_lava):
    a = _points(lv.pl.activity(pbmc_lava, "M1", basis="umap", show=False)).get_offsets()
    b = _points(lv.pl.activity(pbmc_lava, "M1", basis="X_umap", show=False)).get_offsets()
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    ax = lv.pl.activity(pbmc_lava, "M1", basis="pca", show=False)
    assert ax.get_xlabel() == "PC1"


def test_limits_size_and_kwargs(pbmc_lava):
    act = lv.get.activity(pbmc_lava)["M1"].to_numpy()
    coll = _points(lv.pl.activity(pbmc_lava, "M1", vmin=0, vmax="p90", size=5, alpha=0.5, show=False))
    assert coll.get_clim() == pytest.approx((0.0, np.percentile(act, 90)))
    assert coll.get_sizes()[0] == 5
    assert coll.get_alpha() == 0.5
    with pytest.raises(ValueError, match="percentile"):
        lv.pl.activity(pbmc_lava, "M1", vmax="99", show=False)


def test_draws_into_given_ax(pbmc_lava):
    from matplotlib import pyplot as plt

    _, ax = plt.subplots()
    out = lv.pl.activity(pbmc_lava, "M2", ax=ax)
    assert out is ax  # show=None with ax given: no show, the Axes comes back
    assert len(ax.collections) == 1


def test_ax_with_several_modules_is_refused(pbmc_lava):
    from matplotlib import pyplot as plt

    _, ax = plt.subplots()
    with pytest.raises(ValueError, match=r"single module.*modules='M1'"):
        lv.pl.activity(pbmc_lava, ["M1", "M2"], ax=ax)


def test_save_writes_png(pbmc_lava, tmp_path):
    path = tmp_path / "act.png"
    axes = lv.pl.activity(pbmc_lava, ["M1", "M2"], show=False, save=str(path))
    assert len(axes) == 2
    assert path.stat().st_size > 1000 and is_png(path)
    lv.pl.activity(pbmc_lava, "M1", show=False, save=tmp_path / "no_suffix")
    assert is_png(tmp_path / "no_suffix.png")


def test_show_returns_none(pbmc_lava):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Agg cannot show
        assert lv.pl.activity(pbmc_lava, "M1", show=True) is None


def test_unknown_module(pbmc_lava):
    with pytest.raises(KeyError, match=r"M999.*available modules: \['M1'"):
        lv.pl.activity(pbmc_lava, "M999", show=False)
    with pytest.raises(ValueError, match="empty"):
        lv.pl.activity(pbmc_lava, [], show=False)
    with pytest.raises(TypeError, match="module name"):
        lv.pl.activity(pbmc_lava, 3, show=False)


def test_missing_results(pbmc):
    with pytest.raises(KeyError, match=r"run lava_sc\.tl\.modules\(adata"):
        lv.pl.activity(pbmc, show=False)


def test_other_key_missing(pbmc_lava):
    with pytest.raises(KeyError, match=r"under key 'other'; run lava_sc\.tl\.modules"):
        lv.pl.activity(pbmc_lava, show=False, key="other")


def test_bad_basis(pbmc_lava):
    with pytest.raises(KeyError, match="not found in adata.obsm"):
        lv.pl.activity(pbmc_lava, "M1", basis="tsne", show=False)
    with pytest.raises(TypeError):
        lv.pl.activity("not anndata", show=False)


def test_does_not_modify_adata(pbmc_lava):
    uns_before = set(pbmc_lava.uns.keys())
    obsm_before = set(pbmc_lava.obsm.keys())
    act_before = lv.get.activity(pbmc_lava).copy()
    lv.pl.activity(pbmc_lava, show=False)
    assert set(pbmc_lava.uns.keys()) == uns_before
    assert set(pbmc_lava.obsm.keys()) == obsm_before
    assert lv.get.activity(pbmc_lava).equals(act_before)


def test_figure_type(pbmc_lava):
    ax = lv.pl.activity(pbmc_lava, "M1", show=False)
    assert isinstance(ax.figure, Figure)


# --- split by a condition (groupby=) -----------------------------------------------------------


def _layers(ax: Axes) -> tuple[PathCollection, PathCollection]:
    background, foreground = [c for c in ax.collections if isinstance(c, PathCollection)]
    return background, foreground


def test_groupby_one_panel_per_level_with_a_shared_scale(pbmc_lava, tmp_path):
    adata = pbmc_lava
    phase = adata.obs["phase"].astype(str).to_numpy()
    levels = list(adata.obs["phase"].cat.categories)
    assert len(levels) == 3
    path = tmp_path / "split.png"
    axes = lv.pl.activity(adata, ["M1", "M2"], groupby="phase", shared_scale=False, show=False, save=path)
    assert is_png(path)
    assert [ax.get_title() for ax in axes] == [f"{m} — {lev}" for m in ["M1", "M2"] for lev in levels]
    act = lv.get.activity(adata)
    umap = adata.obsm["X_umap"][:, :2]
    for m, name in enumerate(["M1", "M2"]):
        values = act[name].to_numpy()
        clims = {_layers(ax)[1].get_clim() for ax in axes[3 * m : 3 * m + 3]}
        assert clims == {(values.min(), values.max())}  # one scale for the module's panels
        for ax, level in zip(axes[3 * m : 3 * m + 3], levels, strict=True):
            background, foreground = _layers(ax)
            cells = np.flatnonzero(phase == level)
            order = cells[np.argsort(values[cells], kind="stable")]
            np.testing.assert_allclose(np.asarray(foreground.get_offsets()), umap[order])
            np.testing.assert_allclose(np.asarray(foreground.get_array()), values[order])
            np.testing.assert_allclose(np.asarray(background.get_offsets()), umap[phase != level])
            assert background.get_array() is None  # plain grey, underneath
            assert background.zorder <= foreground.zorder
    fig = axes[0].figure
    assert len(fig.axes) == 6 + 2  # one colourbar per module row


def test_groupby_groups_choose_and_order_levels(pbmc_lava):
    axes = lv.pl.activity(pbmc_lava, "M1", groupby="phase", groups=["S", "G1"], vmax="p90", show=False)
    assert [ax.get_title() for ax in axes] == ["M1 — S", "M1 — G1"]
    act = lv.get.activity(pbmc_lava)["M1"].to_numpy()
    drawn = pbmc_lava.obs["phase"].isin(["S", "G1"]).to_numpy()
    for ax in axes:
        assert _layers(ax)[1].get_clim() == pytest.approx((act[drawn].min(), np.percentile(act[drawn], 90)))
    # G2M cells are grey background in both panels
    assert len(_layers(axes[0])[0].get_offsets()) == (pbmc_lava.obs["phase"] != "S").sum()
    single = lv.pl.activity(pbmc_lava, "M1", groupby="phase", groups="G2M", show=False)
    assert isinstance(single, Axes) and single.get_title() == "M1 — G2M"


def test_groupby_into_ax_and_errors(pbmc_lava):
    from matplotlib import pyplot as plt

    _, ax = plt.subplots()
    assert lv.pl.activity(pbmc_lava, "M1", groupby="phase", groups=["S"], ax=ax) is ax
    with pytest.raises(ValueError, match=r"single panel.*groups=\['AKI'\]"):
        lv.pl.activity(pbmc_lava, "M1", groupby="phase", ax=ax)
    with pytest.raises(KeyError, match=r"'condition' \(`groupby`\) not found in adata.obs \(available: \["):
        lv.pl.activity(pbmc_lava, "M1", groupby="condition", show=False)
    with pytest.raises(ValueError, match=r"Unknown level\(s\) \['M'\].*\['G1', 'G2M', 'S'\]"):
        lv.pl.activity(pbmc_lava, "M1", groupby="phase", groups=["M"], show=False)
    with pytest.raises(ValueError, match="pass `groupby=`"):
        lv.pl.activity(pbmc_lava, "M1", groups=["S"], show=False)


def test_one_colour_scale_for_all_panels_by_default(pbmc_lava):
    act = lv.get.activity(pbmc_lava)[["M1", "M2", "M3"]].to_numpy()
    axes = lv.pl.activity(pbmc_lava, ["M1", "M2", "M3"], show=False)
    assert {_points(ax).get_clim() for ax in axes} == {(act.min(), act.max())}
    axes = lv.pl.activity(pbmc_lava, ["M1", "M2"], vmax="p90", show=False)
    assert [_points(ax).get_clim()[1] for ax in axes] == pytest.approx([np.percentile(act[:, :2], 90)] * 2)
    own = lv.pl.activity(pbmc_lava, ["M1", "M2"], shared_scale=False, show=False)
    assert [_points(ax).get_clim() for ax in own] == [(act[:, j].min(), act[:, j].max()) for j in range(2)]
    with pytest.raises(TypeError, match="shared_scale"):
        lv.pl.activity(pbmc_lava, "M1", shared_scale="yes", show=False)


def _texts(ax: Axes) -> dict[str, tuple[float, float]]:
    return {t.get_text(): t.get_position() for t in ax.texts}


def test_groups_are_named_where_their_cells_lie(pbmc_lava):
    ax = lv.pl.activity(pbmc_lava, "M1", show=False)
    named = _texts(ax)
    groups = pbmc_lava.obs["bulk_labels"]  # what tl.modules used (groupby='auto')
    big = groups.value_counts()[lambda n: n >= 0.01 * pbmc_lava.n_obs].index.astype(str)
    assert set(named) == set(big)
    umap = pbmc_lava.obsm["X_umap"][:, :2]
    monocytes = umap[(groups == "CD14+ Monocyte").to_numpy()]
    x, y = named["CD14+ Monocyte"]
    # among the group's own cells: inside the range of its cells on both axes
    assert monocytes[:, 0].min() <= x <= monocytes[:, 0].max() and monocytes[:, 1].min() <= y <= monocytes[:, 1].max()
    assert not lv.pl.activity(pbmc_lava, "M1", labels=None, show=False).texts
    assert set(_texts(lv.pl.activity(pbmc_lava, "M1", labels="phase", show=False))) == {"G1", "S", "G2M"}
    with pytest.raises(KeyError, match="labels"):
        lv.pl.activity(pbmc_lava, "M1", labels="no_such_column", show=False)


def test_labels_on_every_split_panel(pbmc_lava):
    axes = lv.pl.activity(pbmc_lava, "M1", groupby="phase", labels="phase", show=False)
    assert all(set(_texts(ax)) == {"G1", "S", "G2M"} for ax in axes)


def test_scanpy_backend_takes_scanpy_styling_and_leaves_adata_alone(pbmc_lava):
    before = (set(pbmc_lava.obs.columns), set(pbmc_lava.obsm), set(pbmc_lava.uns))
    act = lv.get.activity(pbmc_lava)
    axes = lv.pl.activity(pbmc_lava, ["M1", "M2"], backend="scanpy", frameon=False, show=False)
    assert [ax.get_title().split(":")[0] for ax in axes] == ["M1", "M2"]
    assert all(not ax.axison for ax in axes)  # scanpy's frameon=False
    clim = {c.get_clim() for ax in axes for c in ax.collections if isinstance(c, PathCollection)}
    assert clim == {(act[["M1", "M2"]].to_numpy().min(), act[["M1", "M2"]].to_numpy().max())}
    colours = np.sort(np.asarray(_points(axes[0]).get_array()))
    np.testing.assert_allclose(colours, np.sort(act["M1"].to_numpy()))
    assert set(_texts(axes[0])) >= {"CD14+ Monocyte", "Dendritic"}
    assert (set(pbmc_lava.obs.columns), set(pbmc_lava.obsm), set(pbmc_lava.uns)) == before
    with pytest.raises(ValueError, match="groupby"):
        lv.pl.activity(pbmc_lava, "M1", backend="scanpy", groupby="phase", show=False)
    with pytest.raises(ValueError, match="backend"):
        lv.pl.activity(pbmc_lava, "M1", backend="plotly", show=False)
