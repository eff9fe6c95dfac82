"""Data safety (issue 6, "Reliability").

No tool changes X, layers or keys it does not document; ``copy=True`` leaves the input untouched;
results under two keys coexist; every result survives h5ad and zarr exactly; subsetting after the tools
keeps results aligned with the cells; Ctrl-C in the middle of a tool leaves ``adata`` as it was.
"""

import hashlib
from collections.abc import Mapping

import anndata as ad
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import lava_sc as lv
import lava_sc._utils as lava_utils
from lava_sc.pl._localities import _per_cell_diagnostic

# ----------------------------------------------------------------------------------------------------
# helpers


def assert_same(a, b, where="adata"):
    """Deep, exact equality of stored values (dicts, DataFrames, sparse and dense arrays, scalars)."""
    if isinstance(a, Mapping):
        assert isinstance(b, Mapping), where
        assert set(a) == set(b), f"{where}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            assert_same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b, check_exact=True, obj=where)
    elif sp.issparse(a):
        assert sp.issparse(b) and a.shape == b.shape and a.dtype == b.dtype, where
        assert (sp.csr_matrix(a) != sp.csr_matrix(b)).nnz == 0, where
    elif isinstance(a, np.ndarray):
        b = np.asarray(b)
        assert a.shape == b.shape, where
        if a.dtype.kind in "biufc":
            assert a.dtype == b.dtype, f"{where}: {a.dtype} != {b.dtype}"
            np.testing.assert_array_equal(a, b, err_msg=where)
        else:  # strings: h5ad may read <U back as object
            assert [str(v) for v in a.ravel()] == [str(v) for v in b.ravel()], where
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b), where
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def assert_same_adata(a: ad.AnnData, b: ad.AnnData) -> None:
    assert a.shape == b.shape
    assert_same(a.X, b.X, "X")
    assert_same(dict(a.layers), dict(b.layers), "layers")
    pd.testing.assert_frame_equal(a.obs, b.obs, check_exact=True)
    pd.testing.assert_frame_equal(a.var, b.var, check_exact=True)
    assert_same(dict(a.obsm), dict(b.obsm), "obsm")
    assert_same(dict(a.uns), dict(b.uns), "uns")


def digest(x) -> str:
    """Hash of a matrix's bytes (sparse: data, indices and indptr)."""
    h = hashlib.sha1()
    parts = (x.data, x.indices, x.indptr) if sp.issparse(x) else (np.ascontiguousarray(x),)
    for part in parts:
        h.update(np.ascontiguousarray(part).tobytes())
    h.update(str((x.shape, x.dtype)).encode())
    return h.hexdigest()


def expression_digests(adata):
    return {"X": digest(adata.X), **{k: digest(v) for k, v in adata.layers.items()}}


PER_CELL_OBS = ("lava_in_degree", "lava_coverage")  # per-cell diagnostics tl.localities may put into obs


# ----------------------------------------------------------------------------------------------------
# every tool: X and layers untouched, only documented keys added, nothing else changed


def run_localities(a):
    lv.tl.localities(a)


def run_correlations(a):
    lv.tl.correlations(a)


def run_modules(a):
    lv.tl.modules(a)


def run_differential(a):
    lv.tl.differential(a, "condition", replicate="donor", within="cell_type")


def run_enrich(a, sets):
    lv.tl.enrich(a, sets)


def run_score(a):
    lv.tl.score(a, {"typeB": [f"typeB_{i}" for i in range(8)]})


LOCALITIES = {"probes", "localities", "params"}
CORRELATIONS = {"sketch", "pairs", "genes", "correlations"}
MODULES = {"modules", "module_genes", "locality_activity"}

# tool, starting point, obsm added, {uns key: entries that may be added or replaced}, entries removed
TOOLS = {
    "localities": (run_localities, "small", {"lava_localities"}, {"lava": LOCALITIES}),
    "correlations": (run_correlations, "with_localities", set(), {"lava": CORRELATIONS | {"params"}}),
    "modules": (
        run_modules,
        "small",
        {"lava_localities", "lava_activity"},
        {"lava": LOCALITIES | CORRELATIONS | MODULES},
    ),
    "differential": (run_differential, "small_lava", set(), {"lava": {"differential", "params"}}),
    "enrich": (run_enrich, "small_lava", set(), {"lava": {"enrichment", "params"}}),
    "score": (
        run_score,
        "small_lava",
        {"lava_score_activity"},
        {"lava_score": {"locality_activity", "modules", "module_genes", "params"}},
    ),
}


