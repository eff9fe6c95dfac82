"""Typed settings: exact round trips through h5ad and zarr, provenance stamps, and what a re-run clears."""

import inspect

import anndata as ad
import numpy as np
import pytest

import lava_sc as lv
from lava_sc._params import (
    PIPELINE,
    CorrelationsSettings,
    LocalitiesSettings,
    ModulesSettings,
    decode,
    encode,
    literal_values,
    recorded,
    stale_upstream,
)


def _settings():
    return [
        LocalitiesSettings(
            basis="X_umap",
            n_cells=80,
            overlap=3.0,
            n_placements=2,
            n_placements_used=2,
            max_evaluations=12,
            knn_method="exact",
            max_exact_cells=50_000,
            random_state=3,
        ),
        CorrelationsSettings(
            layer=None,
            genes="highly_variable",
            fdr=0.1,
            alternative="two-sided",
            min_detected=0.1,
            min_abs_r=0.0,
            max_partners=None,
            remove_dense=False,
            robust=False,
            fdr_scope="locality",
            n_null="auto",
            n_null_used=1,
            partial_out=["donor", "X_pca"],
            n_partial_components=2,
            random_state=0,
        ),
        ModulesSettings(
            method="leiden",
            resolution=1.5,
            rank=10,
            min_support="auto",
            min_support_used=3,
            min_genes=4,
            max_genes=None,
            merge_overlap=0.8,
            n_neighbors=15,
            groupby=None,
            between_populations="keep",
            n_between_population=0,
            random_state=1,
        ),
    ]


def _write_read(adata, tmp_path, fmt):
    if fmt == "h5ad":
        adata.write_h5ad(tmp_path / "a.h5ad")
        return ad.read_h5ad(tmp_path / "a.h5ad")
    adata.write_zarr(tmp_path / "a.zarr")
    return ad.read_zarr(tmp_path / "a.zarr")


@pytest.mark.parametrize("fmt", ["h5ad", "zarr"])
def test_settings_round_trip_exactly_through_files(tmp_path, fmt):
    adata = ad.AnnData(np.zeros((3, 2), dtype=np.float32))
    settings = _settings()
    for s in settings:
        s.store(adata, "lava")
    back = _write_read(adata, tmp_path, fmt)
    for s in settings:
        read = type(s).read(back, "lava")
        assert read == s
        assert type(read.max_evaluations if isinstance(s, LocalitiesSettings) else read.random_state) is int
    corr = CorrelationsSettings.read(back, "lava")
    assert corr.layer is None and corr.max_partners is None and corr.remove_dense is False
    assert corr.partial_out == ["donor", "X_pca"]
    mods = ModulesSettings.read(back, "lava")
    assert mods.groupby is None and mods.max_genes is None and mods.min_support == "auto"
    assert "groupby" not in back.uns["lava"]["params"]["modules"]  # None is left out: .get gives None
    assert recorded(back, "lava", "modules", "groupby") is None


def test_none_is_left_out_not_written_as_a_string():
    stored = encode({"a": None, "b": [1, 2], "c": np.int64(3)})
    assert set(stored) == {"b", "c"} and stored["c"] == 3 and type(stored["c"]) is int
    np.testing.assert_array_equal(stored["b"], [1, 2])
    assert decode({"b": np.array([1, 2]), "c": np.float32(0.5)}) == {"b": [1, 2], "c": 0.5}


def test_records_of_earlier_versions_read_none_strings_as_none():
    adata = ad.AnnData(np.zeros((3, 2), dtype=np.float32))
    adata.uns["lava"] = {"params": {"correlations": {"layer": "None", "partial_out": "None", "fdr": 0.05}}}
    corr = CorrelationsSettings.read(adata, "lava")
    assert corr.layer is None and corr.partial_out is None and corr.fdr == 0.05


@pytest.mark.parametrize("settings", PIPELINE, ids=lambda s: s.STEP)
def test_settings_name_the_tools_own_arguments(settings):
    parameters = inspect.signature(getattr(lv.tl, settings.STEP)).parameters
    assert set(settings.argument_names()) <= set(parameters)
    defaults = settings.tool_defaults()
    assert all(v is not inspect.Parameter.empty for v in defaults.values())


@pytest.fixture(scope="module")
def pipeline(small_lava):
    return small_lava.copy()


def test_each_step_is_stamped_with_what_it_was_computed_from(pipeline):
    params = pipeline.uns["lava"]["params"]
    loc, corr, mods = (params[s]["run_id"] for s in ("localities", "correlations", "modules"))
    assert len({loc, corr, mods}) == 3
    assert params["correlations"]["upstream"] == {"localities": loc}
    assert params["modules"]["upstream"] == {"localities": loc, "correlations": corr}
    assert stale_upstream(pipeline, "lava", "modules") == []


def test_a_recomputed_input_makes_the_result_under_another_key_stale(pipeline):
    adata = pipeline.copy()
    lv.tl.score(adata, lv.get.modules(adata), key_added="lava_score")
    assert stale_upstream(adata, "lava_score", "score") == []
    lv.tl.localities(adata, random_state=7)
    assert stale_upstream(adata, "lava_score", "score") == ["lava/localities"]


def test_rerunning_modules_clears_what_was_computed_from_the_old_modules(pipeline):
    adata = pipeline.copy()
    adata.uns["lava"]["enrichment"] = "old"
    adata.uns["lava"]["params"]["enrich"] = {"n_tests": 1}
    lv.tl.modules(adata, resolution=2.0)
    assert "enrichment" not in adata.uns["lava"]
    assert "enrich" not in adata.uns["lava"]["params"]
    assert "correlations" in adata.uns["lava"]["params"]


def test_rerunning_correlations_clears_modules_and_their_records(pipeline):
    adata = pipeline.copy()
    lv.tl.correlations(adata)
    assert "modules" not in adata.uns["lava"] and "modules" not in adata.uns["lava"]["params"]
    assert "lava_activity" not in adata.obsm
    assert "localities" in adata.uns["lava"]["params"]


@pytest.mark.parametrize("settings", PIPELINE, ids=lambda s: s.STEP)
def test_tool_choices_match_the_settings(settings):
    """A choice (``Literal``) of a step's settings allows exactly what its tool's annotation allows."""
    import typing

    tool = getattr(lv.tl, settings.STEP)
    hints = typing.get_type_hints(tool)
    for name in settings.argument_names():
        assert literal_values(hints[name]) == settings.choices(name), f"tl.{settings.STEP}: `{name}`"
