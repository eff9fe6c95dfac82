"""Tests for :func:`lava_sc.datasets.recovery`: matching LAVA modules to planted programs."""

from __future__ import annotations

import anndata
import numpy as np
import pandas as pd
import pytest

from lava_sc.datasets import recovery, simulate_atlas
from lava_sc.datasets._recovery import UNMATCHED_BELOW

N_CELLS = 8
GENES = [f"g{i}" for i in range(13)]
# p1 active in the first half of the cells, p2 in every other cell
ACTIVE_P1 = np.arange(N_CELLS) < 4
ACTIVE_P2 = np.arange(N_CELLS) % 2 == 0
MODULES = {
    "M1": ["g0", "g1", "g2"],  # p1 = g0..g3: Jaccard 3/4
    "M2": ["g4", "g5", "g6", "g7"],  # p2 = g4, g5: Jaccard 2/4
    "M3": ["g8", "g9"],  # nothing planted: unmatched
    "M4": ["g3", "g9", "g10", "g11", "g12"],  # 1/8 with p1: below 0.2, unmatched
}


def _module_genes(modules: dict[str, list[str]]) -> pd.DataFrame:
    rows = [(m, g, 1.0) for m, genes in modules.items() for g in genes]
    table = pd.DataFrame(rows, columns=["module", "gene", "score"])
    table["module"] = pd.Categorical(table["module"], categories=list(modules))
    return table


def _toy(planted=None, *, activity=True, key: str = "lava") -> anndata.AnnData:
    obs = pd.DataFrame({"active_p1": ACTIVE_P1, "active_p2": ACTIVE_P2}, index=[f"c{i}" for i in range(N_CELLS)])
    adata = anndata.AnnData(X=np.zeros((N_CELLS, len(GENES)), dtype=np.float32), obs=obs)
    adata.var_names = GENES
    if planted is None:
        planted = {"p1": np.array(["g0", "g1", "g2", "g3"]), "p2": np.array(["g4", "g5"])}
    adata.uns["planted"] = planted
    adata.uns[key] = {"module_genes": _module_genes(MODULES)}
    if activity:
        adata.obsm[f"{key}_activity"] = pd.DataFrame(
            {
                "M1": ACTIVE_P1.astype(float) + 0.1 * np.arange(N_CELLS) / N_CELLS,  # perfect separation
                "M2": -ACTIVE_P2.astype(float),  # reversed
                "M3": np.ones(N_CELLS),  # all tied
                "M4": np.arange(N_CELLS, dtype=float),
            },
            index=adata.obs_names,
        )
    return adata


def test_exact_jaccards_unmatched_and_aurocs():
    table, summary = recovery(_toy())
    assert list(table.columns) == ["program", "size", "module", "module_size", "jaccard", "auroc"]
    assert list(table["program"]) == ["p1", "p2"]
    row = table.set_index("program")
    assert row.loc["p1", "module"] == "M1" and row.loc["p2", "module"] == "M2"
    assert row.loc["p1", "size"] == 4 and row.loc["p2", "size"] == 2
    assert row.loc["p1", "module_size"] == 3 and row.loc["p2", "module_size"] == 4
    assert row.loc["p1", "jaccard"] == pytest.approx(3 / 4)
    assert row.loc["p2", "jaccard"] == pytest.approx(2 / 4)
    assert row.loc["p1", "auroc"] == pytest.approx(1.0)  # active cells score higher, no overlap
    assert row.loc["p2", "auroc"] == pytest.approx(0.0)  # active cells score lower, no overlap

    assert UNMATCHED_BELOW == 0.2
    assert summary == {
        "mean_jaccard": pytest.approx((3 / 4 + 2 / 4) / 2),
        "n_modules": 4,
        "n_unmatched": 2,  # M3 (0) and M4 (1/8 < 0.2)
        "median_module_size": 3.5,
        "max_module_size": 5,
        "mean_auroc": pytest.approx(0.5),
    }
    assert isinstance(summary["n_unmatched"], int) and isinstance(summary["mean_jaccard"], float)


def _auroc_of(activity: np.ndarray, active: np.ndarray) -> float:
    adata = _toy({"p": np.array(["g8", "g9"])})
    adata.obs["active_p"] = active
    adata.obsm["lava_activity"]["M3"] = activity  # M3 = g8, g9: the exact match
    table, _ = recovery(adata)
    assert table.loc[0, "module"] == "M3" and table.loc[0, "jaccard"] == 1.0
    return float(table.loc[0, "auroc"])