@pytest.fixture(scope="module")
def starts(small, small_lava):
    with_localities = small.copy()
    lv.tl.localities(with_localities)
    return {"small": small, "small_lava": small_lava, "with_localities": with_localities}


def call(tool, adata, sets):
    run = TOOLS[tool][0]
    return run(adata, sets) if tool == "enrich" else run(adata)


@pytest.mark.parametrize("tool", list(TOOLS))
def test_tool_adds_only_documented_keys(starts, small_sets, tool):
    _, start, obsm_added, uns_added = TOOLS[tool]
    before = starts[start]
    adata = before.copy()
    digests = expression_digests(adata)
    call(tool, adata, small_sets)

    assert expression_digests(adata) == digests  # X and layers untouched, same dtype and format
    assert_same(adata.X, before.X, "X")
    new_obs = set(adata.obs.columns) - set(before.obs.columns)
    assert new_obs <= set(PER_CELL_OBS) if tool in ("localities", "modules") else not new_obs
    pd.testing.assert_frame_equal(adata.obs[before.obs.columns], before.obs, check_exact=True)
    pd.testing.assert_frame_equal(adata.var, before.var, check_exact=True)
    assert set(adata.layers) == set(before.layers)

    assert set(adata.obsm) == set(before.obsm) | obsm_added
    for k in before.obsm:
        if k not in obsm_added:
            assert_same(before.obsm[k], adata.obsm[k], f"obsm[{k!r}]")

    assert set(adata.uns) == set(before.uns) | set(uns_added)
    for k, value in before.uns.items():
        if k not in uns_added:
            assert_same(value, adata.uns[k], f"uns[{k!r}]")
    for k, entries in uns_added.items():
        slot = adata.uns[k]
        old = before.uns.get(k, {})
        assert entries <= set(slot)
        for entry, value in old.items():
            if entry not in entries and not (tool == "correlations" and entry in MODULES):
                assert_same(value, slot[entry], f"uns[{k!r}][{entry!r}]")
    if tool in ("differential", "enrich"):  # earlier stages' parameters are kept
        for stage in ("localities", "correlations", "modules"):
            assert_same(before.uns["lava"]["params"][stage], adata.uns["lava"]["params"][stage])


@pytest.mark.parametrize("tool", list(TOOLS))
def test_copy_true_leaves_input_untouched(starts, small_sets, tool):
    start = starts[TOOLS[tool][1]]
    adata = start.copy()
    reference = start.copy()
    run = {
        "localities": lambda a: lv.tl.localities(a, copy=True),
        "correlations": lambda a: lv.tl.correlations(a, copy=True),
        "modules": lambda a: lv.tl.modules(a, copy=True),
        "differential": lambda a: lv.tl.differential(a, "condition", replicate="donor", within="cell_type", copy=True),
        "enrich": lambda a: lv.tl.enrich(a, small_sets, copy=True),
        "score": lambda a: lv.tl.score(a, {"typeB": [f"typeB_{i}" for i in range(8)]}, copy=True),
    }[tool]
    out = run(adata)
    assert isinstance(out, ad.AnnData) and out is not adata
    assert_same_adata(adata, reference)
    # the copy holds what the in-place call writes
    inplace = start.copy()
    call(tool, inplace, small_sets)
    assert_same_adata(out, inplace)


