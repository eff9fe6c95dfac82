"""Tests for :func:`lava_sc.get.summary`: one row per module, consistent with the tables it condenses."""

from __future__ import annotations

import numpy as np
import pytest

import lava_sc as lv


def test_one_row_per_module_consistent_with_the_stored_tables(planted_lava):
    table = lv.get.summary(planted_lava)
    genes = lv.get.module_genes(planted_lava)
    pairs = lv.get.modules(planted_lava)
    activity = lv.get.activity(planted_lava)
    assert list(table["module"]) == list(activity.columns)
    for row in table.itertuples(index=False):
        of_module = genes.loc[genes["module"] == row.module, "gene"].tolist()
        assert row.n_genes == len(of_module)
        assert row.n_pairs == int((pairs["module"] == row.module).sum())
        assert row.top_genes.split(", ") == of_module[:5]
        assert row.active_cells == pytest.approx(float(lv.get.active(planted_lava)[row.module].mean()))
    assert table.attrs["active_above"] is None and "significant" in table.attrs["active"]


def test_says_where_each_planted_module_is_active(planted_lava):
    """The planted simulator knows where each module lives: typeB in T1, gradient in T3, disease_T4 in T4."""
    table = lv.get.summary(planted_lava).set_index("module")
    assert table.attrs["groupby"] == "cell_type"
    genes = lv.get.module_genes(planted_lava)
    planted = planted_lava.var["planted_module"].astype(str)
    expected = {"typeB": "T1", "gradient": "T3", "disease_T4": "T4"}
    for module, of_module in genes.groupby("module", observed=True)["gene"]:
        kind = planted[of_module].mode().iloc[0]
        if kind in expected:
            assert table.loc[module, "mixed_share"] < 0.5
            assert table.loc[module, "where_active"].startswith(f"{expected[kind]} ("), (module, kind)


def test_names_the_genes_tested(pbmc_lava, planted_lava):
    assert lv.get.summary(pbmc_lava).attrs["gene_source"] == "var['highly_variable']"
    assert lv.get.summary(pbmc_lava).attrs["n_genes_tested"] == len(pbmc_lava.uns["lava"]["genes"])
    assert lv.get.summary(planted_lava).attrs["gene_source"] == "every gene that varies"


def test_active_above_and_top_genes_are_honoured(planted_lava):
    strict = lv.get.summary(planted_lava, active_above=0.9, n_top_genes=2)
    loose = lv.get.summary(planted_lava, active_above=0.2)
    assert (strict["active_cells"] <= loose["active_cells"]).all()
    activity = lv.get.activity(planted_lava)
    assert loose["active_cells"].tolist() == pytest.approx([float((activity[m] > 0.2).mean()) for m in loose.module])
    assert strict.attrs["active"] == "activity above 0.9"
    assert all(len(t.split(", ")) <= 2 for t in strict["top_genes"])


def test_without_groups_the_group_columns_are_absent(small):
    adata = small.copy()
    lv.tl.modules(adata, groupby=None, random_state=0)
    table = lv.get.summary(adata)
    assert table.attrs["groupby"] is None
    assert "where_active" not in table and "mixed_share" not in table and len(table)


def test_before_tl_modules_says_what_to_run(small):
    with pytest.raises(KeyError, match="tl.modules"):
        lv.get.summary(small)


@pytest.mark.parametrize(("kwargs", "error"), [({"n_top_genes": 0}, ValueError), ({"active_above": 2.0}, ValueError)])
def test_bad_options_are_refused(planted_lava, kwargs, error):
    with pytest.raises(error):
        lv.get.summary(planted_lava, **kwargs)


def test_nothing_in_adata_changes(planted_lava):
    before = {k: (type(v), getattr(v, "shape", None)) for k, v in planted_lava.uns["lava"].items()}
    lv.get.summary(planted_lava)
    assert {k: (type(v), getattr(v, "shape", None)) for k, v in planted_lava.uns["lava"].items()} == before
    assert np.isfinite(lv.get.summary(planted_lava)["active_cells"]).all()
