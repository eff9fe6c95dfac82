"""Tests for :func:`lava_sc.explain.stability` and :func:`lava_sc.get.stability` on a small planted simulation."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scanpy as sc

import lava_sc as lv

EFFECT_COLUMNS = [
    "factor",
    "kind",
    "value",
    "embedding_change",
    "explanation_change",
    "mean_jaccard",
    "activity_corr",
    "n_modules",
    "n_matched",
    "unmatched_reference",
    "unmatched",
    "above_noise",
    "is_reference",
]


@pytest.fixture(scope="module")
def planted_umap():
    """simulate_planted(n_cells=800) with a scanpy UMAP (exact neighbours) and LAVA results under "lava"."""
    adata = lv.datasets.simulate_planted(n_cells=800, random_state=0)
    sc.pp.pca(adata, mask_var=None)  # the simulator's highly_variable is all False
    sc.pp.neighbors(adata, transformer="sklearn")
    sc.tl.umap(adata, random_state=0)
    lv.tl.modules(adata, random_state=0)
    return adata


@pytest.fixture(scope="module")
def assayed(planted_umap):
    """One LAVA intervention and one embedding intervention (n_neighbors: another value and the reference's)."""
    adata = planted_umap.copy()
    lv.explain.stability(adata, {"resolution": [0.5], "n_neighbors": [10, 15]}, n_repeats=2)
    return adata


def snapshot(adata):
    return {
        "uns": set(adata.uns),
        "lava": set(adata.uns["lava"]) if "lava" in adata.uns else None,
        "obsm": {k: id(v) for k, v in adata.obsm.items()},
        "obs": list(adata.obs.columns),
        "X": adata.X.copy(),
    }


def test_identical_settings_give_no_change(planted_umap):
    adata = planted_umap.copy()
    lv.explain.stability(adata, {"random_state": [0, 0], "fdr": [0.05]}, n_repeats=1)
    effects = lv.get.stability(adata)
    assert len(effects) == 3
    assert (effects["explanation_change"] <= 0.05).all()  # required: identical settings reproduce the reference
    assert (effects["mean_jaccard"] >= 0.95).all()
    assert (effects["embedding_change"] == 0).all()
    assert effects["is_reference"].all()
    assert (effects["activity_corr"] > 0.99).all()


def test_effects_table_and_measures(assayed, planted_umap):
    res = assayed.uns["stability"]
    effects = lv.get.stability(assayed)
    assert list(effects.columns) == EFFECT_COLUMNS
    assert effects["factor"].tolist() == ["resolution", "n_neighbors", "n_neighbors"]
    assert effects["kind"].tolist() == ["lava", "embedding", "embedding"]
    np.testing.assert_array_equal(effects["value"], [0.5, 10.0, 15.0])
    lava_row, other, same = (effects.iloc[i] for i in range(3))
    assert lava_row["embedding_change"] == 0.0
    assert 0.0 < other["embedding_change"] <= 1.0  # a different kNN graph moves the UMAP
    # the reference's own n_neighbors recomputes the user's UMAP exactly, and LAVA on it reproduces the modules
    assert same["is_reference"] and not other["is_reference"]
    assert same["embedding_change"] == pytest.approx(0.0, abs=1e-12)
    assert same["explanation_change"] <= 0.05
    for _, row in effects.iterrows():
        assert 0.0 <= row["explanation_change"] <= 1.0
        assert row["explanation_change"] == pytest.approx(1 - row["mean_jaccard"])
        assert row["n_matched"] <= min(row["n_modules"], res["n_modules_reference"])
    n_ref = len(lv.get.module_genes(planted_umap)["module"].unique())
    assert res["n_modules_reference"] == n_ref and res["reference"] == "stored"

    noise = lv.get.stability(assayed, table="noise_floor")
    assert noise["random_state"].tolist() == [1, 2]
    assert res["noise_floor_mean"] == pytest.approx(noise["explanation_change"].mean())
    assert res["noise_floor_max"] == pytest.approx(noise["explanation_change"].max())
    np.testing.assert_array_equal(
        effects["above_noise"], effects["explanation_change"] > res["noise_floor_max"] + 1e-12
    )
    # one embedding intervention away from the reference: too few points for Kendall's tau
    assert np.isnan(res["kendall_tau"]) and res["kendall_n"] == 1
    assert "at least 3" in res["kendall_note"]
    params = res["params"]
    assert params["key"] == "lava" and params["basis"] == "X_umap" and params["n_repeats"] == 2
    assert params["embedding"]["n_neighbors"] == 15


def test_leaves_adata_untouched_except_key_added(planted_umap):
    adata = planted_umap.copy()
    before = snapshot(adata)
    lv.explain.stability(adata, {"overlap": [2.0]}, n_repeats=1, key_added="stab")
    after = snapshot(adata)
    assert after["uns"] == before["uns"] | {"stab"}
    assert after["lava"] == before["lava"] and after["obsm"] == before["obsm"] and after["obs"] == before["obs"]
    assert (after["X"] != before["X"]).nnz == 0
    assert lv.get.stability(adata, "stab").shape[0] == 1


def test_reference_computed_when_missing_and_copy(planted_umap):
    adata = planted_umap.copy()
    del adata.uns["lava"]
    for k in ("lava_localities", "lava_activity"):
        del adata.obsm[k]
    out = lv.explain.stability(adata, {"random_state": [0]}, n_repeats=1, copy=True)
    assert "stability" not in adata.uns and "lava" not in adata.uns  # the reference run went to a copy
    assert "lava" not in out.uns and "lava_activity" not in out.obsm
    res = out.uns["stability"]
    assert res["reference"] == "computed" and res["n_modules_reference"] > 0
    assert res["effects"]["explanation_change"].iloc[0] <= 0.05  # recomputed, not served from a cache


def test_three_embedding_factors_give_kendall_tau(planted_umap):
    adata = planted_umap.copy()
    lv.explain.stability(adata, {"n_pcs": [10], "umap_seed": [1], "min_dist": [0.1]}, n_repeats=1)
    res = adata.uns["stability"]
    effects = res["effects"]
    assert (effects["kind"] == "embedding").all() and not effects["is_reference"].any()
    assert (effects["embedding_change"] > 0).all()
    assert res["kendall_n"] == 3
    assert np.isfinite(res["kendall_tau"]) or "same" in res["kendall_note"]
    assert res["params"]["embedding"]["n_pcs"] == 50  # the user's X_pca (50 components) was reused


def test_empty_vary_measures_the_noise_floor_only(planted_umap):
    adata = planted_umap.copy()
    lv.explain.stability(adata, {}, n_repeats=1)
    assert lv.get.stability(adata).empty
    assert len(lv.get.stability(adata, table="noise_floor")) == 1


def test_kendall_tau_with_three_embedding_interventions():
    from lava_sc.explain._stability import kendall

    effects = pd.DataFrame(
        {
            "kind": ["embedding"] * 4 + ["lava"],
            "embedding_change": [0.1, 0.4, 0.8, 0.0, 0.0],
            "explanation_change": [0.2, 0.3, 0.9, 0.0, 0.5],
            "is_reference": [False, False, False, True, False],
        }
    )
    tau, p, n, note = kendall(effects)
    assert tau == pytest.approx(1.0) and n == 3 and note == "" and 0 < p <= 1
    effects.loc[:2, "explanation_change"] = 0.4
    tau, _, _, note = kendall(effects)
    assert np.isnan(tau) and "same" in note


def test_h5ad_round_trip(assayed, tmp_path):
    path = tmp_path / "stability.h5ad"
    assayed.write_h5ad(path)
    back = ad.read_h5ad(path)
    for table in ("effects", "noise_floor"):
        pd.testing.assert_frame_equal(lv.get.stability(back, table=table), lv.get.stability(assayed, table=table))
    for name in ("noise_floor_mean", "noise_floor_max", "kendall_n", "kendall_note", "n_modules_reference"):
        assert back.uns["stability"][name] == assayed.uns["stability"][name]
    assert np.isnan(back.uns["stability"]["kendall_tau"])


@pytest.mark.parametrize(
    ("vary", "error", "match"),
    [
        ({"n_cellz": [100]}, ValueError, "Unknown factor 'n_cellz'.*n_cells.*umap_seed"),
        ({"n_cells": []}, ValueError, "empty"),
        ({"n_cells": 100}, TypeError, "list of values"),
        ({"n_cells": "100"}, TypeError, "list of values"),
        ({"n_cells": [100.5]}, TypeError, "integer"),
        ({"n_cells": ["a"]}, TypeError, "integer"),
        ({"resolution": ["high"]}, TypeError, "number"),
        ({"resolution": [True]}, TypeError, "number"),
        ({"fdr": [1.5]}, ValueError, "<= 1"),
        ({"n_cells": [100_000]}, ValueError, "adata has 800"),
        ({"n_neighbors": [1]}, ValueError, ">= 2"),
        ({"min_dist": [-0.1]}, ValueError, ">= 0"),
        ([("n_cells", [100])], TypeError, "dict"),
        (None, TypeError, "dict"),
    ],
)
def test_bad_vary(planted_umap, vary, error, match):
    with pytest.raises(error, match=match):
        lv.explain.stability(planted_umap, vary)
    assert "stability" not in planted_umap.uns


def test_bad_arguments(planted_umap):
    with pytest.raises(ValueError, match="key_added"):
        lv.explain.stability(planted_umap, {"fdr": [0.1]}, key_added="lava")
    with pytest.raises(ValueError, match="n_repeats"):
        lv.explain.stability(planted_umap, {"fdr": [0.1]}, n_repeats=0)
    with pytest.raises(KeyError, match="X_tsne"):
        lv.explain.stability(planted_umap, {"fdr": [0.1]}, basis="X_tsne")
    with pytest.raises(ValueError, match="computed on 'X_umap'"):
        lv.explain.stability(planted_umap, {"fdr": [0.1]}, basis="X_pca")
    with pytest.raises(TypeError, match="AnnData"):
        lv.explain.stability(np.zeros((5, 5)), {"fdr": [0.1]})
    with pytest.raises(KeyError, match=r"run lava_sc\.explain\.stability"):
        lv.get.stability(planted_umap)
    assert "stability" not in planted_umap.uns


def test_get_stability_bad_table(assayed):
    with pytest.raises(ValueError, match="table"):
        lv.get.stability(assayed, table="summary")


def test_every_lava_factor_is_an_argument_of_a_pipeline_step():
    from lava_sc.explain._interventions import LAVA_FACTORS, stages_of

    assert all(stages_of(factor) for factor in LAVA_FACTORS)
    assert stages_of("random_state") == ("localities", "correlations", "modules")