GETTERS = [
    lambda a: lv.get.modules(a),
    lambda a: lv.get.module_genes(a),
    lambda a: lv.get.activity(a),
    lambda a: lv.get.activity(a, level="localities"),
    lambda a: lv.get.activity(a, key="lava_score"),
    lambda a: lv.get.gene_sets(a),
    lambda a: lv.get.enrichment(a),
    lambda a: lv.get.differential(a),
    lambda a: lv.pl.activity(a, show=False),
    lambda a: lv.pl.activity(a, "M1", groupby="condition", show=False),
    lambda a: lv.pl.localities(a, show_members=[0, 1], show=False),
    lambda a: lv.pl.module_network(a, "M1", show=False),
    lambda a: lv.pl.differential(a, show=False),
]


@pytest.mark.parametrize("i", range(len(GETTERS)))
def test_get_and_pl_change_nothing(small_all, i):
    import matplotlib.pyplot as plt

    adata = small_all.copy()
    out = GETTERS[i](adata)
    plt.close("all")
    assert_same_adata(adata, small_all)
    numeric = out.select_dtypes("number").columns if isinstance(out, pd.DataFrame) else []
    if len(numeric) and len(out):  # a copy: editing it in place does not reach adata
        out.iloc[:, out.columns.get_loc(numeric[0])] = -12345.0
        assert_same_adata(adata, small_all)


def test_two_keys_coexist(small):
    adata = small.copy()
    lv.tl.modules(adata, key="a", random_state=0)
    first = {k: v for k, v in adata.uns["a"].items()}
    first_activity = adata.obsm["a_activity"].copy()
    lv.tl.localities(adata, n_cells=60, key_added="b", max_evaluations=5)
    lv.tl.modules(adata, key="b", random_state=0)
    assert {"a", "b"} <= set(adata.uns)
    assert {"a_localities", "a_activity", "b_localities", "b_activity"} <= set(adata.obsm)
    assert_same(first, dict(adata.uns["a"]), "uns['a']")
    pd.testing.assert_frame_equal(adata.obsm["a_activity"], first_activity)
    assert adata.uns["b"]["params"]["localities"]["n_cells"] == 60
    assert adata.obsm["b_localities"].shape[1] != adata.obsm["a_localities"].shape[1]
    lv.get.modules(adata, key="a")
    lv.get.modules(adata, key="b")


# ----------------------------------------------------------------------------------------------------
# round trips


@pytest.mark.parametrize("fmt", ["h5ad", "zarr"])
def test_round_trip_exact(small_all, small_sets, tmp_path, fmt):
    path = tmp_path / f"lava.{fmt}"
    if fmt == "h5ad":
        small_all.write_h5ad(path)
        back = ad.read_h5ad(path)
    else:
        small_all.write_zarr(path)
        back = ad.read_zarr(path)
    for entry in ("modules", "module_genes", "locality_activity", "pairs", "differential", "enrichment", "sketch"):
        assert entry in back.uns["lava"]
    assert_same_adata(back, small_all)
    # and the accessors read the same results
    pd.testing.assert_frame_equal(lv.get.modules(back), lv.get.modules(small_all))
    pd.testing.assert_frame_equal(lv.get.activity(back), lv.get.activity(small_all))
    pd.testing.assert_frame_equal(lv.get.activity(back, key="lava_score"), lv.get.activity(small_all, key="lava_score"))
    pd.testing.assert_frame_equal(lv.get.differential(back), lv.get.differential(small_all))
    pd.testing.assert_frame_equal(lv.get.enrichment(back), lv.get.enrichment(small_all))
    # later tools and plots run on the read-back object as on the original
    for name in TOOLS:
        if name in ("localities", "modules"):
            continue
        again, orig = back.copy(), small_all.copy()
        for adata in (again, orig):
            if name == "correlations":
                lv.tl.correlations(adata, fdr=0.2)
                lv.tl.modules(adata, resolution=2.0)
            else:
                call(name, adata, small_sets)
        assert_same_adata(again, orig)
    lv.tl.score(again, back, key_added="transfer")  # modules read back as the source of a transfer
    lv.tl.score(orig, small_all, key_added="transfer")
    assert_same_adata(again, orig)
    lv.pl.module_network(back, "M1", show=False)
    lv.pl.differential(back, show=False)
    lv.pl.localities(back, color="in_degree", show=False)
    plt.close("all")


# ----------------------------------------------------------------------------------------------------
# subsetting after the tools


