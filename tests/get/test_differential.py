"""Tests for :func:`lava_sc.get.differential`."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import lava_sc as lv


@pytest.fixture
def tested():
    """Fabricated activity: M1 up in AKI PT cells (5 donors per condition), then tl.differential."""
    rng = np.random.default_rng(0)
    rows = [
        (c, f"{c}_d{d}", ct) for c in ("control", "AKI") for d in range(5) for ct in ("PT", "EC") for _ in range(30)
    ]
    obs = pd.DataFrame(rows, columns=["condition", "donor", "cell_type"], index=[f"c{i}" for i in range(len(rows))])
    act = rng.normal(size=(len(obs), 3))
    act[((obs["condition"] == "AKI") & (obs["cell_type"] == "PT")).to_numpy(), 0] += 2.0
    adata = ad.AnnData(np.zeros((len(obs), 1), dtype=np.float32), obs=obs)
    adata.obsm["lava_activity"] = pd.DataFrame(act, index=adata.obs_names, columns=["M1", "M2", "M3"])
    lv.tl.differential(adata, statistic="activity")  # fabricated activity: no modules to recompute
    return adata


def test_returns_a_copy_of_the_whole_table(tested):
    table = lv.get.differential(tested)
    stored = tested.uns["lava"]["differential"]
    pd.testing.assert_frame_equal(table, stored)
    table.loc[0, "effect"] = 99.0
    assert stored.loc[0, "effect"] != 99.0
    assert list(table.columns[:4]) == ["module", "cell_type", "condition", "reference"]
    assert (table["reference"] == "control").all()


def test_filters(tested):
    m1 = lv.get.differential(tested, module="M1")
    assert set(m1["module"]) == {"M1"} and len(m1) == 2 and list(m1.index) == [0, 1]
    assert set(lv.get.differential(tested, module=["M3", "M2"])["module"]) == {"M2", "M3"}
    hits = lv.get.differential(tested, q_max=0.05)
    assert len(hits) == 1
    assert hits.loc[0, ["module", "cell_type", "condition"]].tolist() == ["M1", "PT", "AKI"]
    assert (hits["qvalue"] <= 0.05).all()
    assert len(lv.get.differential(tested, module="M2", q_max=0.05)) == 0
    assert len(lv.get.differential(tested, q_max=1.0)) == 6


def test_untested_rows_are_dropped_by_q_max(tested):
    adata = tested[
        ~((tested.obs["cell_type"] == "EC") & (tested.obs["donor"] != "AKI_d0")).to_numpy()
        | (tested.obs["condition"] == "control").to_numpy()
    ].copy()
    lv.tl.differential(adata, statistic="activity")  # fabricated activity: no modules to recompute
    assert lv.get.differential(adata)["qvalue"].isna().sum() == 3
    assert lv.get.differential(adata, q_max=1.0)["cell_type"].eq("PT").all()


def test_errors(tested):
    with pytest.raises(KeyError, match=r"run lava_sc\.tl\.differential\(adata, key='lava'\) first"):
        lv.get.differential(ad.AnnData(np.zeros((3, 2))))
    with pytest.raises(KeyError, match=r"under key 'other'"):
        lv.get.differential(tested, key="other")
    with pytest.raises(KeyError, match=r"Unknown module\(s\) \['M9'\].*\['M1', 'M2', 'M3'\]"):
        lv.get.differential(tested, module="M9")
    with pytest.raises(ValueError, match="`q_max` must be <= 1"):
        lv.get.differential(tested, q_max=5)
    with pytest.raises(TypeError, match="module name"):
        lv.get.differential(tested, module=3)


def test_cells_as_units_carry_their_effective_sizes(tested):
    """replicate=None with localities: n_eff columns come through, rows the localities cannot test drop at q_max."""
    adata = tested.copy()
    order = np.lexsort([adata.obs["donor"].to_numpy(), adata.obs["cell_type"].to_numpy()])
    locality = np.empty(adata.n_obs, dtype=np.int64)
    locality[order] = np.arange(adata.n_obs) // 10  # 10-cell localities within each cell type and condition
    pt = (adata.obs["cell_type"] == "PT").to_numpy()
    locality[~pt] = locality[~pt].min()  # every EC cell in one locality: one effective unit
    adata.obsm["lava_localities"] = sp.csr_matrix(
        (np.ones(adata.n_obs), (np.arange(adata.n_obs), locality)), shape=(adata.n_obs, locality.max() + 1)
    )
    lv.tl.differential(adata, replicate=None)
    table = lv.get.differential(adata)
    assert {"n_eff_condition", "n_eff_reference"} <= set(table.columns)
    pt_rows = table["cell_type"] == "PT"
    np.testing.assert_allclose(table.loc[pt_rows, ["n_eff_condition", "n_eff_reference"]], 15.0)  # 150 cells / 10
    np.testing.assert_allclose(table.loc[~pt_rows, ["n_eff_condition", "n_eff_reference"]], 1.0)
    assert table.loc[~pt_rows, "pvalue"].isna().all()
    hits = lv.get.differential(adata, q_max=1.0)
    assert (hits["cell_type"] == "PT").all() and len(hits) == 3
