"""Bad input over the public API (issue 6, "Reliability").

Every case either works and gives the right result, or raises ValueError / KeyError / TypeError whose
message names the offending argument or key and the fix: never an internal numpy / scipy / igraph /
numba error, never a silently wrong result.
"""

import re

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lava_sc as lv

CLEAR = (ValueError, KeyError, TypeError)


# ----------------------------------------------------------------------------------------------------
# helpers


def fresh(small):
    """A copy of the small simulated data without LAVA results."""
    return small.copy()


def with_localities(small):
    adata = small.copy()
    lv.tl.localities(adata, max_evaluations=5)
    return adata


def module_table(adata, key="lava"):
    return lv.get.modules(adata, key=key)


def set_x(adata, x):
    adata.X = x
    return adata


def nan_dense(adata):
    x = adata.X.toarray()
    x[3, 4] = np.nan
    return set_x(adata, x)


def inf_sparse(adata):
    x = adata.X.copy()
    x.data[0] = np.inf
    return set_x(adata, x)


def bad_embedding(adata, value):
    adata.obsm["X_umap"] = adata.obsm["X_umap"].copy()
    adata.obsm["X_umap"][7, 1] = value
    return adata


# ----------------------------------------------------------------------------------------------------
# the battery: (id, call(small, small_lava), exception, match)

SETS = {"s1": ["typeB_0", "typeB_1", "typeB_2", "typeB_3"]}

