"""Tests for :func:`lava_sc.pl.stability`."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib import pyplot as plt
from matplotlib.axes import Axes

import lava_sc as lv

from .conftest import is_png


def fabricated(n_embedding: int = 4):
    """An AnnData with hand-made ``uns["stability"]`` (LAVA and embedding interventions), no LAVA run needed."""
    import anndata as ad

    rows = [
        ("resolution", "lava", 0.5, 0.0, 0.25, True),
        ("resolution", "lava", 1.0, 0.0, 0.0, False),
        ("n_cells", "lava", 80, 0.0, 0.8, False),
    ]
    embedding = [
        ("n_neighbors", "embedding", 10, 0.75, 0.7, False),
        ("n_neighbors", "embedding", 15, 0.0, 0.0, False),
        ("umap_seed", "embedding", 1, 0.73, 0.5, False),
        ("min_dist", "embedding", 0.1, 0.76, 0.74, False),
    ][:n_embedding]
    records = []
    for factor, kind, value, emb, expl, above in rows + embedding:
        records.append(
            {
                "factor": factor,
                "kind": kind,
                "value": float(value),
                "embedding_change": emb,
                "explanation_change": expl,
                "mean_jaccard": 1 - expl,
                "activity_corr": 0.9,
                "n_modules": 4,
                "n_matched": 3,
                "unmatched_reference": "",
                "unmatched": "",
                "above_noise": above,
                "is_reference": expl == 0.0,
            }
        )
    effects = pd.DataFrame(records)
    adata = ad.AnnData(np.zeros((3, 2), dtype=np.float32))
    from lava_sc.explain._stability import kendall

    tau, p, n, note = kendall(effects)
    adata.uns["stability"] = {
        "effects": effects,
        "noise_floor": pd.DataFrame(
            {
                "random_state": [1, 2],
                "explanation_change": [0.5, 0.69],
                "mean_jaccard": [0.5, 0.31],
                "activity_corr": [0.98, 0.97],
                "n_modules": [3, 2],
                "n_matched": [3, 2],
            }
        ),
        "noise_floor_mean": 0.595,
        "noise_floor_max": 0.69,
        "kendall_tau": tau,
        "kendall_pvalue": p,
        "kendall_n": n,
        "kendall_note": note,
        "n_modules_reference": 5,
        "reference": "stored",
        "params": {"knn_k": 15},
    }
    return adata


def test_two_panels_and_png(tmp_path):
    adata = fabricated()
    path = tmp_path / "stability.png"
    axes = lv.pl.stability(adata, show=False, save=path)
    assert isinstance(axes, list) and len(axes) == 2 and all(isinstance(a, Axes) for a in axes)
    assert is_png(path)
    left, right = axes
    assert "Explanation change" in left.get_title()
    assert "τ = 1.00" in right.get_title()  # three non-reference points, concordant
    assert [t.get_text() for t in left.get_xticklabels()] == ["0.5", "1", "80", "10", "15", "1", "0.1"]
    assert "embedding change" in right.get_xlabel()
    assert len(left.patches) >= 1  # the noise band


def test_save_without_suffix_writes_png(tmp_path):
    lv.pl.stability(fabricated(), show=False, save=tmp_path / "stab")
    assert is_png(tmp_path / "stab.png")


def test_tau_note_when_too_few_points():
    axes = lv.pl.stability(fabricated(n_embedding=2), show=False)
    assert "n/a" in axes[1].get_title() and "at least 3" in axes[1].get_title()


def test_single_ax_draws_the_first_panel():
    fig, ax = plt.subplots()
    out = lv.pl.stability(fabricated(), ax=ax)
    assert out is ax and len(fig.axes) == 1
    assert "Explanation change" in ax.get_title()


def test_list_of_two_axes():
    fig, (a, b) = plt.subplots(1, 2)
    out = lv.pl.stability(fabricated(), ax=[a, b])
    assert out == [a, b]
    assert "τ" in b.get_title()
    fig, grid = plt.subplots(1, 2)  # the array plt.subplots returns works too
    assert lv.pl.stability(fabricated(), ax=grid) == list(grid)


def test_real_assay_without_embedding_interventions_gives_one_panel(small_lava, tmp_path):
    adata = small_lava.copy()
    lv.explain.stability(adata, {"resolution": [0.5, 2.0]}, n_repeats=1)
    ax = lv.pl.stability(adata, show=False, save=tmp_path / "lava_only.png")
    assert isinstance(ax, Axes)
    assert is_png(tmp_path / "lava_only.png")


def test_bad_input():
    adata = fabricated()
    with pytest.raises(TypeError, match="list of two Axes"):
        lv.pl.stability(adata, ax="left")
    fig, axes = plt.subplots(1, 3)
    with pytest.raises(TypeError, match="list of two Axes"):
        lv.pl.stability(adata, ax=list(axes))
    with pytest.raises(KeyError, match=r"lava_sc\.explain\.stability"):
        lv.pl.stability(adata, key="other")
    with pytest.warns(FutureWarning, match="`key_added=` is now `key=`"), pytest.raises(KeyError):
        lv.pl.stability(adata, key_added="other")
    with pytest.raises(TypeError, match="both"):
        lv.pl.stability(adata, key="a", key_added="b")
    with pytest.raises(TypeError, match="AnnData"):
        lv.pl.stability(None)
    with pytest.raises(TypeError, match="save"):
        lv.pl.stability(adata, show=False, save=3)
