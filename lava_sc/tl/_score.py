"""``tl.score``: the activity of given modules or gene sets on new data, in its own localities
(transfer of modules between datasets)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from .. import _logging as logg
from .._adata import ensure_localities, gene_columns, nearest_probe, warn_if_counts, writable
from .._core.modules import cell_activity, gene_scores, gene_sides
from .._core.score import module_locality_activity
from .._docs import doc
from .._keys import DEFAULT_KEY, Keys, locality_names
from .._params import LocalitiesSettings, store_params, upstream_of
from .._utils import log_added, progress, restore_on_error
from .._validate import (
    check_adata,
    check_float,
    check_int,
    check_key,
    check_key_added_differs,
    check_localities,
    check_not_lava_slot,
    expression,
)
from ..get._gene_sets import signs
from ..io import as_gene_sets

#: largest gene set scored through all of its pairs (a set of g genes has g (g - 1) / 2 pairs)
MAX_SET_GENES = 1000


@dataclass
class ModulePairs:
    """Gene pairs of the modules to score (gene names, module codes into ``names``)."""

    names: list[str]
    gene_a: np.ndarray
    gene_b: np.ndarray
    module: np.ndarray
    weight: np.ndarray
    support: np.ndarray
    scores: pd.DataFrame | None  # module, gene, score, sign when the input carried gene scores or signs
    source: str

    def subset(self, keep: np.ndarray) -> ModulePairs:
        return ModulePairs(
            self.names,
            self.gene_a[keep],
            self.gene_b[keep],
            self.module[keep],
            self.weight[keep],
            self.support[keep],
            self.scores,
            self.source,
        )


@doc()
def score(
    adata: AnnData,
    modules,
    *,
    key: str = DEFAULT_KEY,
    key_added: str = "lava_score",
    layer: str | None = None,
    min_detected: float = 0.1,
    basis: str = "X_umap",
    random_state: int = 0,
    copy: bool = False,
) -> AnnData | None:
    """Activity of known modules or gene sets on (new) data: transfer LAVA modules between datasets.

    A module is active in a locality when its gene pairs correlate there. For every locality of
    ``adata`` (``uns[key]``, from :func:`~lava_sc.tl.localities`) the Pearson correlation of only the
    modules' pairs is computed among the locality's cells, and the locality activity is the
    weighted mean ``r`` of each module's pairs, with the rule of :func:`~lava_sc.tl.modules`: a pair
    counts as 0 where one of its genes is detected in fewer than ``min_detected`` of the cells, and a
    gene constant in a locality has ``r = 0``. A cell's activity is the mean over the localities
    that contain it (the nearest probe's locality for cells in none). Scored with its own modules
    table, a dataset gets back exactly the activity of :func:`~lava_sc.tl.modules` (with the
    default ``min_detected`` and without ``partial_out``: correlations here are never partial).

    Parameters
    ----------
    adata
        Annotated data to score (log-normalised expression, an embedding in ``obsm[basis]``).
    modules
        What to score:

        * the pairs table of :func:`lava_sc.get.modules` of a reference (``module, gene_a, gene_b``,
          optional ``weight`` (default 1) and ``support``): these pairs with these weights;
        * an :class:`~anndata.AnnData` with LAVA modules under ``key``: its modules table;
        * gene sets: a ``dict`` name -> genes, a GMT file path, a module-genes table (``module,
          gene``, optional ``score``, as from :func:`lava_sc.get.module_genes`) or a decoupler net
          (``source, target``, optional ``weight``, as from :func:`lava_sc.get.gene_sets`). Every
          pair of a set's genes is scored with weight ``s_a s_b``, the product of the two genes'
          signs (the ``sign`` column of a module-genes table, or the sign of a net's ``weight``;
          +1 when absent), so a signed module's anti-correlated halves count for it (sets of at
          most 1,000 genes).

        Module names must be strings. Pairs with a gene missing from ``adata.var_names`` are
        dropped with a warning; a module left without pairs gets NaN activity (with a warning) and
        an error is raised when no module has pairs left.
    key
        Key of the localities of ``adata``; when they are missing they are computed with
        ``lava_sc.tl.localities(adata, basis=basis, random_state=random_state, key_added=key)``.
        Also the key of the LAVA results when ``modules`` is an AnnData.
    key_added
        Where the scores are written; must differ from ``key``.
    {layer}
    min_detected
        A pair counts as 0 in a locality where one of its genes is detected (above its minimum over
        all cells) in fewer than this fraction of the locality's cells.
    basis, random_state
        Used only when the localities must be computed first.
    {copy}

    Returns
    -------
    ``None`` or the copy. Writes ``obsm[f"{key_added}_activity"]`` (DataFrame cells x modules) and
    ``uns[key_added]`` with ``locality_activity`` (localities x modules), ``modules`` (the pairs
    scored: ``module, gene_a, gene_b, weight, support``; support 0 for gene-set input),
    ``module_genes`` (``module, gene, score, sign``) and ``params``, so that
    ``lava_sc.get.activity(adata, key=key_added)`` and ``lava_sc.pl.activity(adata, key=key_added)``
    work on the scores.

    Examples
    --------
    >>> import lava_sc as lv
    >>> lv.tl.modules(ref)  # doctest: +SKIP
    >>> lv.tl.score(query, lv.get.modules(ref))  # doctest: +SKIP
    >>> lv.pl.activity(query, key="lava_score")  # doctest: +SKIP
    """
    check_adata(adata)
    key = check_key(key)
    key_added = check_key(key_added)
    check_key_added_differs(key_added, key, "the localities (and any LAVA results) of adata", "lava_score")
    min_detected = check_float("min_detected", min_detected, low=0.0, high=1.0)
    random_state = check_int("random_state", random_state, low=0)
    if not adata.var_names.is_unique:
        raise ValueError("adata.var_names has duplicates; run adata.var_names_make_unique() first.")
    check_not_lava_slot(adata, key_added, entries=(Keys.probes, Keys.sketch))  # modules: its own output
    pairs = module_pairs(modules, key)
    values = expression(adata, layer)
    warn_if_counts(adata, values, layer, "tl.score")
    pairs = drop_missing(pairs, adata.var_names)

    adata = writable(adata, copy)
    with restore_on_error(adata):  # interrupted (Ctrl-C) or failed: adata as it was
        keys = Keys(key)
        ensure_localities(adata, key, basis, random_state)
        check_localities(adata, key)
        membership = sp.csc_matrix(adata.obsm[keys.obsm_localities])
        if membership.shape[0] != adata.n_obs:
            raise ValueError(f"obsm[{keys.obsm_localities!r}] does not match the cells; rerun lava_sc.tl.localities.")

        start = logg.info(
            f"scoring {len(pairs.names)} modules ({len(pairs.gene_a)} gene pairs) in {membership.shape[1]} localities"
        )
        loc_act = locality_activity(values, adata.var_names, membership, pairs, min_detected)
        cell_act = cell_activity(membership, loc_act, nearest_probe(adata, key))
        write_scores(adata, key_added, pairs, loc_act, cell_act)
        store_params(
            adata,
            key_added,
            "score",
            dict(
                key=key,
                modules=pairs.source,
                layer=layer,
                min_detected=min_detected,
                basis=LocalitiesSettings.read(adata, key).basis,
                random_state=random_state,
                n_pairs=len(pairs.gene_a),
            ),
            upstream=upstream_of(adata, key_added, "localities", other_key=key),
            result=(loc_act, cell_act),
        )
        log_added(
            f"{len(pairs.names)} module scores",
            start,
            [
                f"'{key_added}': 'locality_activity', 'modules', 'module_genes', 'params' (adata.uns)",
                f"'{Keys(key_added).obsm_activity}', module activity per cell (adata.obsm)",
            ],
        )
    return adata if copy else None


def module_pairs(modules, key: str) -> ModulePairs:
    """The pairs to score from any accepted input (see :func:`score`)."""
    if isinstance(modules, AnnData):
        if key not in modules.uns or Keys.modules not in modules.uns[key]:
            raise KeyError(
                f"The reference AnnData passed as `modules` has no LAVA modules under key {key!r}; run "
                f"lava_sc.tl.modules(reference, key={key!r}) on it first (or pass lava_sc.get.modules(reference))."
            )
        return pairs_from_table(modules.uns[key][Keys.modules], source=f"AnnData uns[{key!r}]")
    if isinstance(modules, pd.DataFrame) and {"gene_a", "gene_b"} <= set(modules.columns):
        return pairs_from_table(modules, source="pairs table")
    if isinstance(modules, pd.DataFrame):
        return pairs_from_sets(*sets_from_frame(modules), source="gene-set table")
    if isinstance(modules, (Mapping, str, os.PathLike)):
        source = str(modules) if isinstance(modules, (str, os.PathLike)) else "dict"
        return pairs_from_sets(as_gene_sets(modules, what="modules"), None, source=source)
    raise TypeError(
        "`modules` must be lava_sc.get.modules(reference), a reference AnnData with LAVA modules, a dict "
        f"name -> genes, a GMT path, or a DataFrame with 'module, gene' or 'source, target'; got {type(modules).__name__}."
    )


def pairs_from_table(table: pd.DataFrame, *, source: str) -> ModulePairs:
    """Pairs from a ``module, gene_a, gene_b[, weight, support]`` table (module order kept)."""
    if "module" not in table.columns:
        raise KeyError(
            f"The pairs table passed as `modules` lacks a 'module' column (has {list(table.columns)}); "
            "pass lava_sc.get.modules(reference) or add the module of each pair."
        )
    labels = table["module"]
    if isinstance(labels.dtype, pd.CategoricalDtype):
        names = [c for c in labels.cat.categories if c in set(labels)]
    else:
        names = list(pd.unique(labels))
    for column, values in (("module", names), ("gene_a", table["gene_a"]), ("gene_b", table["gene_b"])):
        bad = [v for v in values if not isinstance(v, str)]
        if bad:
            raise TypeError(
                f"Column {column!r} of `modules` must hold strings, found {bad[0]!r}; convert with astype(str)."
            )
    gene_a = table["gene_a"].to_numpy(dtype=object).astype(str)
    gene_b = table["gene_b"].to_numpy(dtype=object).astype(str)
    if np.any(gene_a == gene_b):
        raise ValueError(f"`modules` pairs a gene with itself (e.g. {gene_a[gene_a == gene_b][0]!r}); drop those rows.")
    weight = numeric_column(table, "weight", 1.0)
    support = numeric_column(table, "support", 0.0).astype(np.int64)
    module = pd.Index(names).get_indexer(labels.astype(object))
    return ModulePairs([str(n) for n in names], gene_a, gene_b, module, weight, support, None, source)


def numeric_column(table: pd.DataFrame, column: str, default: float) -> np.ndarray:
    if column not in table.columns:
        return np.full(len(table), default)
    values = pd.to_numeric(table[column], errors="coerce").to_numpy(dtype=np.float64)
    if not np.isfinite(values).all():
        raise ValueError(f"Column {column!r} of `modules` must be finite numbers; fill or drop the bad rows.")
    return values


def sets_from_frame(frame: pd.DataFrame) -> tuple[dict[str, list[str]], pd.DataFrame | None]:
    """Gene sets (and gene scores when present) from a module-genes table or a decoupler net."""
    if {"module", "gene"} <= set(frame.columns):
        net = frame.rename(columns={"module": "source", "gene": "target", "score": "weight"})
        if "sign" in net.columns:
            net = net.assign(weight=numeric_column(net, "weight", 1.0) * signs(net))
    elif {"source", "target"} <= set(frame.columns):
        net = frame
    else:
        raise KeyError(
            f"The DataFrame passed as `modules` has columns {list(frame.columns)}; pass pairs "
            "('module', 'gene_a', 'gene_b'), module genes ('module', 'gene') or a net ('source', 'target')."
        )
    net = net.assign(source=net["source"].astype(object), target=net["target"].astype(object))
    sets = as_gene_sets(net, allow_path=False, what="modules")
    if "weight" not in net.columns:
        return sets, None
    weight = numeric_column(net, "weight", 1.0)
    scores = pd.DataFrame(
        {"module": net["source"], "gene": net["target"], "score": np.abs(weight), "sign": np.where(weight < 0, -1, 1)}
    ).drop_duplicates(["module", "gene"])
    return sets, scores


def pairs_from_sets(sets: dict[str, list[str]], scores: pd.DataFrame | None, *, source: str) -> ModulePairs:
    """Every pair of each set's genes, weighted by the product of the genes' signs (1 without signs)."""
    too_big = {name: len(genes) for name, genes in sets.items() if len(genes) > MAX_SET_GENES}
    if too_big:
        raise ValueError(
            f"Gene sets with more than {MAX_SET_GENES} genes cannot be scored through all their pairs: {too_big}; "
            "keep each set's leading genes (e.g. the highest-scoring ones)."
        )
    parts_a, parts_b, parts_m = [], [], []
    for code, genes in enumerate(sets.values()):
        ia, ib = np.triu_indices(len(genes), 1)
        genes = np.asarray(genes, dtype=object)
        parts_a.append(genes[ia])
        parts_b.append(genes[ib])
        parts_m.append(np.full(len(ia), code, dtype=np.int64))
    gene_a = np.concatenate(parts_a).astype(str)
    gene_b = np.concatenate(parts_b).astype(str)
    module = np.concatenate(parts_m)
    weight = np.ones(len(gene_a))
    if scores is not None:
        names = np.asarray(list(sets), dtype=object)
        side = pd.Series(scores["sign"].to_numpy(), index=pd.MultiIndex.from_arrays([scores["module"], scores["gene"]]))
        side_a = side.reindex(pd.MultiIndex.from_arrays([names[module], gene_a])).fillna(1).to_numpy()
        side_b = side.reindex(pd.MultiIndex.from_arrays([names[module], gene_b])).fillna(1).to_numpy()
        weight = (side_a * side_b).astype(np.float64)
    return ModulePairs(list(sets), gene_a, gene_b, module, weight, np.zeros(len(gene_a), np.int64), scores, source)


def drop_missing(pairs: ModulePairs, var_names: pd.Index) -> ModulePairs:
    """Drop pairs with a gene not in ``var_names`` (warning); modules left without pairs are reported."""
    present_a = var_names.get_indexer(pairs.gene_a) >= 0
    present_b = var_names.get_indexer(pairs.gene_b) >= 0
    keep = present_a & present_b
    if not keep.all():
        missing = np.unique(np.concatenate([pairs.gene_a[~present_a], pairs.gene_b[~present_b]]))
        logg.warning(
            f"{len(missing)} gene(s) of the modules are not in adata.var_names (e.g. {missing[:5].tolist()}); "
            f"dropped {int((~keep).sum())} of {len(keep)} gene pairs."
        )
    pairs = pairs.subset(keep)
    n_pairs = np.bincount(pairs.module, minlength=len(pairs.names))
    total = np.bincount(pairs.module, weights=np.abs(pairs.weight), minlength=len(pairs.names))
    empty = [name for name, n in zip(pairs.names, n_pairs, strict=True) if n == 0]
    if len(empty) == len(pairs.names):
        raise ValueError(
            f"No module has a gene pair with both genes in adata.var_names (modules {empty}); check the gene "
            "naming (symbols vs Ensembl ids, species, case) or score modules with genes measured in adata."
        )
    if empty:
        logg.warning(
            f"module(s) {empty} have no gene pair with both genes in adata.var_names, so nothing to score; "
            "their activity is NaN."
        )
    zero = [n for n, c, t in zip(pairs.names, n_pairs, total, strict=True) if c > 0 and t == 0]
    if zero:
        raise ValueError(
            f"The pair weights of module(s) {zero} are all 0, so no weighted mean exists; give the pairs "
            "non-zero weights (negative for anti-correlated pairs)."
        )
    return pairs


def locality_activity(values, var_names: pd.Index, membership: sp.csc_matrix, pairs: ModulePairs, min_detected):
    """Localities x modules weighted mean correlation; NaN for modules without pairs."""
    matrix, used_index = gene_columns(values, var_names, np.concatenate([pairs.gene_a, pairs.gene_b]))
    scored = np.flatnonzero(np.bincount(pairs.module, minlength=len(pairs.names)) > 0)
    code = np.full(len(pairs.names), -1, dtype=np.int64)
    code[scored] = np.arange(len(scored))
    n_loc = membership.shape[1]
    with progress(n_loc, "module scores") as bar:
        act = module_locality_activity(
            matrix,
            membership,
            used_index.get_indexer(pairs.gene_a),
            used_index.get_indexer(pairs.gene_b),
            code[pairs.module],
            pairs.weight,
            len(scored),
            min_detected=min_detected,
            progress=bar.update,
        )
    out = np.full((n_loc, len(pairs.names)), np.nan)
    out[:, scored] = act
    return out


def score_tables(pairs: ModulePairs) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The scored pairs (``module, gene_a, gene_b, weight, support``) and genes (``module, gene, score, sign``)."""
    names = pairs.names
    table = pd.DataFrame(
        {
            "module": pd.Categorical.from_codes(pairs.module, categories=names),
            "gene_a": pairs.gene_a.tolist(),
            "gene_b": pairs.gene_b.tolist(),
            "weight": pairs.weight,
            "support": pairs.support,
        }
    )
    rows = []
    strength = pairs.weight * np.where(pairs.support > 0, pairs.support, 1)
    for m, name in enumerate(names):
        sel = pairs.module == m
        genes, inverse = np.unique(np.concatenate([pairs.gene_a[sel], pairs.gene_b[sel]]), return_inverse=True)
        n = int(sel.sum())
        deg = gene_scores(inverse[:n], inverse[n:], strength[sel], len(genes))
        sides = gene_sides(inverse[:n], inverse[n:], strength[sel], len(genes))
        given = None
        if pairs.scores is not None:
            sub = pairs.scores.loc[pairs.scores["module"] == name]
            given = pd.Series(sub["score"].to_numpy(), index=sub["gene"].to_numpy())
            sides = pd.Series(sub["sign"].to_numpy(), index=sub["gene"].to_numpy()).reindex(genes).fillna(1).to_numpy()
        values = deg if given is None else given.reindex(genes).fillna(0.0).to_numpy()
        for g in np.argsort(-values, kind="stable"):
            rows.append((name, str(genes[g]), float(values[g]), int(sides[g])))
    genes_table = pd.DataFrame(rows, columns=["module", "gene", "score", "sign"])
    genes_table["module"] = pd.Categorical(genes_table["module"], categories=names)
    return table, genes_table


def write_scores(adata: AnnData, key_added: str, pairs: ModulePairs, loc_act: np.ndarray, cell_act: np.ndarray):
    table, genes_table = score_tables(pairs)
    adata.uns[key_added] = {
        Keys.locality_activity: pd.DataFrame(loc_act, index=locality_names(len(loc_act)), columns=pairs.names),
        Keys.modules: table,
        Keys.module_genes: genes_table,
    }
    adata.obsm[Keys(key_added).obsm_activity] = pd.DataFrame(
        cell_act, index=adata.obs_names.copy(), columns=pairs.names
    )
