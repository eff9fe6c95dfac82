"""Tests for :func:`lava_sc.get.active`: where modules are active, against the localities' own tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import lava_sc as lv
from lava_sc._core.modules import active_cells, module_support


def test_support_counts_the_weight_of_pairs_significant_with_the_module_sign():
    # 2 localities x 4 pairs; pairs 0-2 form module 0 (pair 2 anti-correlated), pair 3 is in no module
    sketch = sp.csr_matrix(np.array([[0.5, 0.0, -0.4, 0.9], [0.5, 0.3, 0.4, 0.0]]))
    labels = np.array([0, 0, 0, -1])
    weight = np.array([2.0, 1.0, -1.0, 5.0])
    support = module_support(sketch, labels, weight, 1)
    # locality 0: pairs 0 and 2 agree (2 + 1 of 4); locality 1: pair 2 has the wrong sign (2 + 1 of 4)
    np.testing.assert_allclose(support[:, 0], [0.75, 0.75])
    np.testing.assert_allclose(module_support(sp.csr_matrix((2, 4)), labels, weight, 1), 0.0)


def test_a_cell_is_active_when_most_of_its_localities_are():
    membership = sp.csr_matrix(np.array([[1, 1, 0], [1, 0, 0], [0, 0, 0]], dtype=float))
    support = np.array([[0.9], [0.1], [0.6]])
    flags = active_cells(membership, support, nearest_locality=np.array([0, 0, 2]))
    assert flags[:, 0].tolist() == [True, True, True]  # half of its localities; one; its nearest probe's
    assert not active_cells(membership, np.array([[0.1], [0.9], [0.0]]), np.array([0, 0, 0]))[1, 0]


def planted_kind(adata, module_genes):
    return adata.var["planted_module"].astype(str)[module_genes].mode().iloc[0]


def test_active_cells_are_where_the_planted_modules_live(planted_lava):
    """The simulator knows which cells carry each module: precision and recall against that truth."""
    flags = lv.get.active(planted_lava)
    genes = lv.get.module_genes(planted_lava)
    checked = 0
    for module, of_module in genes.groupby("module", observed=True)["gene"]:
        truth = planted_lava.obs[f"active_{planted_kind(planted_lava, of_module)}"].to_numpy(bool)
        called = flags[module].to_numpy()
        precision, recall = truth[called].mean(), called[truth].mean()
        assert precision >= 0.75, (module, precision)
        # a gradient is active along its whole type, but correlated only where it varies enough
        assert recall >= (0.4 if planted_kind(planted_lava, of_module) == "gradient" else 0.8), (module, recall)
        checked += 1
    assert checked >= 3


def test_localities_level_is_the_stored_share_cut(planted_lava):
    support = planted_lava.uns["lava"]["locality_support"]
    flags = lv.get.active(planted_lava, level="localities")
    assert flags.equals(support >= 0.5)
    assert ((support >= 0) & (support <= 1)).all().all()
    assert list(flags.columns) == list(lv.get.activity(planted_lava).columns)


def test_cells_level_has_one_row_per_cell_and_works_on_a_view(planted_lava):
    flags = lv.get.active(planted_lava)
    assert flags.index.equals(planted_lava.obs_names) and flags.dtypes.eq(bool).all()
    view = planted_lava[planted_lava.obs["cell_type"] == "T1"]
    pd.testing.assert_frame_equal(lv.get.active(view), flags.loc[view.obs_names])


def test_score_results_have_no_test_and_say_so(planted_lava):
    adata = planted_lava.copy()
    genes = lv.get.module_genes(adata)
    lv.tl.score(adata, {"typeB": genes.loc[genes.module == "M1", "gene"].tolist()})
    with pytest.raises(KeyError, match="tl.modules"):
        lv.get.active(adata, "lava_score")


def test_bad_level_and_missing_results(planted_lava, small):
    with pytest.raises(ValueError, match="level"):
        lv.get.active(planted_lava, level="genes")
    with pytest.raises(KeyError, match="tl.modules"):
        lv.get.active(small)
