"""Tests for :func:`lava_sc.pl.differential`."""

from __future__ import annotations

import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from matplotlib import pyplot as plt
from matplotlib.axes import Axes
from matplotlib.colors import to_rgba

import lava_sc as lv

from .conftest import is_png

CELL_TYPES = ["PT", "TAL", "DCT", "EC", "Immune"]


def fabricated(seed=0, n_donors=4):
    """Fabricated activity with the minimal LAVA entries the plots read (module_genes, modules)."""
    rng = np.random.default_rng(seed)
    rows = [
        (c, f"{c}_d{d}", ct)
        for c in ("reference", "AKI", "CKD")
        for d in range(n_donors)
        for ct in CELL_TYPES
        for _ in range(25)
    ]
    obs = pd.DataFrame(rows, columns=["condition", "donor", "cell_type"], index=[f"c{i}" for i in range(len(rows))])
    obs["condition"] = pd.Categorical(obs["condition"], categories=["reference", "AKI", "CKD"])
    obs["cell_type"] = pd.Categorical(obs["cell_type"], categories=CELL_TYPES)
    names = ["M1", "M2", "M3", "M4"]
    act = rng.normal(scale=0.3, size=(len(obs), len(names)))
    injured = (obs["condition"] != "reference") & obs["cell_type"].isin(["PT", "TAL"])
    act[injured.to_numpy(), 0] += 1.0
    act[((obs["condition"] == "CKD") & (obs["cell_type"] == "EC")).to_numpy(), 1] -= 0.6
    adata = ad.AnnData(np.zeros((len(obs), 1), dtype=np.float32), obs=obs)
    adata.obsm["lava_activity"] = pd.DataFrame(act, index=adata.obs_names, columns=names)
    genes = pd.DataFrame(
        [(m, f"{m}_g{j}", 1.0 - 0.1 * j) for m in names for j in range(4)], columns=["module", "gene", "score"]
    )
    adata.uns["lava"] = {"module_genes": genes}
    # fabricated activity: no modules to recompute. Plain Welch, as these expectations were set: with
    # moderated variances two null rows of this seed (M2 in DCT and EC, effect 0.10, 4 donors a side)
    # reach q 0.02-0.04 (p 0.003-0.006; the moderated test's null rate is measured in tests/_core/test_stats.py)
    lv.tl.differential(adata, statistic="activity", moderated=False)
    return adata


@pytest.fixture(scope="module")
def diff_adata():
    return fabricated()


def dots(ax: Axes):
    """The coloured dots (the first collection; the second holds the not-tested crosses)."""
    return ax.collections[0]


def test_one_panel_per_condition(diff_adata):
    axes = lv.pl.differential(diff_adata, show=False)
    assert isinstance(axes, list) and len(axes) == 2
    assert [ax.get_title() for ax in axes] == ["AKI vs reference", "CKD vs reference"]
    assert [t.get_text() for t in axes[0].get_xticklabels()] == CELL_TYPES
    labels = [t.get_text() for t in axes[0].get_yticklabels()]
    assert labels == [
        "M1: M1_g0, M1_g1, M1_g2",
        "M2: M2_g0, M2_g1, M2_g2",
        "M3: M3_g0, M3_g1, M3_g2",
        "M4: M4_g0, M4_g1, M4_g2",
    ]
    assert axes[0].get_ylim()[0] > axes[0].get_ylim()[1]  # first module on top
    ax = lv.pl.differential(diff_adata, condition="CKD", show=False)
    assert isinstance(ax, Axes) and ax.get_title() == "CKD vs reference"


def test_colour_is_the_effect_on_a_shared_symmetric_scale(diff_adata):
    table = lv.get.differential(diff_adata)
    limit = table["effect"].abs().max()
    axes = lv.pl.differential(diff_adata, show=False)
    for ax, condition in zip(axes, ["AKI", "CKD"], strict=True):
        coll = dots(ax)
        assert coll.get_clim() == pytest.approx((-limit, limit))
        sub = table[table["condition"] == condition]
        np.testing.assert_allclose(np.asarray(coll.get_array()), sub["effect"].to_numpy())
        offsets = np.asarray(coll.get_offsets())
        assert offsets[:, 0].tolist() == [CELL_TYPES.index(c) for c in sub["cell_type"]]
        assert offsets[:, 1].tolist() == [int(m[1:]) - 1 for m in sub["module"]]
    fig = axes[0].figure
    cbar_axes = [a for a in fig.axes if a not in axes]
    assert len(cbar_axes) == 1 and "effect" in cbar_axes[0].get_ylabel()


def test_size_is_minus_log_q_and_significant_dots_are_ringed(diff_adata):
    table = lv.get.differential(diff_adata, module=None)
    sub = table[table["condition"] == "AKI"]
    coll = dots(lv.pl.differential(diff_adata, condition="AKI", show=False))
    sizes = coll.get_sizes()
    q = sub["qvalue"].to_numpy()
    order = np.argsort(q)
    assert np.all(np.diff(sizes[order]) <= 1e-9)  # smaller q, bigger dot
    edges = coll.get_edgecolors()
    significant = q < 0.05
    assert significant.sum() == 2  # M1 in PT and TAL
    assert set(sub.loc[significant, "cell_type"]) == {"PT", "TAL"}
    np.testing.assert_allclose(edges[significant], [to_rgba("black")] * 2)
    widths = np.broadcast_to(coll.get_linewidths(), (len(q),))
    grey = to_rgba("0.7")
    np.testing.assert_allclose(edges[~significant], [grey] * int((~significant).sum()))  # thin grey rim only
    assert widths[~significant].max() < widths[significant].min()
    coll_strict = dots(lv.pl.differential(diff_adata, condition="AKI", q_threshold=1e-12, show=False))
    np.testing.assert_allclose(coll_strict.get_edgecolors(), [grey] * len(q))