@pytest.fixture(scope="module", params=["subset", "subset_copy", "permuted"])
def subset(request, small_all):
    if request.param == "permuted":
        order = np.random.default_rng(0).permutation(small_all.n_obs)
        return small_all[order].copy()
    mask = small_all.obs["cell_type"].to_numpy() != "T1"
    sub = small_all[mask]
    return sub.copy() if request.param == "subset_copy" else sub


def test_subset_activity_aligned(small_all, subset):
    for key in ("lava", "lava_score"):
        full = lv.get.activity(small_all, key=key)
        part = lv.get.activity(subset, key=key)
        assert list(part.index) == list(subset.obs_names)
        pd.testing.assert_frame_equal(part, full.loc[subset.obs_names])
    pd.testing.assert_frame_equal(
        lv.get.activity(subset, level="localities"), lv.get.activity(small_all, level="localities")
    )


def test_subset_membership_aligned(small_all, subset):
    full = sp.csr_matrix(small_all.obsm["lava_localities"])
    rows = small_all.obs_names.get_indexer(subset.obs_names)
    assert (sp.csr_matrix(subset.obsm["lava_localities"]) != full[rows]).nnz == 0


def test_subset_plots(small_all, subset):
    import matplotlib.pyplot as plt

    lv.pl.activity(subset, show=False)
    lv.pl.localities(subset, color="coverage", show=False)
    plt.close("all")
    rows = small_all.obs_names.get_indexer(subset.obs_names)
    coverage = _per_cell_diagnostic(subset, "lava", subset.uns["lava"], "coverage")
    full = _per_cell_diagnostic(small_all, "lava", small_all.uns["lava"], "coverage")
    np.testing.assert_array_equal(coverage, full[rows])


def test_subset_in_degree_aligned_or_refused(small_all, subset):
    full = _per_cell_diagnostic(small_all, "lava", small_all.uns["lava"], "in_degree")
    try:
        values = _per_cell_diagnostic(subset, "lava", subset.uns["lava"], "in_degree")
    except ValueError as err:  # kept in uns: refused once the cells changed, never misaligned
        assert "subset or reordered" in str(err)
        with pytest.raises(ValueError, match="in_degree"):
            lv.pl.localities(subset, color="in_degree", show=False)
        return
    rows = small_all.obs_names.get_indexer(subset.obs_names)
    np.testing.assert_array_equal(values, full[rows])


def test_subset_differential_aligned(small_all, subset):
    adata = subset.copy()
    lv.tl.differential(adata, "condition", replicate=None, within=None, statistic="activity", min_cells=2)
    table = lv.get.differential(adata).set_index("module")
    act = lv.get.activity(small_all).loc[subset.obs_names]
    condition = subset.obs["condition"].astype(str).to_numpy()
    for module in act.columns:
        row = table.loc[module]
        assert row["n_condition"] == (condition == row["condition"]).sum()
        np.testing.assert_allclose(row["mean_condition"], act[module][condition == row["condition"]].mean())
        np.testing.assert_allclose(row["mean_reference"], act[module][condition == row["reference"]].mean())


def test_subset_then_recompute(subset):
    import warnings

    adata = subset.copy()
    sizes = np.diff(sp.csc_matrix(adata.obsm["lava_localities"]).indptr)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no numpy noise from localities that lost their cells
        lv.tl.correlations(adata)  # localities restricted to the remaining cells
        lv.tl.modules(adata)
    sketch = sp.csr_matrix(adata.uns["lava"]["sketch"])
    assert sketch.shape[0] == len(sizes)
    assert np.diff(sketch.indptr)[sizes < 3].sum() == 0  # emptied localities are skipped
    assert (adata.uns["lava"]["correlations"]["n_tests"][sizes < 3] == 0).all()
    assert lv.get.activity(adata).shape[0] == adata.n_obs
    if (sizes < 3).any():
        assert (lv.get.activity(adata, level="localities").to_numpy()[sizes < 3] == 0).all()


