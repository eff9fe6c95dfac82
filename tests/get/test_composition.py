"""Tests for :func:`lava_sc.get.locality_composition` and the stored layout it reads."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import lava_sc as lv
from lava_sc._keys import locality_names
from lava_sc.get._composition import ENTRY
from lava_sc.tl._populations import composition_entry, composition_table

CELL_TYPE = pd.Categorical(
    ["B", "B", "B", "B", "T", "T", "T", "NK", "NK", np.nan], categories=["B", "T", "NK", "plasma"]
)
SETS = [[0, 1, 2, 3], [2, 3, 4, 5], [4, 7, 8, 9], [9]]


def membership(sets=SETS, n_cells=10):
    rows = np.concatenate([np.asarray(s) for s in sets])
    cols = np.concatenate([np.full(len(s), j) for j, s in enumerate(sets)])
    return sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_cells, len(sets)))


def annotated():
    obs = pd.DataFrame({"cell_type": CELL_TYPE}, index=[f"c{i}" for i in range(10)])
    adata = ad.AnnData(np.zeros((10, 2), dtype=np.float32), obs=obs)
    adata.obsm["lava_localities"] = membership()
    table = composition_table(adata.obsm["lava_localities"], adata.obs["cell_type"])
    adata.uns["lava"] = {ENTRY: composition_entry(table, "cell_type")}
    return adata


def test_table_layout_and_values():
    table = composition_table(membership(), pd.Series(CELL_TYPE))
    assert list(table.index) == locality_names(4)
    assert list(table.columns) == ["n_labelled", "purity", "entropy", "n_groups_present", "dominant"] + [
        "B",
        "T",
        "NK",
        "plasma",
    ]
    assert table.attrs["groups"] == ["B", "T", "NK", "plasma"]
    np.testing.assert_allclose(table["purity"], [1, 0.5, 2 / 3, np.nan])
    np.testing.assert_allclose(table["entropy"][:2], [0, 1])
    np.testing.assert_allclose(table.loc["L2", ["B", "T", "NK", "plasma"]].astype(float), [0, 1 / 3, 2 / 3, 0])
    assert table["plasma"].iloc[:3].eq(0).all()  # unused category: a column of zeros
    assert isinstance(table["dominant"].dtype, pd.CategoricalDtype)
    assert list(table["dominant"].iloc[:3]) == ["B", "B", "NK"]
    assert pd.isna(table["dominant"].iloc[3])  # only a NaN-group cell
    np.testing.assert_array_equal(table["n_labelled"], [4, 4, 3, 0])


def test_non_categorical_and_colliding_names():
    labels = np.array(["purity", "purity", "x", "x", "x", "x", "x", "x", "x", "x"], dtype=object)
    table = composition_table(membership(), labels)
    assert table.attrs["groups"] == ["purity (fraction)", "x"]  # categories sorted; the name is suffixed
    np.testing.assert_allclose(table["purity (fraction)"], [0.5, 0, 0, 0])
    np.testing.assert_allclose(table["purity"], [0.5, 1, 1, 1])


def test_get_returns_a_copy_with_attrs():
    adata = annotated()
    table = lv.get.locality_composition(adata)
    assert table.attrs["groupby"] == "cell_type"
    assert table.attrs["groups"] == ["B", "T", "NK", "plasma"]
    table.loc["L0", "purity"] = -1.0
    assert adata.uns["lava"][ENTRY]["table"].loc["L0", "purity"] == 1.0


def test_missing_says_which_tool_to_run():
    adata = ad.AnnData(np.zeros((3, 2), dtype=np.float32))
    with pytest.raises(KeyError, match=r"lava_sc\.tl\.modules\(adata, groupby=<obs column>, key='lava'\)"):
        lv.get.locality_composition(adata)
    adata.uns["other"] = {"modules": pd.DataFrame()}  # LAVA results without a composition
    with pytest.raises(KeyError, match=r"No LAVA locality composition under key 'other'.*groupby="):
        lv.get.locality_composition(adata, key="other")
    with pytest.raises(TypeError, match="AnnData"):
        lv.get.locality_composition(pd.DataFrame())


def test_refuses_a_table_from_other_localities():
    adata = annotated()
    adata.obsm["lava_localities"] = membership(SETS[:3])
    with pytest.raises(ValueError, match=r"describes 4 localities.*has 3.*groupby='cell_type'"):
        lv.get.locality_composition(adata)


@pytest.mark.parametrize("fmt", ["h5ad", "zarr"])
def test_file_round_trip(tmp_path, fmt):
    adata = annotated()
    before = lv.get.locality_composition(adata)
    path = tmp_path / f"composition.{fmt}"
    if fmt == "zarr":
        pytest.importorskip("zarr")
        adata.write_zarr(path)
        back = ad.read_zarr(path)
    else:
        adata.write_h5ad(path)
        back = ad.read_h5ad(path)
    entry = back.uns["lava"][ENTRY]
    assert entry["groupby"] == "cell_type"
    assert list(entry["groups"]) == ["B", "T", "NK", "plasma"]
    assert entry["present_fraction"] == pytest.approx(0.1)
    after = lv.get.locality_composition(back)
    pd.testing.assert_frame_equal(after, before, check_names=False)
    assert after.attrs == before.attrs