CASES = [
    # missing / misnamed basis
    ("localities basis missing", lambda s, r: lv.tl.localities(fresh(s), "X_pca"), KeyError, "basis"),
    ("localities basis not str", lambda s, r: lv.tl.localities(fresh(s), 5), TypeError, "basis"),
    ("modules basis missing", lambda s, r: lv.tl.modules(fresh(s), basis="tsne"), KeyError, "basis"),
    ("score basis missing", lambda s, r: lv.tl.score(fresh(s), SETS, basis="X_pca"), KeyError, "basis"),
    ("pl.activity basis missing", lambda s, r: lv.pl.activity(r, basis="tsne", show=False), KeyError, "basis"),
    ("pl.localities basis missing", lambda s, r: lv.pl.localities(r, basis="tsne", show=False), KeyError, "basis"),
    # missing / misnamed layer
    (
        "correlations layer missing",
        lambda s, r: lv.tl.correlations(r.copy(), layer="logcounts"),
        KeyError,
        "layer=None",
    ),
    ("correlations layer not str", lambda s, r: lv.tl.correlations(r.copy(), layer=0), TypeError, "layer"),
    ("modules layer missing", lambda s, r: lv.tl.modules(fresh(s), layer="logcounts"), KeyError, "layer"),
    ("score layer missing", lambda s, r: lv.tl.score(r.copy(), SETS, layer="logcounts"), KeyError, "layer"),
    # missing / misnamed key
    ("correlations key missing", lambda s, r: lv.tl.correlations(fresh(s), key="nope"), KeyError, "key_added='nope'"),
    ("localities key empty", lambda s, r: lv.tl.localities(fresh(s), key_added=""), TypeError, "key"),
    ("modules key not str", lambda s, r: lv.tl.modules(fresh(s), key=3), TypeError, "key"),
    ("get.modules key", lambda s, r: lv.get.modules(r, key="nope"), KeyError, r"tl\.modules\(adata, key='nope'\)"),
    ("get.module_genes key", lambda s, r: lv.get.module_genes(r, key="nope"), KeyError, "key='nope'"),
    ("get.activity key", lambda s, r: lv.get.activity(r, key="nope"), KeyError, "key='nope'"),
    ("get.gene_sets key", lambda s, r: lv.get.gene_sets(r, key="nope"), KeyError, "key='nope'"),
    ("get.enrichment key", lambda s, r: lv.get.enrichment(r, key="nope"), KeyError, "key='nope'"),
    ("get.differential key", lambda s, r: lv.get.differential(r, key="nope"), KeyError, "key='nope'"),
    (
        "differential key",
        lambda s, r: lv.tl.differential(r.copy(), replicate="donor", key="nope"),
        KeyError,
        "key='nope'",
    ),
    ("enrich key", lambda s, r: lv.tl.enrich(r.copy(), SETS, key="nope"), KeyError, "key='nope'"),
    ("score key_added == key", lambda s, r: lv.tl.score(r.copy(), SETS, key_added="lava"), ValueError, "key_added"),
    ("pl.activity key", lambda s, r: lv.pl.activity(r, key="nope", show=False), KeyError, "key='nope'"),
    ("pl.localities key", lambda s, r: lv.pl.localities(r, key="nope", show=False), KeyError, "key_added='nope'"),
    ("pl.module_network key", lambda s, r: lv.pl.module_network(r, "M1", key="nope", show=False), KeyError, "nope"),
    ("pl.module_pixels key", lambda s, r: lv.pl.module_pixels(r, key="nope", show=False), KeyError, "nope"),
    ("pl.differential key", lambda s, r: lv.pl.differential(r, key="nope", show=False), KeyError, "nope"),
    # obs columns
    ("differential groupby", lambda s, r: lv.tl.differential(r.copy(), "cond"), KeyError, "groupby"),
    ("differential replicate", lambda s, r: lv.tl.differential(r.copy(), replicate="sample"), KeyError, "replicate"),
    ("differential within", lambda s, r: lv.tl.differential(r.copy(), within="celltype"), KeyError, "within"),
    ("correlations partial_out", lambda s, r: lv.tl.correlations(r.copy(), partial_out="X_pca"), KeyError, "partial"),
    (
        "partial_out non-numeric obsm",
        lambda s, r: lv.tl.correlations(str_embedding(r.copy()), partial_out="X_str"),
        TypeError,
        "partial_out",
    ),
    # results that no longer belong together (entries replaced by hand)
    (
        "membership replaced, modules",
        lambda s, r: lv.tl.modules(fewer_localities(r.copy()), resolution=2.0),
        ValueError,
        "localities",
    ),
    (
        "membership replaced, correlations",
        lambda s, r: lv.tl.correlations(fewer_localities(r.copy())),
        ValueError,
        "probes",
    ),
    (
        "membership replaced, score",
        lambda s, r: lv.tl.score(fewer_localities(r.copy()), SETS),
        ValueError,
        "localities",
    ),
    (
        "membership replaced, pl.localities",
        lambda s, r: lv.pl.localities(fewer_localities(r.copy()), show=False),
        ValueError,
        "rerun",
    ),
    ("activity replaced", lambda s, r: lv.get.activity(other_activity(r.copy())), ValueError, "modules"),
    # unknown modules
    ("pl.activity module", lambda s, r: lv.pl.activity(r, "M99", show=False), KeyError, "M99"),
    ("pl.module_network module", lambda s, r: lv.pl.module_network(r, "M99", show=False), KeyError, "M99"),
    ("pl.module_network module type", lambda s, r: lv.pl.module_network(r, 1, show=False), TypeError, "module"),
    ("get.enrichment module", lambda s, r: lv.get.enrichment(r, module=3), TypeError, "module"),
    ("get.enrichment unknown module", lambda s, r: lv.get.enrichment(r, module="M99"), KeyError, "M99"),
    # NaN / inf
    ("NaN in X", lambda s, r: lv.tl.correlations(nan_dense(r.copy())), ValueError, "NaN"),
    ("inf in sparse X", lambda s, r: lv.tl.modules(inf_sparse(fresh(s))), ValueError, "NaN or inf"),
    ("NaN in X for score", lambda s, r: lv.tl.score(nan_dense(r.copy()), SETS), ValueError, "NaN"),
    ("NaN in embedding", lambda s, r: lv.tl.localities(bad_embedding(fresh(s), np.nan)), ValueError, "NaN"),
    ("inf in embedding", lambda s, r: lv.tl.modules(bad_embedding(fresh(s), np.inf)), ValueError, "X_umap"),
    (
        "NaN in plotted embedding",
        lambda s, r: lv.pl.activity(bad_embedding(r.copy(), np.nan), show=False),
        ValueError,
        "NaN",
    ),
    # non-numeric arrays
    (
        "string X",
        lambda s, r: lv.tl.correlations(set_x(r.copy(), np.full(r.shape, "a", dtype=object))),
        TypeError,
        "numeric",
    ),
    ("string embedding", lambda s, r: lv.tl.localities(str_embedding(fresh(s)), "X_str"), TypeError, "numeric"),
    # empty AnnData / too few cells
    ("no cells", lambda s, r: lv.tl.localities(s[:0].copy()), ValueError, "empty"),
    ("no genes", lambda s, r: lv.tl.modules(s[:, :0].copy()), ValueError, "empty"),
    ("get on empty", lambda s, r: lv.get.modules(r[:0]), ValueError, "empty"),
    ("5 cells", lambda s, r: lv.tl.localities(s[:5].copy()), ValueError, "cells"),
    ("n_cells above n_obs", lambda s, r: lv.tl.localities(s[:40].copy(), n_cells=50), ValueError, "n_cells"),
    ("not an AnnData", lambda s, r: lv.tl.modules(s.X), TypeError, "AnnData"),
    ("get on DataFrame", lambda s, r: lv.get.activity(s.obs), TypeError, "AnnData"),
    # zero / negative / huge / wrongly typed parameters
    ("n_cells zero", lambda s, r: lv.tl.localities(fresh(s), n_cells=0), ValueError, "n_cells"),
    ("n_cells negative", lambda s, r: lv.tl.localities(fresh(s), n_cells=-5), ValueError, "n_cells"),
    ("n_cells huge", lambda s, r: lv.tl.localities(fresh(s), n_cells=10**12), ValueError, "n_cells"),
    ("n_cells float", lambda s, r: lv.tl.localities(fresh(s), n_cells=50.5), TypeError, "n_cells"),
    ("n_cells bool", lambda s, r: lv.tl.localities(fresh(s), n_cells=True), TypeError, "n_cells"),
    ("n_cells str", lambda s, r: lv.tl.localities(fresh(s), n_cells="50"), TypeError, "n_cells"),
    ("overlap zero", lambda s, r: lv.tl.localities(fresh(s), overlap=0), ValueError, "overlap"),
    ("overlap huge", lambda s, r: lv.tl.localities(fresh(s), overlap=1e12), ValueError, "overlap"),
    ("overlap nan", lambda s, r: lv.tl.localities(fresh(s), overlap=float("nan")), ValueError, "overlap"),
    ("random_state negative", lambda s, r: lv.tl.localities(fresh(s), random_state=-1), ValueError, "random_state"),
    ("knn_method", lambda s, r: lv.tl.localities(fresh(s), knn_method="annoy"), ValueError, "knn_method"),
    ("fdr zero", lambda s, r: lv.tl.correlations(r.copy(), fdr=0), ValueError, "fdr"),
    ("fdr above 1", lambda s, r: lv.tl.correlations(r.copy(), fdr=2), ValueError, "fdr"),
    ("min_abs_r negative", lambda s, r: lv.tl.correlations(r.copy(), min_abs_r=-0.1), ValueError, "min_abs_r"),
    ("max_partners zero", lambda s, r: lv.tl.correlations(r.copy(), max_partners=0), ValueError, "max_partners"),
    ("n_jobs zero", lambda s, r: lv.tl.correlations(r.copy(), n_jobs=0), ValueError, "n_jobs"),
    ("alternative", lambda s, r: lv.tl.correlations(r.copy(), alternative="less"), ValueError, "alternative"),
    ("resolution zero", lambda s, r: lv.tl.modules(r.copy(), resolution=0), ValueError, "resolution"),
    ("resolution inf", lambda s, r: lv.tl.modules(r.copy(), resolution=np.inf), ValueError, "resolution"),
    ("rank zero", lambda s, r: lv.tl.modules(r.copy(), method="nmf", rank=0), ValueError, "rank"),
    ("min_genes one", lambda s, r: lv.tl.modules(r.copy(), min_genes=1), ValueError, "min_genes"),
    ("n_neighbors negative", lambda s, r: lv.tl.modules(r.copy(), n_neighbors=-1), ValueError, "n_neighbors"),
    ("method", lambda s, r: lv.tl.modules(r.copy(), method="louvain"), ValueError, "method"),
    (
        "min_cells zero",
        lambda s, r: lv.tl.differential(r.copy(), replicate="donor", min_cells=0),
        ValueError,
        "min_cells",
    ),
    (
        "statistic",
        lambda s, r: lv.tl.differential(r.copy(), replicate="donor", statistic="mean"),
        ValueError,
        "statistic",
    ),
    (
        "differential min_effect",
        lambda s, r: lv.tl.differential(r.copy(), replicate="donor", min_effect=-0.1),
        ValueError,
        "min_effect",
    ),
    ("enrich max_size", lambda s, r: lv.tl.enrich(r.copy(), SETS, min_size=5, max_size=2), ValueError, "max_size"),
    ("enrich min_size zero", lambda s, r: lv.tl.enrich(r.copy(), SETS, min_size=0), ValueError, "min_size"),
    ("score min_detected", lambda s, r: lv.tl.score(r.copy(), SETS, min_detected=1.5), ValueError, "min_detected"),
    ("get.activity level", lambda s, r: lv.get.activity(r, level="genes"), ValueError, "level"),
    ("get.gene_sets min_score", lambda s, r: lv.get.gene_sets(r, min_score="high"), TypeError, "min_score"),
    ("pl.activity ax", lambda s, r: lv.pl.activity(r, ax="left", show=False), TypeError, "ax"),
    ("pl.activity ncols", lambda s, r: lv.pl.activity(r, ncols=0, show=False), ValueError, "ncols"),
    (
        "pl.localities show_members",
        lambda s, r: lv.pl.localities(r, show_members=10**6, show=False),
        ValueError,
        "Locality",
    ),
    ("pl.module_pixels shape", lambda s, r: lv.pl.module_pixels(r, shape=(7, 7), show=False), ValueError, "shape"),
    # duplicate / unknown gene names, constant genes
    ("duplicate var_names", lambda s, r: lv.tl.correlations(dup_names(r.copy())), ValueError, "var_names_make_unique"),
    ("duplicate var_names score", lambda s, r: lv.tl.score(dup_names(r.copy()), SETS), ValueError, "var_names"),
    ("unknown genes", lambda s, r: lv.tl.correlations(r.copy(), genes=["typeB_0", "CD3E"]), KeyError, "CD3E"),
    ("genes twice", lambda s, r: lv.tl.correlations(r.copy(), genes=["typeB_0", "typeB_0"]), ValueError, "twice"),
    ("genes as one string", lambda s, r: lv.tl.correlations(r.copy(), genes="typeB_0"), TypeError, "genes"),
    ("genes mask length", lambda s, r: lv.tl.correlations(r.copy(), genes=np.ones(3, bool)), ValueError, "mask"),
    (
        "constant requested genes",
        lambda s, r: lv.tl.correlations(constant(r.copy(), 3), genes=list(r.var_names[:5])),
        ValueError,
        "constant",
    ),
    ("all genes constant", lambda s, r: lv.tl.modules(constant(fresh(s), s.n_vars)), ValueError, "non-constant"),
    ("score unknown genes only", lambda s, r: lv.tl.score(r.copy(), {"x": ["A", "B", "C"]}), ValueError, "var_names"),
    ("enrich no shared gene", lambda s, r: lv.tl.enrich(r.copy(), {"x": ["A", "B", "C"]}), ValueError, "universe"),
    ("enrich gene set type", lambda s, r: lv.tl.enrich(r.copy(), [("x", ["A"])]), TypeError, "gene_sets"),
    ("enrich gene not str", lambda s, r: lv.tl.enrich(r.copy(), {"x": [1, 2, 3]}), TypeError, "str"),
    # calling a plot or get before the tool
    ("get.modules before", lambda s, r: lv.get.modules(s), KeyError, r"lava_sc\.tl\.modules\(adata, key='lava'\)"),
    ("get.module_genes before", lambda s, r: lv.get.module_genes(s), KeyError, "tl.modules"),
    ("get.activity before", lambda s, r: lv.get.activity(s), KeyError, "tl.modules"),
    ("get.gene_sets before", lambda s, r: lv.get.gene_sets(s), KeyError, "tl.modules"),
    ("get.enrichment before", lambda s, r: lv.get.enrichment(without(r, "enrichment")), KeyError, "tl.enrich"),
    (
        "get.differential before",
        lambda s, r: lv.get.differential(without(r, "differential")),
        KeyError,
        "tl.differential",
    ),
    ("pl.activity before", lambda s, r: lv.pl.activity(s, show=False), KeyError, "tl.modules"),
    ("pl.localities before", lambda s, r: lv.pl.localities(s, show=False), KeyError, "tl.localities"),
    ("pl.module_network before", lambda s, r: lv.pl.module_network(s, "M1", show=False), KeyError, "tl.modules"),
    ("pl.module_pixels before", lambda s, r: lv.pl.module_pixels(s, show=False), KeyError, "tl.modules"),
    (
        "pl.differential before",
        lambda s, r: lv.pl.differential(without(r, "differential"), show=False),
        KeyError,
        "tl.differential",
    ),
    (
        "differential before modules",
        lambda s, r: lv.tl.differential(s.copy(), replicate="donor"),
        KeyError,
        "tl.modules",
    ),
    ("enrich before modules", lambda s, r: lv.tl.enrich(s.copy(), SETS), KeyError, "tl.modules"),
    ("correlations before localities", lambda s, r: lv.tl.correlations(s.copy()), KeyError, "tl.localities"),
    ("score modules from bare AnnData", lambda s, r: lv.tl.score(r.copy(), s), KeyError, "tl.modules"),
    # the explainers LAVA is compared with, and the stability assay (issue 5)
    ("cocoa not an AnnData", lambda s, r: lv.explain.corpus_attribution(s.X, t1(s)), TypeError, "AnnData"),
    ("cocoa without PCA", lambda s, r: lv.explain.corpus_attribution(s.copy(), t1(s)), KeyError, r"sc\.pp\.pca"),
    ("cocoa corpus column", lambda s, r: lv.explain.corpus_attribution(with_pca(s), "celltype"), KeyError, "corpus"),
    (
        "cocoa corpus level",
        lambda s, r: lv.explain.corpus_attribution(with_pca(s), ("cell_type", "T9")),
        ValueError,
        "T9",
    ),
    (
        "cocoa empty corpus",
        lambda s, r: lv.explain.corpus_attribution(with_pca(s), np.zeros(s.n_obs, bool)),
        ValueError,
        "empty",
    ),
    ("cocoa NaN in X", lambda s, r: lv.explain.corpus_attribution(nan_dense(with_pca(s)), t1(s)), ValueError, "NaN"),
    ("cocoa n_steps", lambda s, r: lv.explain.corpus_attribution(with_pca(s), t1(s), n_steps=0), ValueError, "n_steps"),
    (
        "cocoa method",
        lambda s, r: lv.explain.corpus_attribution(with_pca(s), t1(s), method="shap"),
        ValueError,
        "method",
    ),
    (
        "label-free groupby",
        lambda s, r: lv.explain.label_free_importance(with_pca(s), groupby="ct"),
        KeyError,
        "groupby",
    ),
    (
        "label-free encoder",
        lambda s, r: lv.explain.label_free_importance(with_pca(s), encoder="vae"),
        ValueError,
        "encoder",
    ),
    ("label-free NaN in X", lambda s, r: lv.explain.label_free_importance(nan_dense(with_pca(s))), ValueError, "NaN"),
    (
        "DAC groupby",
        lambda s, r: lv.explain.counterfactual_attribution(s.copy(), "ct", group_a="T1", group_b="T2"),
        KeyError,
        "groupby",
    ),
    (
        "DAC level",
        lambda s, r: lv.explain.counterfactual_attribution(s.copy(), "cell_type", group_a="T1", group_b="T9"),
        ValueError,
        "T9",
    ),
    (
        "DAC same groups",
        lambda s, r: lv.explain.counterfactual_attribution(s.copy(), "cell_type", group_a="T1", group_b="T1"),
        ValueError,
        "differ",
    ),
    (
        "DAC NaN in X",
        lambda s, r: lv.explain.counterfactual_attribution(
            nan_dense(s.copy()), "cell_type", group_a="T1", group_b="T2"
        ),
        ValueError,
        "NaN",
    ),
    (
        "DAC C",
        lambda s, r: lv.explain.counterfactual_attribution(s.copy(), "cell_type", group_a="T1", group_b="T2", C=-1),
        ValueError,
        "`C`",
    ),
    (
        "faithfulness before modules",
        lambda s, r: lv.explain.module_faithfulness(s.copy(), "cell_type", group_a="T1", group_b="T2"),
        KeyError,
        "tl.modules",
    ),
    (
        "faithfulness unknown module",
        lambda s, r: lv.explain.module_faithfulness(r.copy(), "cell_type", group_a="T1", group_b="T2", modules="M99"),
        KeyError,
        "M99",
    ),
    ("stability factor", lambda s, r: lv.explain.stability(r.copy(), {"alpha": [0.1]}), ValueError, "alpha"),
    ("stability vary type", lambda s, r: lv.explain.stability(r.copy(), [("fdr", [0.1])]), TypeError, "vary"),
    (
        "stability n_repeats",
        lambda s, r: lv.explain.stability(r.copy(), {"fdr": [0.1]}, n_repeats=0),
        ValueError,
        "n_repeats",
    ),
    (
        "stability basis",
        lambda s, r: lv.explain.stability(r.copy(), {"fdr": [0.1]}, basis="X_tsne"),
        KeyError,
        "X_tsne",
    ),
]


