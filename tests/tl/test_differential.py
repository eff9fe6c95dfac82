"""Tests for :func:`lava_sc.tl.differential` (donors as the unit of replication)."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy import stats

import lava_sc as lv
from lava_sc._core.stats import welch_treat
from lava_sc.tl import _differential as diff_module
from lava_sc.tl import _differential_design as design
from lava_sc.tl import _differential_stats as diff_stats

COLUMNS_AFTER_GROUP = [
    "condition",
    "reference",
    "unit",
    "measure",
    "n_condition",
    "n_reference",
    "n_cells_condition",
    "n_cells_reference",
    "n_eff_condition",
    "n_eff_reference",
    "mean_condition",
    "mean_reference",
    "effect",
    "effect_standardised",
    "statistic",
    "pvalue",
    "qvalue",
    "note",
]


def fabricate(
    *,
    conditions=("reference", "AKI"),
    cell_types=("PT", "TAL", "EC"),
    n_donors=4,
    n_cells=40,
    n_modules=3,
    donor_sd=0.3,
    cell_sd=1.0,
    effects=None,
    seed=0,
) -> ad.AnnData:
    """An AnnData with obs condition/donor/cell_type and a fabricated obsm["lava_activity"].

    Activity = planted effect[(module, cell_type, condition)] + donor-by-cell-type random effect
    (sd ``donor_sd``) + cell noise (sd ``cell_sd``). Donors are nested in conditions.
    """
    rng = np.random.default_rng(seed)
    effects = effects or {}
    rows = [
        (cond, f"{cond}_d{d}", ct)
        for cond in conditions
        for d in range(n_donors)
        for ct in cell_types
        for _ in range(n_cells)
    ]
    obs = pd.DataFrame(rows, columns=["condition", "donor", "cell_type"], index=[f"c{i}" for i in range(len(rows))])
    obs["condition"] = pd.Categorical(obs["condition"], categories=list(conditions))
    obs["cell_type"] = pd.Categorical(obs["cell_type"], categories=list(cell_types))
    obs["donor"] = obs["donor"].astype("category")
    names = [f"M{i + 1}" for i in range(n_modules)]
    act = rng.normal(scale=cell_sd, size=(len(obs), n_modules))
    unit = (obs["donor"].astype(str) + "|" + obs["cell_type"].astype(str)).to_numpy()
    units, inverse = np.unique(unit, return_inverse=True)
    act += rng.normal(scale=donor_sd, size=(len(units), n_modules))[inverse]
    for (module, ct, cond), value in effects.items():
        sel = ((obs["cell_type"] == ct) & (obs["condition"] == cond)).to_numpy()
        act[sel, names.index(module)] += value
    adata = ad.AnnData(np.zeros((len(obs), 2), dtype=np.float32), obs=obs)
    adata.obsm["lava_activity"] = pd.DataFrame(act, index=adata.obs_names, columns=names)
    return adata


def result(adata, key="lava") -> pd.DataFrame:
    return adata.uns[key]["differential"]


def row(table, module, group, condition, within="cell_type"):
    sel = (table["module"] == module) & (table[within] == group) & (table["condition"] == condition)
    assert sel.sum() == 1
    return table[sel].iloc[0]


def hand_bh(p):
    """Benjamini-Hochberg by the textbook step-up rule, NaN kept out."""
    p = np.asarray(p, dtype=float)
    q = np.full(len(p), np.nan)
    idx = np.flatnonzero(np.isfinite(p))
    m = len(idx)
    order = idx[np.argsort(p[idx])]
    running = 1.0
    for rank in range(m, 0, -1):
        i = order[rank - 1]
        running = min(running, p[i] * m / rank)
        q[i] = running
    return q


# --- results -----------------------------------------------------------------------------------


def test_layout_and_one_row_per_module_group_condition():
    adata = fabricate(conditions=("reference", "AKI", "CKD"))
    lv.tl.differential(adata, statistic="activity")
    table = result(adata)
    assert list(table.columns) == ["module", "cell_type", *COLUMNS_AFTER_GROUP]
    assert len(table) == 3 * 3 * 2  # modules x cell types x non-reference conditions
    assert set(table["condition"]) == {"AKI", "CKD"}
    assert (table["reference"] == "reference").all()
    assert (table["unit"] == "donor").all() and (table["measure"] == "activity").all()
    assert (table["n_condition"] == 4).all() and (table["n_reference"] == 4).all()
    assert (table["n_cells_condition"] == 160).all()
    assert (table["n_eff_condition"] == 4.0).all() and (table["n_eff_reference"] == 4.0).all()  # donors
    assert table["module"].tolist()[:6] == ["M1"] * 6  # sorted by module, then group, then condition
    assert table["cell_type"].tolist()[:6] == ["PT", "PT", "TAL", "TAL", "EC", "EC"]
    params = {k: v for k, v in adata.uns["lava"]["params"]["differential"].items() if k not in ("run_id", "upstream")}
    assert params == {
        "groupby": "condition",
        "reference": "reference",
        "replicate": "donor",
        "within": "cell_type",
        "statistic": "activity",
        "min_cells": 10,
        "min_effect": 0.0,
        "moderated": True,
    }


def test_planted_effect_in_one_cell_type_only():
    adata = fabricate(effects={("M1", "PT", "AKI"): 1.5}, n_donors=5, donor_sd=0.3, seed=3)
    lv.tl.differential(adata, statistic="activity")
    table = result(adata)
    hit = row(table, "M1", "PT", "AKI")
    print(table[["module", "cell_type", "effect", "pvalue", "qvalue"]].to_string())
    assert hit["qvalue"] < 0.05
    assert hit["effect"] == pytest.approx(1.5, abs=0.5) and hit["effect_standardised"] > 2
    others = table[~((table["module"] == "M1") & (table["cell_type"] == "PT"))]
    assert (others["qvalue"] >= 0.05).all()


def test_effects_match_hand_computed_donor_means():
    # one cell type, 3 + 3 donors with unequal numbers of cells: donors are weighted equally
    values = {
        "reference_d0": [1.0, 2.0, 3.0],  # mean 2
        "reference_d1": [4.0, 4.0],  # mean 4
        "reference_d2": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0],  # mean 2.5
        "AKI_d0": [6.0, 8.0],  # mean 7
        "AKI_d1": [5.0],  # mean 5
        "AKI_d2": [9.0, 9.0, 10.0, 8.0],  # mean 9
    }
    donors = [d for d, v in values.items() for _ in v]
    obs = pd.DataFrame(
        {"donor": donors, "condition": [d.split("_")[0] for d in donors], "cell_type": "PT"},
        index=[f"c{i}" for i in range(len(donors))],
    )
    act = np.concatenate(list(values.values()))
    adata = ad.AnnData(np.zeros((len(obs), 1), dtype=np.float32), obs=obs)
    adata.obsm["lava_activity"] = pd.DataFrame({"M1": act, "M2": -2 * act}, index=adata.obs_names)
    lv.tl.differential(adata, statistic="activity", min_cells=1, moderated=False)
    table = result(adata)
    m1 = row(table, "M1", "PT", "AKI")
    x, y = np.array([7.0, 5.0, 9.0]), np.array([2.0, 4.0, 2.5])
    assert m1["mean_condition"] == pytest.approx(7.0)
    assert m1["mean_reference"] == pytest.approx(17 / 6)
    assert m1["effect"] == pytest.approx(7.0 - 17 / 6)
    pooled = np.sqrt((((x - x.mean()) ** 2).sum() + ((y - y.mean()) ** 2).sum()) / 4)
    assert m1["effect_standardised"] == pytest.approx((7.0 - 17 / 6) / pooled)
    vx, vy = x.var(ddof=1) / 3, y.var(ddof=1) / 3
    t = (x.mean() - y.mean()) / np.sqrt(vx + vy)
    dof = (vx + vy) ** 2 / (vx**2 / 2 + vy**2 / 2)
    assert m1["statistic"] == pytest.approx(t)
    assert m1["pvalue"] == pytest.approx(2 * stats.t.sf(abs(t), dof))
    assert (m1["n_condition"], m1["n_reference"]) == (3, 3)
    assert (m1["n_cells_condition"], m1["n_cells_reference"]) == (7, 11)
    m2 = row(table, "M2", "PT", "AKI")  # sign flips with the activity, standardised effect too
    assert m2["effect"] == pytest.approx(-2 * m1["effect"])
    assert m2["effect_standardised"] == pytest.approx(-m1["effect_standardised"])
    assert m2["pvalue"] == pytest.approx(m1["pvalue"])


def test_qvalues_are_benjamini_hochberg_over_finite_pvalues():
    p = np.array([0.01, 0.04, 0.03, 0.5, np.nan])
    np.testing.assert_allclose(diff_stats.bh(p), [0.04, 0.16 / 3, 0.16 / 3, 0.5, np.nan])
    np.testing.assert_allclose(diff_stats.bh(p), hand_bh(p))
    assert np.isnan(diff_stats.bh(np.array([np.nan]))).all()

    adata = fabricate(conditions=("reference", "AKI", "CKD"), effects={("M2", "EC", "CKD"): 1.0}, seed=1)
    # one AKI donor without TAL cells -> rows with < 2 donors on a side get NaN p-values
    drop = (adata.obs["cell_type"] == "TAL") & (adata.obs["condition"] == "AKI") & (adata.obs["donor"] != "AKI_d0")
    adata = adata[~drop.to_numpy()].copy()
    lv.tl.differential(adata, statistic="activity")
    table = result(adata)
    assert table["pvalue"].isna().sum() == 3
    np.testing.assert_allclose(table["qvalue"].to_numpy(), hand_bh(table["pvalue"].to_numpy()))


def test_too_few_donors_is_reported_not_raised():
    adata = fabricate()
    drop = (adata.obs["cell_type"] == "EC") & (adata.obs["condition"] == "AKI") & (adata.obs["donor"] != "AKI_d1")
    adata = adata[~drop.to_numpy()].copy()
    lv.tl.differential(adata, statistic="activity")
    table = result(adata)
    ec = table[table["cell_type"] == "EC"]
    assert ec["pvalue"].isna().all() and ec["qvalue"].isna().all() and ec["statistic"].isna().all()
    assert (ec["n_condition"] == 1).all()
    assert ec["note"].str.contains("not tested: fewer than 2 replicates").all()
    assert np.isfinite(ec["effect"]).all()  # the means are still reported
    rest = table[table["cell_type"] != "EC"]
    assert np.isfinite(rest["pvalue"]).all() and (rest["note"] == "").all()


def test_min_cells_drops_small_donor_groups():
    adata = fabricate(n_cells=20)
    drop = (adata.obs["donor"] == "AKI_d0") & (adata.obs["cell_type"] == "PT")
    keep = ~drop.to_numpy()
    keep[np.flatnonzero(drop.to_numpy())[:5]] = True  # AKI_d0 keeps 5 PT cells
    adata = adata[keep].copy()
    lv.tl.differential(adata, statistic="activity", min_cells=10)
    pt = row(result(adata), "M1", "PT", "AKI")
    assert pt["n_condition"] == 3 and pt["n_cells_condition"] == 60
    assert "1 donor group(s) with < 10 cells dropped" in pt["note"]
    act = adata.obsm["lava_activity"]["M1"]
    sel = (adata.obs["cell_type"] == "PT") & (adata.obs["condition"] == "AKI") & (adata.obs["donor"] != "AKI_d0")
    means = act[sel.to_numpy()].groupby(adata.obs["donor"][sel.to_numpy()], observed=True).mean()
    assert pt["mean_condition"] == pytest.approx(means.mean())
    lv.tl.differential(adata, statistic="activity", min_cells=5)
    assert row(result(adata), "M1", "PT", "AKI")["n_condition"] == 4


def test_cells_as_replicates_marks_unit_and_warns(monkeypatch):
    logged = []
    monkeypatch.setattr(diff_module.logg, "warning", lambda msg, **kw: logged.append(msg))
    adata = fabricate()
    lv.tl.differential(adata, replicate=None, moderated=False)
    table = result(adata)
    assert (table["unit"] == "cells").all() and (table["measure"] == "activity").all()
    assert (table["n_condition"] == 4 * 40).all() and (table["n_condition"] == table["n_cells_condition"]).all()
    # no localities stored: nothing limits the effective size, and the warning says so
    assert (table["n_eff_condition"] == 4 * 40).all() and (table["n_eff_reference"] == 4 * 40).all()
    assert any("cells are the units" in m and "no localities" in m and "anti-conservative" in m for m in logged)
    assert any("`min_effect=`" in m for m in logged)
    logged.clear()  # with min_effect given, the advice to pass it is not repeated
    lv.tl.differential(fabricate(), replicate=None, min_effect=0.1)
    assert any("cells are the units" in m for m in logged) and not any("`min_effect=`" in m for m in logged)
    # Welch's t-test on the cells themselves
    cells = adata.obsm["lava_activity"]["M1"].to_numpy()
    ct, cond = adata.obs["cell_type"].to_numpy(), adata.obs["condition"].to_numpy()
    expected = stats.ttest_ind(
        cells[(ct == "PT") & (cond == "AKI")], cells[(ct == "PT") & (cond == "reference")], equal_var=False
    )
    assert row(table, "M1", "PT", "AKI")["pvalue"] == pytest.approx(expected.pvalue)
    assert "replicate" not in adata.uns["lava"]["params"]["differential"]  # None is left out
    assert adata.uns["lava"]["params"]["differential"]["statistic"] == "activity"


def test_within_none_tests_all_cells():
    adata = fabricate(effects={("M3", "PT", "AKI"): 2.0, ("M3", "TAL", "AKI"): 2.0, ("M3", "EC", "AKI"): 2.0})
    lv.tl.differential(adata, statistic="activity", within=None)
    table = result(adata)
    assert list(table.columns[:2]) == ["module", "group"] and (table["group"] == "all").all()
    assert len(table) == 3
    assert row(table, "M3", "all", "AKI", within="group")["qvalue"] < 0.05
    assert (table["n_cells_condition"] == 3 * 4 * 40).all()


def test_reference_choice(monkeypatch):
    logged = []
    monkeypatch.setattr(diff_module.logg, "warning", lambda msg, **kw: logged.append(msg))
    adata = fabricate(conditions=("AKI", "Healthy", "CKD"))
    lv.tl.differential(adata, statistic="activity")
    assert set(result(adata)["reference"]) == {"Healthy"} and set(result(adata)["condition"]) == {"AKI", "CKD"}
    assert not any("reference" in m for m in logged)
    adata = fabricate(conditions=("b_disease", "a_other"))
    adata.obs["condition"] = adata.obs["condition"].astype(str)  # not categorical: sorted levels
    lv.tl.differential(adata, statistic="activity")
    assert set(result(adata)["reference"]) == {"a_other"}
    assert any("first level 'a_other'" in m for m in logged)
    lv.tl.differential(adata, statistic="activity", reference="b_disease")
    table = result(adata)
    assert set(table["reference"]) == {"b_disease"} and set(table["condition"]) == {"a_other"}


# --- cells as units: the effective size the localities allow --------------------------------


def membership_of(locality: np.ndarray, n_localities: int | None = None) -> sp.csr_matrix:
    """Cells x localities membership with each cell in the one locality ``locality[i]``."""
    n = int(locality.max()) + 1 if n_localities is None else n_localities
    return sp.csr_matrix((np.ones(len(locality)), (np.arange(len(locality)), locality)), shape=(len(locality), n))


def few_localities() -> tuple[ad.AnnData, dict]:
    """106 AKI PT cells in 3 localities (40, 36, 30 of their cells) and 106 reference PT cells in 3 (35, 35, 36).

    Localities have 40 cells each, as LAVA's have ``n_cells`` each; the rest are cells of another type.
    As in LAVA a cell's activity is the mean of its localities' activity, here its one locality's.
    M1-M3 are active only in the first AKI locality (at 0.3, 1.0 and 2.5); M4 is up in all three
    AKI localities.
    """
    sizes = {"AKI": [40, 36, 30], "reference": [35, 35, 36]}
    locality, condition, cell_type = [], [], []
    for side, counts in sizes.items():
        for w in counts:
            locality += [len(locality) // 40] * 40
            condition += [side] * 40
            cell_type += ["PT"] * w + ["other"] * (40 - w)
    locality = np.asarray(locality)
    loc_act = np.zeros((6, 4))
    loc_act[0, :3] = [0.3, 1.0, 2.5]
    loc_act[:, 3] = [1.0, 1.1, 0.9, 0.05, -0.05, 0.0]
    obs = pd.DataFrame({"condition": condition, "cell_type": cell_type}, index=[f"c{i}" for i in range(len(locality))])
    adata = ad.AnnData(np.zeros((len(obs), 1), dtype=np.float32), obs=obs)
    names = ["M1", "M2", "M3", "M4"]
    adata.obsm["lava_activity"] = pd.DataFrame(loc_act[locality], index=adata.obs_names, columns=names)
    adata.obsm["lava_localities"] = membership_of(locality)
    adata.uns["lava"] = {"locality_activity": pd.DataFrame(loc_act, columns=names)}
    return adata, {"sizes": sizes, "loc_act": loc_act}


def test_few_localities_give_few_effective_units():
    adata, truth = few_localities()
    lv.tl.differential(adata, replicate=None, min_cells=5)
    table = result(adata)
    table = table[table["cell_type"] == "PT"].set_index("module")
    print(table[["n_condition", "n_eff_condition", "n_eff_reference", "effect", "statistic", "pvalue"]].to_string())
    kish = {side: sum(w) ** 2 / sum(wi**2 for wi in w) for side, w in truth["sizes"].items()}
    np.testing.assert_allclose(table["n_eff_condition"], kish["AKI"])  # 2.96, not 106 cells
    np.testing.assert_allclose(table["n_eff_reference"], kish["reference"])
    assert (table["n_condition"] == 106).all()
    # the old test (cells as independent units) made M1-M3 identical and confident ...
    old = plain_cell_welch(adata, table.reset_index())
    pt, aki = (adata.obs["cell_type"] == "PT").to_numpy(), (adata.obs["condition"] == "AKI").to_numpy()
    act = adata.obsm["lava_activity"].to_numpy()
    t_old = stats.ttest_ind(act[pt & aki], act[pt & ~aki], equal_var=False).statistic
    np.testing.assert_allclose(t_old[:3], t_old[0])  # identical by construction: one locality, any scale
    assert t_old[0] > 7 and (old[:3] < 1e-8).all()
    # ... each side now holds ~3 units: one locality no longer carries a confident call
    t_new = table["statistic"].to_numpy()
    assert (table.loc[["M1", "M2", "M3"], "pvalue"] > 0.2).all()
    assert (np.abs(t_new[:3]) < np.abs(t_old[:3]) / 5).all()
    # a change that all three AKI localities agree on stays significant
    assert table.loc["M4", "pvalue"] < 0.01 and table.loc["M4", "note"] == ""


def test_few_localities_is_the_weighted_welch_test_of_the_localities():
    adata, truth = few_localities()
    lv.tl.differential(adata, replicate=None, min_cells=5, min_effect=0.2, moderated=False)
    table = result(adata)
    table = table[table["cell_type"] == "PT"].set_index("module")
    w = {side: np.asarray(v, dtype=float) for side, v in truth["sizes"].items()}
    a = {"AKI": truth["loc_act"][:3], "reference": truth["loc_act"][3:]}
    for j, module in enumerate(["M1", "M2", "M3", "M4"]):
        mean, var, n = {}, {}, {}
        for side in ("AKI", "reference"):  # localities as units, each weighted by its share of the side's cells
            v = w[side] / w[side].sum()
            mean[side] = v @ a[side][:, j]
            n[side] = 1 / (v**2).sum()
            var[side] = v @ (a[side][:, j] - mean[side]) ** 2 / (1 - (v**2).sum())  # unbiased, reliability weights
        vx, vy = var["AKI"] / n["AKI"], var["reference"] / n["reference"]
        d, se = mean["AKI"] - mean["reference"], np.sqrt(vx + vy)
        df = (vx + vy) ** 2 / (vx**2 / (n["AKI"] - 1) + vy**2 / (n["reference"] - 1))
        row_ = table.loc[module]
        assert row_["effect"] == pytest.approx(d)
        assert row_["statistic"] == pytest.approx(d / se)
        assert row_["pvalue"] == pytest.approx(
            stats.t.sf((abs(d) - 0.2) / se, df) + stats.t.sf((abs(d) + 0.2) / se, df)
        )


def test_every_cell_its_own_locality_is_plain_welch():
    adata = fabricate(effects={("M1", "PT", "AKI"): 0.5})
    adata.obsm["lava_localities"] = sp.identity(adata.n_obs, format="csr")
    lv.tl.differential(adata, replicate=None, moderated=False)
    table = result(adata)
    assert table["n_eff_condition"].tolist() == pytest.approx([160] * len(table))
    assert table["n_eff_reference"].tolist() == pytest.approx([160] * len(table))
    act, ct, cond = adata.obsm["lava_activity"], adata.obs["cell_type"], adata.obs["condition"]
    for _, r in table.iterrows():
        values = act[r["module"]].to_numpy()
        x = values[((ct == r["cell_type"]) & (cond == "AKI")).to_numpy()]
        y = values[((ct == r["cell_type"]) & (cond == "reference")).to_numpy()]
        expected = stats.ttest_ind(x, y, equal_var=False)
        assert r["statistic"] == pytest.approx(expected.statistic) and r["pvalue"] == pytest.approx(expected.pvalue)
    # many small localities: disjoint pairs of cells (activity their pair's mean) give n_eff = cells / 2
    pairs = np.arange(adata.n_obs) // 2
    adata.obsm["lava_localities"] = membership_of(pairs)
    adata.obsm["lava_activity"] = adata.obsm["lava_activity"].groupby(pairs).transform("mean").set_axis(adata.obs_names)
    lv.tl.differential(adata, replicate=None)
    np.testing.assert_allclose(result(adata)[["n_eff_condition", "n_eff_reference"]], 80.0)


def brute_force_n_eff(reads: np.ndarray, membership: np.ndarray, cells: np.ndarray) -> float:
    """n_eff = mean |c_i|^2 / |mean c_i|^2 with c_ij = sum_l P_il M_jl / s_l, from dense matrices."""
    p = reads / reads.sum(axis=1, keepdims=True)
    c = p @ (membership / membership.sum(axis=0)).T
    u = c[cells].mean(axis=0)
    return float((c[cells] ** 2).sum(axis=1).mean() / (u @ u))


def test_n_eff_is_its_definition_on_overlapping_localities(monkeypatch):
    """Random overlapping localities of a 2-D embedding, some cells in none (nearest probe's locality)."""
    rng = np.random.default_rng(5)
    n, n_loc = 300, 24
    xy = rng.uniform(0, 10, (n, 2))
    probes = rng.uniform(0, 10, (n_loc, 2))
    dist = np.linalg.norm(xy[:, None] - probes[None], axis=2)
    member = dist < 1.6  # overlapping discs
    uncovered = ~member.any(axis=1)
    assert uncovered.sum() >= 3 and (member.sum(axis=1) >= 2).sum() > 50
    obs = pd.DataFrame({"condition": rng.choice(["reference", "AKI"], n)}, index=[f"c{i}" for i in range(n)])
    adata = ad.AnnData(np.zeros((n, 1), dtype=np.float32), obs=obs)
    adata.obsm["X_umap"] = xy
    adata.obsm["lava_localities"] = sp.csr_matrix(member.astype(np.float32))
    adata.obsm["lava_activity"] = pd.DataFrame(rng.normal(size=(n, 2)), index=adata.obs_names, columns=["M1", "M2"])
    adata.uns["lava"] = {"probes": probes, "params": {"localities": {"basis": "X_umap"}}}
    reads = member.astype(float)
    reads[uncovered, dist[uncovered].argmin(axis=1)] = 1.0  # as tl.modules: the nearest probe's locality
    lv.tl.differential(adata, replicate=None, within=None)
    table = result(adata)
    for side, level in (("condition", "AKI"), ("reference", "reference")):
        cells = np.flatnonzero(obs["condition"] == level)
        expected = brute_force_n_eff(reads, member.astype(float), cells)
        assert table[f"n_eff_{side}"].iloc[0] == pytest.approx(expected)
        assert 1 <= expected < len(cells) / 3  # overlapping localities: far fewer units than cells
    # without probes a cell in no locality counts as its own unit
    logged = []
    monkeypatch.setattr(diff_module.logg, "warning", lambda msg, **kw: logged.append(msg))
    del adata.uns["lava"]["probes"]
    lv.tl.differential(adata, replicate=None, within=None)
    alone = np.c_[member, np.eye(n)[:, uncovered]].astype(float)
    cells = np.flatnonzero(obs["condition"] == "AKI")
    assert result(adata)["n_eff_condition"].iloc[0] == pytest.approx(brute_force_n_eff(alone, alone, cells))
    assert any(f"{uncovered.sum()} cell(s) in no locality" in m for m in logged)
    assert any("effective size" in m and "localities" in m for m in logged)


def test_cells_as_units_are_calibrated_on_smoothed_noise():
    """No condition effect: independent per-cell noise smoothed through overlapping localities, as LAVA does.

    1,200 cells on a line, 60 localities of 60 cells (overlap 3). In type A the conditions are two
    regions; in type B they are interleaved (both sides share every locality). 1,000 null datasets as
    1,000 modules of one call.
    """
    rng = np.random.default_rng(0)
    n, size, n_loc, n_null = 1200, 60, 60, 1000
    x = np.sort(rng.uniform(0, 100, n))
    rows = np.concatenate([np.argsort(np.abs(x - c))[:size] for c in np.linspace(0, 100, n_loc)])
    member = sp.csr_matrix((np.ones(len(rows)), (rows, np.repeat(np.arange(n_loc), size))), shape=(n, n_loc))
    z = rng.normal(size=(n, n_null)) ** 2  # skewed per-cell contributions
    loc_act = (member.T @ z) / size
    act = (member @ loc_act) / np.asarray(member.sum(axis=1))
    cell_type = np.where(x < 50, "A", "B")
    condition = np.where(cell_type == "A", np.where(x < 25, "AKI", "reference"), rng.choice(["AKI", "reference"], n))
    obs = pd.DataFrame({"condition": condition, "cell_type": cell_type}, index=[f"c{i}" for i in range(n)])
    adata = ad.AnnData(np.zeros((n, 1), dtype=np.float32), obs=obs)
    names = [f"M{i + 1}" for i in range(n_null)]
    adata.obsm["lava_activity"] = pd.DataFrame(act, index=adata.obs_names, columns=names)
    adata.obsm["lava_localities"] = member
    lv.tl.differential(adata, replicate=None)
    table = result(adata)
    rate = table.groupby("cell_type")["pvalue"].apply(lambda p: float((p < 0.05).mean()))
    n_eff = table.groupby("cell_type")[["n_eff_condition", "n_eff_reference"]].first()
    old = {t: plain_cell_welch(adata, table[table["cell_type"] == t].iloc[:200]) for t in ("A", "B")}
    print(f"\nfalse-positive rate at 0.05: {rate.to_dict()}; n_eff:\n{n_eff}")
    print({t: float((p < 0.05).mean()) for t, p in old.items()}, "(cells as independent units)")
    assert np.isfinite(table["pvalue"]).all()
    assert (rate <= 0.06).all()
    assert (n_eff.loc["A"] < 10).all()  # ~300 cells per side, localities of 60 cells
    assert (old["A"] < 0.05).mean() > 0.5


def test_donor_results_do_not_depend_on_the_localities():
    adata = fabricate(effects={("M1", "PT", "AKI"): 1.0}, n_donors=5)
    lv.tl.differential(adata, statistic="activity")
    without = result(adata).copy()
    adata.obsm["lava_localities"] = membership_of(np.arange(adata.n_obs) // 50)  # coarse localities
    lv.tl.differential(adata, statistic="activity")
    pd.testing.assert_frame_equal(result(adata), without)
    assert (without["n_eff_condition"] == without["n_condition"]).all()
    assert (without["n_eff_reference"] == without["n_reference"]).all()


# --- bad input ---------------------------------------------------------------------------------


def test_nested_replicates_required():
    adata = fabricate()
    adata.obs["donor"] = adata.obs["donor"].astype(str).str.replace("AKI_d0", "reference_d0").astype("category")
    with pytest.raises(ValueError, match=r"Replicates must be nested in conditions.*reference_d0"):
        lv.tl.differential(adata, statistic="activity")


@pytest.mark.parametrize(
    ("kwargs", "column", "argument"),
    [
        ({"groupby": "disease"}, "disease", "groupby"),
        ({"replicate": "patient"}, "patient", "replicate"),
        ({"within": "celltype"}, "celltype", "within"),
    ],
)
def test_missing_obs_column(kwargs, column, argument):
    with pytest.raises(
        KeyError, match=rf"'{column}' \(`{argument}`\) not found in adata.obs \(available: \['condition'"
    ):
        lv.tl.differential(fabricate(), **kwargs)


def test_bad_input():
    adata = fabricate()
    with pytest.raises(ValueError, match=r"Reference 'control' is not a level.*\['reference', 'AKI'\]"):
        lv.tl.differential(adata, statistic="activity", reference="control")
    bare = adata.copy()
    del bare.obsm["lava_activity"]
    with pytest.raises(KeyError, match=r"run lava_sc\.tl\.modules\(adata, key='lava'\) first"):
        lv.tl.differential(bare, statistic="activity")
    with pytest.raises(KeyError, match=r"key 'other'"):
        lv.tl.differential(adata, statistic="activity", key="other")
    nan = adata.copy()
    nan.obs.loc[nan.obs_names[:3], "condition"] = np.nan
    with pytest.raises(ValueError, match=r"obs\['condition'\] has no value \(NaN\) for 3 cells"):
        lv.tl.differential(nan, statistic="activity")
    nan = adata.copy()
    nan.obs.loc[nan.obs_names[:2], "donor"] = np.nan
    with pytest.raises(ValueError, match=r"obs\['donor'\] has no value"):
        lv.tl.differential(nan, statistic="activity")
    with pytest.raises(ValueError, match="must be different columns"):
        lv.tl.differential(adata, statistic="activity", within="condition")
    with pytest.raises(ValueError, match="at least two conditions"):
        lv.tl.differential(adata[adata.obs["condition"] == "AKI"].copy(), statistic="activity")
    with pytest.raises(ValueError, match="`min_cells` must be >= 1"):
        lv.tl.differential(adata, statistic="activity", min_cells=0)
    with pytest.raises(TypeError, match="AnnData"):
        lv.tl.differential(adata.obs)
    bad = adata.copy()
    bad.obsm["lava_activity"].iloc[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        lv.tl.differential(bad, statistic="activity")


def test_copy_leaves_input_untouched():
    adata = fabricate()
    before = adata.obsm["lava_activity"].copy()
    obs_before = adata.obs.copy()
    out = lv.tl.differential(adata, statistic="activity", copy=True)
    assert "lava" not in adata.uns
    assert out is not adata and "differential" in out.uns["lava"]
    pd.testing.assert_frame_equal(adata.obsm["lava_activity"], before)
    pd.testing.assert_frame_equal(adata.obs, obs_before)
    assert lv.tl.differential(adata, statistic="activity") is None and "differential" in adata.uns["lava"]
    pd.testing.assert_frame_equal(result(adata), result(out))


@pytest.mark.parametrize("fmt", ["h5ad", "zarr"])
def test_round_trip(tmp_path, fmt):
    adata = fabricate(conditions=("reference", "AKI", "CKD"))
    drop = (adata.obs["cell_type"] == "EC") & (adata.obs["donor"].isin(["AKI_d0", "AKI_d1", "AKI_d2"]))
    adata = adata[~drop.to_numpy()].copy()  # NaN p-values and notes must survive too
    lv.tl.differential(adata, statistic="activity")
    path = tmp_path / f"adata.{fmt}"
    if fmt == "h5ad":
        adata.write_h5ad(path)
        back = ad.read_h5ad(path)
    else:
        adata.write_zarr(path)
        back = ad.read_zarr(path)
    pd.testing.assert_frame_equal(result(back), result(adata))
    assert back.uns["lava"]["params"]["differential"] == adata.uns["lava"]["params"]["differential"]
    pd.testing.assert_frame_equal(lv.get.differential(back), lv.get.differential(adata))


# --- calibration -------------------------------------------------------------------------------


def test_donor_level_test_is_calibrated_and_cells_are_not():
    """No condition effect, real donor-to-donor variation: donors keep the false-positive rate at alpha."""
    n_datasets, alpha = 200, 0.05
    adata = fabricate(cell_types=("PT", "TAL"), n_donors=4, n_cells=100, n_modules=3)
    unit = (adata.obs["donor"].astype(str) + "|" + adata.obs["cell_type"].astype(str)).to_numpy()
    units, inverse = np.unique(unit, return_inverse=True)
    rng = np.random.default_rng(2024)
    donor_p, cell_p = [], []
    for _ in range(n_datasets):
        donor_effect = rng.normal(scale=0.5, size=(len(units), 3))  # same distribution in both conditions
        act = donor_effect[inverse] + rng.normal(scale=1.0, size=(adata.n_obs, 3))
        adata.obsm["lava_activity"] = pd.DataFrame(act, index=adata.obs_names, columns=["M1", "M2", "M3"])
        lv.tl.differential(adata, statistic="activity")
        donor_p.append(result(adata)["pvalue"].to_numpy())
        lv.tl.differential(adata, replicate=None)
        cell_p.append(result(adata)["pvalue"].to_numpy())
    donor_p, cell_p = np.concatenate(donor_p), np.concatenate(cell_p)
    donor_rate, cell_rate = float((donor_p < alpha).mean()), float((cell_p < alpha).mean())
    print(
        f"\nfalse-positive rate at alpha={alpha} over {len(donor_p)} tests ({n_datasets} datasets): "
        f"donors {donor_rate:.3f}, cells as replicates {cell_rate:.3f}"
    )
    assert np.isfinite(donor_p).all() and len(donor_p) == n_datasets * 3 * 2
    assert 0.02 <= donor_rate <= 0.08
    assert cell_rate > 0.4  # far above nominal: donor variation read as a condition effect


# --- on real LAVA results ----------------------------------------------------------------------


try:
    from lava_sc.datasets import simulate_kidney
except ImportError:  # not exported yet
    from lava_sc.datasets._kidney import simulate_kidney


@pytest.fixture(scope="module")
def planted():
    """LAVA run once on simulate_planted (no donors: each test assigns its own)."""
    adata = lv.datasets.simulate_planted(n_cells=2000, random_state=0)
    lv.tl.modules(adata, random_state=0)
    return adata


def best_module(adata, genes) -> str:
    """The LAVA module with the best Jaccard overlap with ``genes``."""
    table = lv.get.module_genes(adata)
    sets = {m: set(g["gene"]) for m, g in table.groupby("module", observed=True)}
    genes = set(genes)
    return max(sets, key=lambda m: len(genes & sets[m]) / len(genes | sets[m]))


def nested_donors(adata, n_donors: int, rng) -> pd.Series:
    """Fabricated donors nested in obs['condition'], cells assigned at random."""
    code = pd.Series(rng.integers(0, n_donors, adata.n_obs), index=adata.obs_names).astype(str)
    return (adata.obs["condition"].astype(str) + "_d" + code).astype("category")


def hand_donor_r(adata, module: str, cells: np.ndarray) -> float:
    """Weighted mean Pearson r of a module's pairs among ``cells``, detection rule of tl.modules."""
    table = lv.get.modules(adata)
    table = table[table["module"] == module]
    x = adata.X.toarray()
    floor = x.min(axis=0)
    idx = adata.var_names.get_indexer
    a, b = idx(table["gene_a"]), idx(table["gene_b"])
    block = x[cells]
    detected = (block > floor).mean(axis=0) >= 0.1
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.array([np.corrcoef(block[:, i], block[:, j])[0, 1] for i, j in zip(a, b, strict=True)])
    r = np.where(np.isfinite(r) & detected[a] & detected[b], r, 0.0)
    return float(np.average(r, weights=table["weight"]))


def test_correlation_is_recomputed_from_each_donors_cells(planted):
    adata = planted.copy()
    adata.obs["donor"] = nested_donors(adata, 3, np.random.default_rng(0))
    lv.tl.differential(adata)
    table = result(adata)
    assert (table["measure"] == "correlation").all() and (table["unit"] == "donor").all()
    assert adata.uns["lava"]["params"]["differential"]["statistic"] == "correlation"
    module = best_module(adata, adata.uns["planted"]["disease_T4"])
    hit = row(table, module, "T4", "disease")
    values = []
    for d in range(3):
        cells = np.flatnonzero((adata.obs["donor"] == f"disease_d{d}") & (adata.obs["cell_type"] == "T4"))
        values.append(hand_donor_r(adata, module, cells))
    assert hit["mean_condition"] == pytest.approx(np.mean(values), abs=1e-5)
    assert hit["n_condition"] == 3 and hit["n_cells_condition"] == int(
        ((adata.obs["condition"] == "disease") & (adata.obs["cell_type"] == "T4")).sum()
    )


def test_correlation_uses_the_locality_rule_of_modules(planted):
    # the kernel with localities as the cell sets gives back tl.modules' locality activity
    from lava_sc._core.score import module_set_activity

    pairs = diff_module._module_pairs(planted, "lava")
    used = pd.Index(np.unique(np.r_[pairs.gene_a, pairs.gene_b]))
    act = module_set_activity(
        planted[:, used].X,
        planted.obsm["lava_localities"].tocsc(),
        used.get_indexer(pairs.gene_a),
        used.get_indexer(pairs.gene_b),
        pairs.module,
        pairs.weight,
        len(pairs.names),
        min_detected=float(planted.uns["lava"]["params"]["correlations"]["min_detected"]),
    )
    np.testing.assert_allclose(act, planted.uns["lava"]["locality_activity"].to_numpy(), atol=1e-6)


def test_partial_out_recorded_by_correlations_is_used(planted):
    adata = planted.copy()
    adata.obs["donor"] = nested_donors(adata, 3, np.random.default_rng(0))
    lv.tl.differential(adata)
    plain = result(adata)["mean_condition"].to_numpy()
    adata.uns["lava"]["params"]["correlations"]["partial_out"] = "X_umap"
    adata.uns["lava"]["params"]["correlations"]["n_partial_components"] = 2
    lv.tl.differential(adata)
    partial = result(adata)["mean_condition"].to_numpy()
    assert not np.allclose(partial, plain)
    # partial r within a donor = r of the residuals on (1, X_umap)
    module = best_module(adata, adata.uns["planted"]["disease_T4"])
    hit = row(result(adata), module, "T4", "disease")
    resid = adata.copy()
    x = resid.X.toarray().astype(np.float64)
    values = []
    for d in range(3):
        cells = np.flatnonzero((adata.obs["donor"] == f"disease_d{d}") & (adata.obs["cell_type"] == "T4"))
        design = np.c_[np.ones(len(cells)), adata.obsm["X_umap"][cells]]
        r = x[cells] - design @ np.linalg.lstsq(design, x[cells], rcond=None)[0]
        table = lv.get.modules(adata)
        table = table[table["module"] == module]
        idx = adata.var_names.get_indexer
        a, b = idx(table["gene_a"]), idx(table["gene_b"])
        detected = (x[cells] > x.min(axis=0)).mean(axis=0) >= 0.1
        rr = np.array([np.corrcoef(r[:, i], r[:, j])[0, 1] for i, j in zip(a, b, strict=True)])
        rr = np.where(detected[a] & detected[b], rr, 0.0)
        values.append(np.average(rr, weights=table["weight"]))
    assert hit["mean_condition"] == pytest.approx(np.mean(values), abs=1e-5)


def test_dask_expression_gives_the_same_result(planted):
    da = pytest.importorskip("dask.array")
    adata = planted.copy()
    adata.obs["donor"] = nested_donors(adata, 3, np.random.default_rng(0))
    lv.tl.differential(adata)
    expected = result(adata).copy()
    adata.X = da.from_array(adata.X.toarray(), chunks=(500, -1))
    lv.tl.differential(adata)
    pd.testing.assert_frame_equal(result(adata), expected, atol=1e-6)


def test_planted_programs_in_exactly_their_cell_types(planted):
    """simulate_planted: `shared` is active in disease cells of T0 and T2, `disease_T4` in those of T4."""
    adata = planted.copy()
    adata.obs["donor"] = nested_donors(adata, 6, np.random.default_rng(0))
    expected = {"shared": {"T0", "T2"}, "disease_T4": {"T4"}}
    lv.tl.differential(adata)
    table = result(adata)
    for program, types in expected.items():
        module = best_module(adata, adata.uns["planted"][program])
        sub = table[table["module"] == module].set_index("cell_type")
        print(f"\n{program} ({module}), statistic='correlation':")
        print(sub[["n_condition", "n_reference", "effect", "pvalue", "qvalue"]].to_string())
        significant = set(sub.index[sub["qvalue"] < 0.05])
        assert significant == types and (sub.loc[list(types), "effect"] > 0.2).all()
    n_corr = int((table["qvalue"] < 0.05).sum())
    lv.tl.differential(adata, statistic="activity")
    n_act = int((result(adata)["qvalue"] < 0.05).sum())
    print(f"significant rows of {len(table)}: correlation {n_corr}, activity {n_act} (3 planted)")


@pytest.fixture(scope="module")
def kidney():
    adata = simulate_kidney(n_cells=4000, n_donors=6, umap=False, random_state=0)
    lv.tl.modules(adata, random_state=0)
    return adata


def test_planted_disease_program_on_simulated_kidney(kidney):
    """Injury is planted in PT and TAL of AKI and CKD donors: significant there, nowhere else.

    Fibroblasts have 2 reference donors with enough cells. There plain Welch (``moderated=False``)
    trusts a variance with one degree of freedom and called an unplanted change of the homeostatic
    module's correlation of -0.05 (p 0.002, q 0.03); the moderated variances do not."""
    adata = kidney.copy()
    lv.tl.differential(adata, "condition", reference="reference", replicate="donor", within="cell_type")
    table = result(adata)
    cols = ["module", "cell_type", "condition", "n_condition", "n_reference", "effect", "pvalue", "qvalue", "note"]
    planted = adata.uns["planted"]
    for program in ("injury", "homeostatic", "fibrosis"):  # the condition-specific programs
        spec = planted[program]
        module = best_module(adata, spec["genes"])
        sub = table[table["module"] == module]
        print(f"\n{program} ({module}):\n{sub[cols].to_string()}")
        ref_active = "reference" in set(spec["conditions"])
        differs = sub["cell_type"].isin(spec["cell_types"]) & (sub["condition"].isin(spec["conditions"]) != ref_active)
        significant = sub["qvalue"] < 0.05
        assert (significant == differs).all()  # called where planted, never where nothing was planted
        assert (sub.loc[differs, "effect"].abs() > 0.2).all()
        if program == "injury":  # the disease program: in every planted cell type and condition
            assert differs.sum() == 4
    hits = table[table["qvalue"] < 0.05]
    print(f"\nall significant rows (correlation):\n{hits[cols[:3] + ['effect', 'qvalue']].to_string()}")
    lv.tl.differential(adata, "condition", reference="reference", statistic="activity")
    print(f"activity: {int((result(adata)['qvalue'] < 0.05).sum())} of {len(table)} rows significant")


def test_correlation_round_trip(planted, tmp_path):
    adata = planted.copy()
    adata.obs["donor"] = nested_donors(adata, 3, np.random.default_rng(0))
    lv.tl.differential(adata, min_cells=60)  # some donor groups dropped: notes survive too
    assert result(adata)["note"].str.contains("dropped").any()
    adata.write_h5ad(tmp_path / "adata.h5ad")
    back = ad.read_h5ad(tmp_path / "adata.h5ad")
    pd.testing.assert_frame_equal(result(back), result(adata))
    assert back.uns["lava"]["params"]["differential"] == adata.uns["lava"]["params"]["differential"]
    lv.tl.differential(back, min_cells=60)  # recomputed from the read-back file: same result
    pd.testing.assert_frame_equal(result(back), result(adata))


def test_bad_statistic(planted):
    adata = planted.copy()
    adata.obs["donor"] = nested_donors(adata, 3, np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"`statistic` must be one of \['correlation', 'activity'\]"):
        lv.tl.differential(adata, statistic="mean")
    with pytest.raises(
        ValueError, match=r"replicate=None.*Pass `replicate=` \(e\.g\. 'donor'\), or statistic='activity'"
    ):
        lv.tl.differential(adata, replicate=None, statistic="correlation")
    with pytest.raises(ValueError, match=r"at least 3 cells per replicate-group.*min_cells=2"):
        lv.tl.differential(adata, min_cells=2)
    lv.tl.differential(adata, replicate=None)  # no replicates: cells' activity, the only choice
    assert (result(adata)["measure"] == "activity").all() and (result(adata)["unit"] == "cells").all()
    fabricated = fabricate()  # activity only, no modules or expression
    with pytest.raises(KeyError, match=r"No LAVA modules.*run lava_sc\.tl\.modules.*or pass statistic='activity'"):
        lv.tl.differential(fabricated)
    fewer_genes = adata[:, adata.var_names != lv.get.modules(adata)["gene_a"].iloc[0]].copy()
    with pytest.raises(KeyError, match=r"gene\(s\) of the LAVA modules are not in adata.var_names"):
        lv.tl.differential(fewer_genes)
    lv.tl.differential(fewer_genes, statistic="activity")  # activity needs no genes
    empty = adata.copy()
    empty.uns["lava"]["modules"] = empty.uns["lava"]["modules"].iloc[:0]
    with pytest.raises(ValueError, match="found no modules"):
        lv.tl.differential(empty)


# --- calibration on LAVA results ---------------------------------------------------------------


def test_correlation_is_calibrated_over_donor_relabellings(planted):
    """Donors and conditions independent of everything: random donor -> condition labels, 6 vs 6."""
    n_relabel, n_donors, alpha = 200, 12, 0.05
    rng = np.random.default_rng(7)
    donor = rng.integers(0, n_donors, planted.n_obs)
    group, groups = design.labels(planted, "cell_type")
    units = design.units_of(np.zeros(planted.n_obs, dtype=np.int64), group, donor)
    unit_donor = np.rint(units["members"] @ donor / units["n_cells"]).astype(np.int64)  # each unit's donor
    names, act = diff_module._activity(planted, "lava")
    pairs = diff_module._module_pairs(planted, "lava")
    values = {
        "correlation": diff_module._replicate_correlations(planted, "lava", pairs, units, 10),
        "activity": design.mean_activity(act, units),
    }
    pvalues = {k: [] for k in values}
    for _ in range(n_relabel):
        labels = rng.permutation(np.repeat([0, 1], n_donors // 2))
        relabelled = {**units, "condition": labels[unit_donor]}
        for k, v in values.items():
            rows, _ = diff_stats.comparison_rows(
                {**relabelled, "values": v}, groups, ["A", "B"], "A", names, 10, "donor", 0.0
            )
            pvalues[k].append([r["pvalue"] for r in rows])
    rate = {k: float((np.asarray(p) < alpha).mean()) for k, p in pvalues.items()}
    n_tests = np.asarray(pvalues["correlation"]).size
    print(f"\nfalse-positive rate at alpha={alpha}, {n_relabel} relabellings ({n_tests} tests): {rate}")
    assert np.isfinite(pvalues["correlation"]).all()
    assert 0.02 <= rate["correlation"] <= 0.08


def test_correlation_is_calibrated_over_seeds(planted):
    """Real simulated conditions, fresh data per seed, cell types where the condition changes nothing.

    In simulate_planted the condition moves T1 and T3 cells on the embedding but leaves their
    expression unchanged; LAVA's modules (found once) are tested there on 100 new datasets.
    """
    n_seeds, alpha = 100, 0.05
    null_types = ["T1", "T3"]
    lava = {"modules": planted.uns["lava"]["modules"], "params": planted.uns["lava"]["params"]}
    rng = np.random.default_rng(11)
    p_corr = []
    for seed in range(1, n_seeds + 1):
        adata = lv.datasets.simulate_planted(n_cells=1500, random_state=seed)
        adata.uns["lava"] = dict(lava)
        adata.obs["donor"] = nested_donors(adata, 6, rng)
        lv.tl.differential(adata, reference="control")
        table = result(adata)
        p_corr.append(table.loc[table["cell_type"].isin(null_types), "pvalue"].to_numpy())
    # the smoothed activity of the one LAVA run, with donors redrawn as often
    adata = planted.copy()
    p_act = []
    for _ in range(n_seeds):
        adata.obs["donor"] = nested_donors(adata, 6, rng)
        lv.tl.differential(adata, reference="control", statistic="activity")
        table = result(adata)
        p_act.append(table.loc[table["cell_type"].isin(null_types), "pvalue"].to_numpy())
    p_corr, p_act = np.concatenate(p_corr), np.concatenate(p_act)
    rate_corr, rate_act = float((p_corr < alpha).mean()), float((p_act < alpha).mean())
    print(
        f"\nfalse-positive rate at alpha={alpha} in {null_types} over {n_seeds} seeds ({len(p_corr)} tests): "
        f"correlation {rate_corr:.3f}; activity (one LAVA run, donors redrawn) {rate_act:.3f}"
    )
    assert np.isfinite(p_corr).all()
    assert rate_corr <= 0.08


def test_no_variance_is_not_tested():
    obs = pd.DataFrame(
        {
            "condition": ["control"] * 20 + ["AKI"] * 20,
            "donor": [f"c{i % 2}" for i in range(20)] + [f"a{i % 2}" for i in range(20)],
            "cell_type": "PT",
        },
        index=[f"c{i}" for i in range(40)],
    )
    adata = ad.AnnData(np.zeros((40, 1), dtype=np.float32), obs=obs)
    act = np.c_[np.r_[np.ones(20), 2 * np.ones(20)], np.arange(40.0)]  # M1 constant within each condition
    adata.obsm["lava_activity"] = pd.DataFrame(act, index=adata.obs_names, columns=["M1", "M2"])
    lv.tl.differential(adata, statistic="activity", min_cells=5)
    table = result(adata)
    m1, m2 = row(table, "M1", "PT", "AKI"), row(table, "M2", "PT", "AKI")
    assert m1["effect"] == 1.0 and np.isnan(m1["pvalue"]) and np.isnan(m1["statistic"]) and np.isnan(m1["qvalue"])
    assert m1["note"] == "not tested: no variance within either side"
    assert m2["pvalue"] < 0.01 and m2["qvalue"] == m2["pvalue"] and m2["note"] == ""


def plain_cell_welch(adata, table, min_effect=0.0) -> np.ndarray:
    """The p-values of the rows of ``table`` by Welch's test on the cells as independent units (the old test)."""
    act, ct = adata.obsm["lava_activity"], adata.obs["cell_type"].astype(str).to_numpy()
    cond = adata.obs["condition"].astype(str).to_numpy()
    out = []
    for _, r in table.iterrows():
        values = act[r["module"]].to_numpy()[:, None]
        side = [values[(ct == r["cell_type"]) & (cond == level)] for level in (r["condition"], r["reference"])]
        out.append(welch_treat(*side, min_effect)[1][0])
    return np.asarray(out)


def test_cells_as_units_groups_the_size_of_a_locality_are_not_tested(planted):
    """simulate_planted at default localities: 200 cells per condition and cell type, 200-cell localities.

    Each side is about one locality, so it holds about one independent unit (n_eff < 2) and is not
    tested. Welch on the cells as independent units called most rows, planted or not (the old result).
    """
    adata = planted.copy()
    assert adata.uns["lava"]["params"]["localities"]["n_cells"] == 200
    lv.tl.differential(adata, replicate=None)
    table = lv.get.differential(adata)
    print(table[["module", "cell_type", "n_condition", "n_eff_condition", "n_eff_reference", "effect"]].to_string())
    assert (table["n_condition"] == 200).all()
    assert table[["n_eff_condition", "n_eff_reference"]].to_numpy().max() < 2
    assert table[["n_eff_condition", "n_eff_reference"]].to_numpy().min() >= 1
    assert table["pvalue"].isna().all() and table["qvalue"].isna().all()
    assert table["note"].str.contains("allow fewer than 2 independent units").all()
    old = plain_cell_welch(adata, table)
    assert (old < 0.05).sum() >= 9  # pseudo-replicated: effects of 0.001 were 'significant'


@pytest.fixture(scope="module")
def planted_small_localities():
    """LAVA on 6000 simulate_planted cells with 100-cell localities: 600 cells per condition and cell type."""
    adata = lv.datasets.simulate_planted(n_cells=6000, random_state=0)
    lv.tl.localities(adata, n_cells=100, random_state=0)
    lv.tl.modules(adata, random_state=0)
    return adata


def test_cells_as_units_with_the_localities_effective_size(planted_small_localities):
    """Each side spans about six 100-cell localities: n_eff about 5, the planted changes (shared in T0 and T2,
    disease_T4 in T4) are exactly the rows with p < 0.05, and TREAT only raises p-values."""
    adata = planted_small_localities.copy()
    truth = {(best_module(adata, adata.uns["planted"]["shared"]), t) for t in ("T0", "T2")}
    truth.add((best_module(adata, adata.uns["planted"]["disease_T4"]), "T4"))
    pvalues = {}
    for min_effect in (0.0, 0.02):
        lv.tl.differential(adata, replicate=None, statistic="activity", min_effect=min_effect)
        table = lv.get.differential(adata)
        pvalues[min_effect] = table["pvalue"].to_numpy()
        assert adata.uns["lava"]["params"]["differential"]["min_effect"] == min_effect
    cols = ["module", "cell_type", "n_eff_condition", "n_eff_reference", "effect", "statistic", "pvalue"]
    print(table.assign(pvalue=pvalues[0.0])[cols].to_string())
    n_eff = table[["n_eff_condition", "n_eff_reference"]].to_numpy()
    assert (n_eff > 3.5).all() and (n_eff < 6.5).all()  # ~600 cells / 100-cell localities, not 600
    planted_rows = np.array([(m, t) in truth for m, t in zip(table["module"], table["cell_type"], strict=True)])
    assert np.isfinite(pvalues[0.0]).all()
    assert set(np.flatnonzero(pvalues[0.0] < 0.05)) == set(np.flatnonzero(planted_rows))
    assert (table.loc[planted_rows, "effect"] > 0.1).all()
    assert (pvalues[0.02] >= pvalues[0.0] - 1e-12).all()
    old = plain_cell_welch(adata, table)
    print(f"plain Welch on cells: {(old[~planted_rows] < 0.05).sum()} of {(~planted_rows).sum()} null rows p < 0.05")
    assert (old[~planted_rows] < 0.05).sum() >= 8  # the old test: most null rows 'significant'


def test_min_effect_zero_is_welch_and_positive_is_treat():
    rng = np.random.default_rng(3)
    x, y = rng.normal(0.3, 1.0, (12, 4)), rng.normal(0.0, 2.0, (9, 4))
    t0, p0 = welch_treat(x, y, 0.0)
    ref = stats.ttest_ind(x, y, equal_var=False)
    np.testing.assert_allclose(t0, ref.statistic)
    np.testing.assert_allclose(p0, ref.pvalue)
    t1, p1 = welch_treat(x, y, 0.25)
    np.testing.assert_array_equal(t1, t0)  # the statistic is still Welch's t
    for j in range(4):  # TREAT by hand: P(T > (|d| - delta) / se) + P(T > (|d| + delta) / se)
        vx, vy = x[:, j].var(ddof=1) / 12, y[:, j].var(ddof=1) / 9
        df = (vx + vy) ** 2 / (vx**2 / 11 + vy**2 / 8)
        d, se = abs(x[:, j].mean() - y[:, j].mean()), np.sqrt(vx + vy)
        assert p1[j] == pytest.approx(stats.t.sf((d - 0.25) / se, df) + stats.t.sf((d + 0.25) / se, df))
    assert (p1 > p0).all()  # a stricter null is harder to reject
    assert np.isnan(welch_treat(np.ones((3, 1)), np.ones((3, 1)), 0.1)[1]).all()  # no variance: not tested
    # effective sizes: variance from the rows (ddof 0) corrected to n_eff units, se and df on n_eff
    tn, pn = welch_treat(x, y, 0.25, n_eff=(3.5, 2.5))
    for j in range(4):
        vx, vy = x[:, j].var() / 2.5, y[:, j].var() / 1.5  # B / (n_eff - 1) = s^2 / n_eff
        df = (vx + vy) ** 2 / (vx**2 / 2.5 + vy**2 / 1.5)
        d, se = x[:, j].mean() - y[:, j].mean(), np.sqrt(vx + vy)
        assert tn[j] == pytest.approx(d / se)
        assert pn[j] == pytest.approx(stats.t.sf((abs(d) - 0.25) / se, df) + stats.t.sf((abs(d) + 0.25) / se, df))
    np.testing.assert_allclose(welch_treat(x, y, n_eff=(12, 9))[1], p0)  # n_eff = rows: plain Welch
    assert np.isnan(welch_treat(x, y, n_eff=(1.0, 9))[1]).all()  # one unit on a side: no test