def test_auroc_ties_partial_overlap_and_degenerate_truth():
    active = np.array([True, True, False, False, False, False, False, False])
    assert _auroc_of(np.ones(N_CELLS), active) == pytest.approx(0.5)  # all tied
    assert _auroc_of(np.arange(N_CELLS, dtype=float)[::-1], active) == pytest.approx(1.0)
    assert _auroc_of(np.arange(N_CELLS, dtype=float), active) == pytest.approx(0.0)
    # positives score 5 and 1; negatives 0, 1, 2, 3, 4, 6: 5 beats five, 1 beats one and ties one
    score = np.array([5.0, 1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 6.0])
    expected = (5 + 1 + 0.5) / 12
    assert _auroc_of(score, active) == pytest.approx(expected)
    # agrees with sklearn's (tie-aware) AUROC
    from sklearn.metrics import roc_auc_score

    assert expected == pytest.approx(roc_auc_score(active, score))
    # no active (or no inactive) cell: undefined
    assert np.isnan(_auroc_of(score, np.zeros(N_CELLS, dtype=bool)))
    assert np.isnan(_auroc_of(score, np.ones(N_CELLS, dtype=bool)))


def test_dict_form_planted_entries_of_simulate_kidney():
    planted = {
        "p1": {
            "genes": np.array(["g0", "g1", "g2", "g3"]),
            "cell_types": np.array(["PT"]),
            "conditions": np.array(["AKI", "CKD"]),
        },
        "p2": {"genes": np.array(["g4", "g5"]), "cell_types": np.array(["TAL"]), "conditions": np.array(["CKD"])},
    }
    table, summary = recovery(_toy(planted))
    ref_table, ref_summary = recovery(_toy())
    pd.testing.assert_frame_equal(table, ref_table)
    assert summary == ref_summary


def test_without_activity_or_active_columns_aurocs_are_nan():
    table, summary = recovery(_toy(activity=False))
    assert table["auroc"].isna().all() and np.isnan(summary["mean_auroc"])
    assert list(table["jaccard"]) == pytest.approx([0.75, 0.5])

    adata = _toy()
    del adata.obs["active_p2"]
    table, summary = recovery(adata)
    assert table.loc[0, "auroc"] == pytest.approx(1.0) and np.isnan(table.loc[1, "auroc"])
    assert summary["mean_auroc"] == pytest.approx(1.0)  # NaN ignored


def test_no_modules():
    adata = _toy(activity=False)
    adata.uns["lava"]["module_genes"] = _module_genes({})
    table, summary = recovery(adata)
    assert list(table["program"]) == ["p1", "p2"]
    assert table["module"].isna().all() and (table["jaccard"] == 0).all() and (table["module_size"] == 0).all()
    assert summary["n_modules"] == 0 and summary["n_unmatched"] == 0 and summary["mean_jaccard"] == 0.0
    assert summary["max_module_size"] == 0 and summary["median_module_size"] == 0.0


def test_custom_key():
    adata = _toy(key="other")
    table, summary = recovery(adata, key="other")
    assert list(table["jaccard"]) == pytest.approx([0.75, 0.5]) and summary["mean_auroc"] == pytest.approx(0.5)
    with pytest.raises(KeyError, match=r"run lava_sc\.tl\.modules\(adata, key='lava'\) first"):
        recovery(adata)


def test_missing_inputs_raise_keyerrors_naming_what_to_run():
    adata = _toy()
    del adata.uns["planted"]
    with pytest.raises(KeyError, match=r"uns\['planted'\] is missing.*lava_sc\.datasets simulation"):
        recovery(adata)

    adata = _toy()
    del adata.uns["lava"]
    with pytest.raises(
        KeyError, match=r"No LAVA modules under key 'lava'; run lava_sc\.tl\.modules\(adata, key='lava'\)"
    ):
        recovery(adata)

    adata = _toy()
    adata.uns["lava"] = {"sketch": None}  # correlations ran, modules did not
    with pytest.raises(KeyError, match=r"run lava_sc\.tl\.modules"):
        recovery(adata)


def test_on_a_simulated_atlas_the_planted_sets_score_perfectly():
    adata = simulate_atlas(n_cells=1000, n_genes=300, umap=False, random_state=0)
    planted = adata.uns["planted"]
    names = {p: f"M{i + 1}" for i, p in enumerate(planted)}
    modules = {names[p]: list(g) for p, g in planted.items()}
    modules["M99"] = list(adata.var_names[adata.var["planted_module"] == "none"][:30])  # a state-gene module
    adata.uns["lava"] = {"module_genes": _module_genes(modules)}
    activity = {names[p]: adata.obs[f"active_{p}"].to_numpy(dtype=float) for p in planted}
    activity["M99"] = np.zeros(adata.n_obs)
    adata.obsm["lava_activity"] = pd.DataFrame(activity, index=adata.obs_names)

    table, summary = recovery(adata)
    assert list(table["program"]) == list(planted)
    assert list(table["module"]) == [names[p] for p in planted]
    assert (table["jaccard"] == 1.0).all() and (table["auroc"] == 1.0).all()
    assert list(table["size"]) == [len(g) for g in planted.values()]
    assert summary["mean_jaccard"] == 1.0 and summary["mean_auroc"] == 1.0
    assert summary["n_modules"] == len(planted) + 1 and summary["n_unmatched"] == 1
    assert summary["max_module_size"] == 30