def t1(small):
    """The T1 cells as a boolean mask (a corpus)."""
    return small.obs["cell_type"].eq("T1").to_numpy()


def with_pca(small):
    import scanpy as sc

    adata = small.copy()
    sc.pp.pca(adata, n_comps=10, mask_var=None, random_state=0)
    return adata


def without(adata, entry):
    adata = adata.copy()
    del adata.uns["lava"][entry]
    return adata


def fewer_localities(adata):
    adata.obsm["lava_localities"] = adata.obsm["lava_localities"][:, :5]
    return adata


def other_activity(adata):
    adata.obsm["lava_activity"] = np.zeros((adata.n_obs, 7))
    return adata


def str_embedding(adata):
    adata.obsm["X_str"] = np.full((adata.n_obs, 2), "a")
    return adata


def dup_names(adata):
    names = adata.var_names.to_numpy().copy()
    names[1] = names[0]
    adata.var_names = names
    return adata


def constant(adata, n_genes):
    x = adata.X.toarray() if sp.issparse(adata.X) else np.array(adata.X)
    x[:, :n_genes] = 1.0
    return set_x(adata, x)


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize(("call", "error", "match"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_raises_clear_error(small, small_all, call, error, match):
    with pytest.raises(error, match=match):
        call(small, small_all)


def test_battery_ids_unique():
    ids = [c[0] for c in CASES]
    assert len(ids) == len(set(ids))


# ----------------------------------------------------------------------------------------------------
# the "run this first" hints are calls that work

HINT = re.compile(r"lava_sc\.tl\.(\w+)\(adata, (gene_sets, |modules, )?(key|key_added)='(\w+)'\)")


@pytest.mark.parametrize(
    "accessor",
    [lv.get.modules, lv.get.module_genes, lv.get.activity, lv.get.gene_sets],
    ids=lambda f: f.__name__,
)
def test_missing_result_hint_is_a_working_call(small, accessor):
    adata = small.copy()
    with pytest.raises(KeyError) as info:
        accessor(adata, key="other")
    match = HINT.search(str(info.value))
    assert match is not None, str(info.value)
    tool, _, argument, key = match.groups()
    assert key == "other"
    getattr(lv.tl, tool)(adata, **{argument: key})  # the call the message asks for
    assert len(accessor(adata, key="other")) >= 0


def test_correlations_hint_is_a_working_call(small):
    adata = small.copy()
    with pytest.raises(KeyError) as info:
        lv.tl.correlations(adata, key="other")
    tool, _, argument, key = HINT.search(str(info.value)).groups()
    assert (tool, argument) == ("localities", "key_added")
    getattr(lv.tl, tool)(adata, **{argument: key}, max_evaluations=5)
    lv.tl.correlations(adata, key="other")
    assert "sketch" in adata.uns["other"]


# ----------------------------------------------------------------------------------------------------
# inputs that must work, with the same result


@pytest.fixture(scope="module")
def small_loc(small):
    """``small`` with the default localities only (they do not depend on X): copy before use."""
    adata = small.copy()
    lv.tl.localities(adata)
    return adata


def formats(x):
    """The same matrix as CSC, COO, csr_array, coo_array and dense."""
    return {
        "csc": sp.csc_matrix(x),
        "coo": sp.coo_matrix(x),
        "csr_array": sp.csr_array(x),
        "coo_array": sp.coo_array(x),
        "dense": x.toarray(),
    }


@pytest.mark.parametrize("fmt", ["csc", "coo", "csr_array", "coo_array", "dense"])
def test_matrix_formats_give_same_modules(small_loc, small_lava, fmt):
    adata = small_loc.copy()
    try:
        adata.X = formats(small_loc.X)[fmt]
    except ValueError as err:  # anndata >= 0.10 refuses COO itself, with a clear message
        assert "CSR and CSC" in str(err)
        pytest.skip(f"anndata does not store {fmt} matrices")
    lv.tl.modules(adata, random_state=0)
    pd.testing.assert_frame_equal(module_table(adata), module_table(small_lava))
    pd.testing.assert_frame_equal(lv.get.activity(adata), lv.get.activity(small_lava))


def test_float64_x_gives_same_modules(small_loc, small_lava):
    adata = small_loc.copy()
    adata.X = small_loc.X.astype(np.float64)
    lv.tl.modules(adata, random_state=0)
    pd.testing.assert_frame_equal(module_table(adata), module_table(small_lava))


@pytest.fixture(scope="module")
def counts_float(small_loc):
    """Integer-valued expression (the counts layer, log1p of the counts would not be integer) as float32."""
    adata = small_loc.copy()
    adata.X = sp.csr_matrix(small_loc.layers["counts"], dtype=np.float32)
    lv.tl.modules(adata, random_state=0)
    return adata


@pytest.mark.parametrize("dtype", [np.int64, np.uint16])
def test_integer_x_gives_same_modules(small_loc, counts_float, dtype):
    adata = small_loc.copy()
    adata.X = sp.csr_matrix(small_loc.layers["counts"]).astype(dtype)
    lv.tl.modules(adata, random_state=0)
    pd.testing.assert_frame_equal(module_table(adata), module_table(counts_float))


def test_float16_x_gives_same_modules_as_its_float32_values(small_loc):
    half = small_loc.X.toarray().astype(np.float16)
    a16, a32 = small_loc.copy(), small_loc.copy()
    a16.X = half
    a32.X = sp.csr_matrix(half.astype(np.float32))
    lv.tl.modules(a16, random_state=0)
    lv.tl.modules(a32, random_state=0)
    assert len(module_table(a32)) > 0
    pd.testing.assert_frame_equal(module_table(a16), module_table(a32))


def test_layer_gives_same_modules_as_x(small_loc, small_lava):
    adata = small_loc.copy()
    adata.layers["logn"] = small_loc.X.copy()
    adata.X = sp.csr_matrix(small_loc.layers["counts"], dtype=np.float32)
    lv.tl.modules(adata, layer="logn", random_state=0)
    pd.testing.assert_frame_equal(module_table(adata), module_table(small_lava))


def test_view_works_like_its_copy(small):
    mask = small.obs["cell_type"].to_numpy() != "T4"
    view = small[mask]
    assert view.is_view
    copy = view.copy()
    lv.tl.modules(view, random_state=0)  # anndata turns the view into an actual object on the first write
    lv.tl.modules(copy, random_state=0)
    pd.testing.assert_frame_equal(module_table(view), module_table(copy))
    pd.testing.assert_frame_equal(lv.get.activity(view), lv.get.activity(copy))
    assert "lava" not in small.uns and "lava_localities" not in small.obsm  # the parent is untouched


def test_view_with_copy_true(small):
    view = small[:500]
    out = lv.tl.modules(view, random_state=0, copy=True)
    assert view.is_view and "lava" not in view.uns
    assert out.n_obs == 500 and "lava_activity" in out.obsm


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("dense", [False, True], ids=["sparse", "dense"])
def test_backed_works_like_in_memory(small, small_lava, tmp_path, dense):
    path = tmp_path / "small.h5ad"
    stored = small.copy()
    if dense:
        stored.X = stored.X.toarray()
    stored.write_h5ad(path)
    backed = ad.read_h5ad(path, backed="r")
    try:
        lv.tl.modules(backed, random_state=0)
    except CLEAR as err:  # the other acceptable outcome: a clear error saying how to load it
        assert "to_memory" in str(err)
        return
    pd.testing.assert_frame_equal(module_table(backed), module_table(small_lava))
    pd.testing.assert_frame_equal(lv.get.activity(backed), lv.get.activity(small_lava))
    assert ad.read_h5ad(path).uns.keys() == small.uns.keys()  # nothing was written into the file


def test_one_dimensional_embedding(small):
    adata = small.copy()
    adata.obsm["X_line"] = small.obsm["X_umap"][:, 0].copy()  # 1-d, as a 1-d array
    lv.tl.localities(adata, "X_line", n_cells=60, max_evaluations=5)
    membership = adata.obsm["lava_localities"]
    assert membership.shape[0] == adata.n_obs
    np.testing.assert_array_equal(np.asarray(membership.sum(axis=0)).ravel(), 60)
    lv.tl.modules(adata)
    assert lv.get.activity(adata).shape[0] == adata.n_obs
    with pytest.raises(ValueError, match="2"):
        lv.pl.activity(adata, basis="X_line", show=False)


def test_high_dimensional_embedding(small):
    adata = small.copy()
    adata.obsm["X_hi"] = np.random.default_rng(0).normal(size=(adata.n_obs, 80))
    lv.tl.localities(adata, "X_hi", n_cells=60, max_evaluations=5)
    np.testing.assert_array_equal(np.asarray(adata.obsm["lava_localities"].sum(axis=0)).ravel(), 60)
    assert adata.uns["lava"]["probes"].shape[1] == 80


def test_some_constant_genes_are_skipped(small_lava):
    adata = constant(small_lava.copy(), 3)
    lv.tl.correlations(adata)
    tested = set(adata.uns["lava"]["genes"])
    assert not tested & set(adata.var_names[:3])
    assert len(tested) > 100


def test_few_cells_just_above_minimum(small):
    adata = small[:30].copy()
    lv.tl.modules(adata, random_state=0)  # no or few modules, but no crash
    assert lv.get.activity(adata).shape[0] == 30


def test_huge_parameters_work(small_lava):
    adata = small_lava.copy()
    lv.tl.modules(adata, min_support=10**9, n_neighbors=10**9, resolution=1e9, min_genes=10**6)
    assert len(lv.get.modules(adata)) == 0
    assert lv.get.activity(adata).shape == (adata.n_obs, 0)
    with pytest.raises(ValueError, match="no modules"):
        lv.pl.activity(adata, show=False)
    with pytest.raises(ValueError, match="no modules"):
        lv.tl.differential(adata, replicate="donor")


# ----------------------------------------------------------------------------------------------------
# hypothesis: any parameter value works or is refused clearly by name

NUMBERS = st.one_of(
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.text(max_size=3),
)


@settings(max_examples=20, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(name=st.sampled_from(["n_cells", "overlap", "max_evaluations", "random_state"]), value=NUMBERS)
def test_localities_parameters(small, name, value):
    if name == "max_evaluations" and isinstance(value, int) and value >= 2**31:
        value = 2**31 - 1  # above: see test_max_evaluations_beyond_int32
    adata = small[:100].copy()
    kwargs = {"max_evaluations": 5, name: value}
    try:
        lv.tl.localities(adata, **kwargs)
    except CLEAR as err:
        assert name in str(err)
        return
    membership = adata.obsm["lava_localities"]
    n_cells = adata.uns["lava"]["params"]["localities"]["n_cells"]
    np.testing.assert_array_equal(np.asarray(membership.sum(axis=0)).ravel(), n_cells)


def test_max_evaluations_beyond_int32(small):
    with pytest.raises(ValueError, match="max_evaluations"):
        lv.tl.localities(small[:100].copy(), max_evaluations=2**31)


@settings(max_examples=40, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(
    name=st.sampled_from(["fdr", "min_detected", "min_abs_r", "max_partners", "n_partial_components", "random_state"]),
    value=NUMBERS,
)
def test_correlations_parameters(small_lava, name, value):
    adata = small_lava.copy()
    try:
        lv.tl.correlations(adata, **{name: value})
    except CLEAR as err:
        assert name in str(err)
        return
    sketch = adata.uns["lava"]["sketch"]
    assert sketch.shape == (adata.obsm["lava_localities"].shape[1], len(adata.uns["lava"]["pairs"]))
    assert np.isfinite(sketch.data).all()


@settings(max_examples=40, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(
    name=st.sampled_from(["resolution", "rank", "min_support", "min_genes", "merge_overlap", "n_neighbors"]),
    value=NUMBERS,
)
def test_modules_parameters(small_lava, name, value):
    adata = small_lava.copy()
    kwargs = {name: value, "method": "nmf" if name == "rank" else "leiden"}
    try:
        lv.tl.modules(adata, **kwargs)
    except CLEAR as err:
        assert name in str(err)
        return
    activity = lv.get.activity(adata)
    assert activity.shape[0] == adata.n_obs
    assert list(activity.columns) == list(lv.get.module_genes(adata)["module"].cat.categories)


# ----------------------------------------------------------------------------------------------------
# gene sets files


def test_read_gmt_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        lv.io.read_gmt(tmp_path / "missing.gmt")
    with pytest.raises(TypeError, match="path"):
        lv.io.read_gmt(3)
    spaces = tmp_path / "spaces.gmt"
    spaces.write_text("set1 desc A B C\n")
    with pytest.raises(ValueError, match="TAB"):
        lv.io.read_gmt(spaces)
    twice = tmp_path / "twice.gmt"
    twice.write_text("s\td\tA\ns\td\tB\n")
    with pytest.raises(ValueError, match="twice"):
        lv.io.read_gmt(twice)
    empty = tmp_path / "empty.gmt"
    empty.write_text("\n\n")
    with pytest.raises(ValueError, match="no gene sets"):
        lv.io.read_gmt(empty)


def test_write_gmt_bad_input(tmp_path):
    with pytest.raises(TypeError, match="gene_sets"):
        lv.io.write_gmt(["A", "B"], tmp_path / "x.gmt")
    with pytest.raises(ValueError, match="tabs"):
        lv.io.write_gmt({"a\tb": ["A"]}, tmp_path / "x.gmt")
    with pytest.raises(TypeError, match="description"):
        lv.io.write_gmt({"a": ["A"]}, tmp_path / "x.gmt", description="x\ny")
    with pytest.raises(KeyError, match="source"):
        lv.io.write_gmt(pd.DataFrame({"set": ["a"], "gene": ["A"]}), tmp_path / "x.gmt")
    with pytest.raises(TypeError, match="path"):
        lv.io.write_gmt({"a": ["A"]}, None)


def test_gmt_round_trip_of_modules(small_lava, tmp_path):
    net = lv.get.gene_sets(small_lava)
    lv.io.write_gmt(net, tmp_path / "m.gmt.gz")
    back = lv.io.read_gmt(tmp_path / "m.gmt.gz")
    assert back == {m: net.loc[net["source"] == m, "target"].tolist() for m in pd.unique(net["source"])}