def test_all_localities_emptied(small_lava):
    adata = small_lava[:40].copy()
    adata.obsm["lava_localities"] = sp.csr_matrix(adata.obsm["lava_localities"].shape, dtype=np.float32)
    with pytest.raises(ValueError, match="fewer than 3 cells"):
        lv.tl.correlations(adata)


def test_no_per_cell_arrays_in_uns(small_all):
    def walk(value, where):
        if isinstance(value, Mapping):
            for k, v in value.items():
                yield from walk(v, f"{where}[{k!r}]")
        elif isinstance(value, (np.ndarray, pd.DataFrame)) and len(value) == small_all.n_obs:
            yield where

    for key in ("lava", "lava_score"):
        assert list(walk(small_all.uns[key], f"uns[{key!r}]")) == []


def test_per_cell_check_message(small_lava):
    from lava_sc._validate import check_per_cell

    with pytest.raises(ValueError, match=r"rerun lava_sc\.tl\.modules\(adata, key='lava'\)"):
        check_per_cell(small_lava, np.zeros((5, 2)), "obsm['lava_activity']", "modules", "lava")


# ----------------------------------------------------------------------------------------------------
# Ctrl-C


@pytest.fixture
def interrupt(monkeypatch):
    """``interrupt(desc)``: the 3rd progress step of the bar named ``desc`` raises KeyboardInterrupt."""

    def arm(desc: str, at: int = 3):
        class Interrupting(lava_utils.tqdm):
            def __init__(self, *args, **kwargs):
                self.name = str(kwargs.get("desc", ""))
                super().__init__(*args, **kwargs)

            def update(self, n=1):
                if self.name.startswith(desc):
                    arm.calls += 1
                    if arm.calls == at:
                        raise KeyboardInterrupt
                return super().update(n)

        arm.calls = 0
        monkeypatch.setattr(lava_utils, "tqdm", Interrupting)

    return arm


INTERRUPTIONS = {
    "localities": ("small", "probe search", lambda a: lv.tl.localities(a)),
    "correlations (over modules)": ("small_lava", "locality correlations", lambda a: lv.tl.correlations(a, fdr=0.2)),
    "modules (from scratch)": ("small", "module activity", lambda a: lv.tl.modules(a)),
    "modules (from scratch, in correlations)": ("small", "locality correlations", lambda a: lv.tl.modules(a)),
    "modules (rerun)": ("small_lava", "module activity", lambda a: lv.tl.modules(a, resolution=2.0)),
    "differential": (
        "small_lava",
        "replicate correlations",
        lambda a: lv.tl.differential(a, "condition", replicate="donor", within="cell_type"),
    ),
    "score (computes localities)": ("small", "module scores", lambda a: lv.tl.score(a, {"m": ["typeB_0", "typeB_1"]})),
    "score": ("small_lava", "module scores", lambda a: lv.tl.score(a, {"m": ["typeB_0", "typeB_1"]})),
}


@pytest.mark.parametrize("case", list(INTERRUPTIONS))
def test_ctrl_c_leaves_adata_as_it_was(starts, interrupt, case):
    start, desc, run = INTERRUPTIONS[case]
    before = starts[start]
    adata = before.copy()
    interrupt(desc)
    with pytest.raises(KeyboardInterrupt):
        run(adata)
    assert interrupt.calls == 3  # it was interrupted where intended
    assert_same_adata(adata, before)


def test_failure_midway_leaves_adata_as_it_was(small, monkeypatch):
    """Not only Ctrl-C: an error after the missing steps ran leaves no half-written results."""
    import lava_sc.tl._modules as modules_module

    def boom(*args, **kwargs):
        raise MemoryError("simulated")

    monkeypatch.setattr(modules_module, "locality_activity", boom)
    adata = small.copy()
    with pytest.raises(MemoryError):
        lv.tl.modules(adata)
    assert_same_adata(adata, small)


def test_ctrl_c_on_a_view(small, interrupt):
    reference = small.copy()
    view = small[:500]
    interrupt("module activity")
    with pytest.raises(KeyboardInterrupt):
        lv.tl.modules(view)
    assert_same_adata(small, reference)  # the parent is untouched
    assert_same_adata(view.copy() if view.is_view else view, reference[:500].copy())