def test_legend_explains_size_and_ring(diff_adata):
    axes = lv.pl.differential(diff_adata, show=False)
    texts = [t.get_text() for leg in axes[0].figure.legends for t in leg.get_texts()]
    assert "q < 0.05" in texts and "q = 0.01" in texts
    assert not any("not tested" in t for t in texts)


def test_untested_rows_are_crosses():
    adata = fabricated(n_donors=3)
    drop = (adata.obs["condition"] == "AKI") & (adata.obs["cell_type"] == "EC") & (adata.obs["donor"] != "AKI_d0")
    adata = adata[~drop.to_numpy()].copy()
    lv.tl.differential(adata, statistic="activity")  # fabricated activity: no modules to recompute
    ax = lv.pl.differential(adata, condition="AKI", show=False)
    crosses = np.asarray(ax.collections[1].get_offsets())
    assert crosses.shape == (4, 2) and (crosses[:, 0] == CELL_TYPES.index("EC")).all()
    assert len(dots(ax).get_offsets()) == 4 * 4
    texts = [t.get_text() for t in ax.figure.legends[0].get_texts()]
    assert "not tested (see note)" in texts


def test_draws_into_ax_and_saves(diff_adata, tmp_path):
    path = tmp_path / "diff.png"
    axes = lv.pl.differential(diff_adata, show=False, save=path)
    assert len(axes) == 2 and path.stat().st_size > 5000 and is_png(path)
    _, ax = plt.subplots(figsize=(5, 4))
    out = lv.pl.differential(diff_adata, condition="AKI", ax=ax, save=tmp_path / "one")
    assert out is ax and is_png(tmp_path / "one.png")
    assert ax.get_legend() is not None
    with pytest.raises(ValueError, match=r"single condition"):
        lv.pl.differential(diff_adata, ax=ax)


def test_modules_subset(diff_adata):
    ax = lv.pl.differential(diff_adata, condition="AKI", modules=["M2", "M1"], show=False)
    assert [t.get_text().split(":")[0] for t in ax.get_yticklabels()] == ["M2", "M1"]
    with pytest.raises(KeyError, match=r"Unknown module\(s\) \['M7'\]"):
        lv.pl.differential(diff_adata, modules="M7", show=False)


def test_without_module_genes_rows_are_module_names(diff_adata):
    adata = diff_adata.copy()
    del adata.uns["lava"]["module_genes"]
    ax = lv.pl.differential(adata, condition="AKI", show=False)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["M1", "M2", "M3", "M4"]


def test_show_returns_none(diff_adata):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Agg cannot show
        assert lv.pl.differential(diff_adata, show=True) is None


def test_errors(diff_adata):
    with pytest.raises(KeyError, match=r"run lava_sc\.tl\.differential\(adata, key='lava'\) first"):
        lv.pl.differential(ad.AnnData(np.zeros((3, 2))), show=False)
    with pytest.raises(KeyError, match=r"Unknown condition\(s\) \['ARF'\].*\['AKI', 'CKD'\]"):
        lv.pl.differential(diff_adata, condition="ARF", show=False)
    with pytest.raises(ValueError, match="q_threshold"):
        lv.pl.differential(diff_adata, q_threshold=0, show=False)


def test_does_not_modify_adata(diff_adata):
    before = lv.get.differential(diff_adata)
    uns_before = set(diff_adata.uns["lava"].keys())
    lv.pl.differential(diff_adata, show=False)
    pd.testing.assert_frame_equal(lv.get.differential(diff_adata), before)
    assert set(diff_adata.uns["lava"].keys()) == uns_before


def test_on_real_results(pbmc_lava, tmp_path):
    adata = pbmc_lava.copy()
    # pbmc68k_reduced has no donors: fabricate nested ones, 'phase' plays the condition
    rng = np.random.default_rng(0)
    adata.obs["donor"] = (adata.obs["phase"].astype(str) + "_" + rng.integers(0, 3, adata.n_obs).astype(str)).astype(
        "category"
    )
    lv.tl.differential(adata, "phase", reference="G1", within="bulk_labels", min_cells=3)
    axes = lv.pl.differential(adata, show=False, save=tmp_path / "pbmc.png")
    assert len(axes) == 2 and is_png(tmp_path / "pbmc.png")


def test_label_genes_sets_how_many_genes_each_row_names(diff_adata):
    three = [t.get_text() for t in lv.pl.differential(diff_adata, condition="AKI", show=False).get_yticklabels()]
    one = [
        t.get_text()
        for t in lv.pl.differential(diff_adata, condition="AKI", label_genes=1, show=False).get_yticklabels()
    ]
    bare = [
        t.get_text()
        for t in lv.pl.differential(diff_adata, condition="AKI", label_genes=0, show=False).get_yticklabels()
    ]
    assert bare == ["M1", "M2", "M3", "M4"]
    assert [label.count(",") for label in one] == [0] * 4 and all(": " in label for label in one)
    assert [a.split(", ")[0] for a in three] == one  # the first named gene is the top one
    with pytest.raises(ValueError, match="label_genes"):
        lv.pl.differential(diff_adata, label_genes=-1, show=False)
    plt.close("all")
