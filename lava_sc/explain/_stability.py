"""Stability assay: how much LAVA's explanation moves under interventions on its settings and on the embedding."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from anndata import AnnData

from .. import _logging as logg
from .._adata import writable
from .._core.stability import KNN_OVERLAP_K, activity_correlation, knn_overlap_distance, match_modules
from .._docs import doc
from .._keys import DEFAULT_KEY, STABILITY_KEY, Keys
from .._params import encode
from .._utils import log_added, progress
from .._validate import check_adata, check_int, check_key, embedding, resolve_basis
from ..tl._correlations import correlations
from ..tl._localities import localities
from ..tl._modules import modules
from ..tl._populations import resolve_groupby
from ._interventions import (
    EMBEDDING_FACTORS,
    LAVA_FACTORS,
    EmbeddingSettings,
    LavaSettings,
    check_vary,
    embedding_settings,
    reference_settings,
)

EFFECT_COLUMNS = [
    "factor",
    "kind",
    "value",
    "embedding_change",
    "explanation_change",
    "mean_jaccard",
    "activity_corr",
    "n_modules",
    "n_matched",
    "unmatched_reference",
    "unmatched",
    "above_noise",
    "is_reference",
]
EFFECT_DTYPES = {
    "value": np.float64,
    "embedding_change": np.float64,
    "explanation_change": np.float64,
    "mean_jaccard": np.float64,
    "activity_corr": np.float64,
    "n_modules": np.int64,
    "n_matched": np.int64,
    "above_noise": bool,
    "is_reference": bool,
}
NOISE_COLUMNS = ["random_state", "explanation_change", "mean_jaccard", "activity_corr", "n_modules", "n_matched"]


@doc()
def stability(
    adata: AnnData,
    vary: Mapping[str, Sequence],
    *,
    key: str = DEFAULT_KEY,
    basis: str = "X_umap",
    n_repeats: int = 3,
    random_state: int = 0,
    key_added: str = STABILITY_KEY,
    copy: bool = False,
) -> AnnData | None:
    """How much LAVA's explanation changes under interventions, compared with its seed-only noise.

    An explanation (LAVA's modules) of an embedding can change for two reasons (Karimi et al., ICML
    2023, on explanation vs prediction): directly, because the explainer's own hyperparameters
    changed with the embedding held fixed, or through the embedding, because the embedding changed
    with the explainer held fixed. This assay intervenes on one factor at a time:

    - **LAVA factors** (embedding fixed): ``n_cells``, ``overlap`` (:func:`~lava_sc.tl.localities`);
      ``fdr``, ``min_detected``, ``min_abs_r``, ``max_partners`` (:func:`~lava_sc.tl.correlations`);
      ``resolution``, ``rank``, ``min_support``, ``min_genes``, ``merge_overlap``
      (:func:`~lava_sc.tl.modules`); ``random_state`` (all three steps).
    - **Embedding factors** (LAVA fixed): ``umap_seed``, ``n_neighbors``, ``min_dist``, ``n_pcs``. The
      embedding is recomputed with scanpy: ``sc.pp.pca`` only when ``X_pca`` is missing or has fewer
      than the ``n_pcs`` asked for, ``sc.pp.neighbors(..., transformer="sklearn")`` (exact neighbours)
      and ``sc.tl.umap``. Settings not varied are those of the reference embedding where scanpy
      recorded them (``uns["neighbors"]["params"]``: ``n_neighbors``, ``n_pcs``, ``use_rep``,
      ``metric``; ``uns["umap"]["params"]``: ``a``, ``b``, ``random_state``), scanpy's defaults
      otherwise. The new UMAP (with as many dimensions as ``basis``) replaces ``basis`` for LAVA.

    Every run works on its own lightweight object sharing ``X`` with ``adata`` (LAVA never modifies
    it): ``adata`` itself is left untouched except for ``uns[key_added]``.

    **Reference.** The LAVA results under ``key`` (modules and per-cell activity, with the settings in
    ``uns[key]["params"]`` and the genes in ``uns[key]["genes"]``) on the embedding ``basis``; when
    there are none, LAVA is run with its defaults and ``random_state`` (on a copy; nothing is written
    under ``key``). Every run, reference included, uses the same fixed settings except the one factor
    varied.

    **Measures**, per intervention value, against the reference:

    - ``embedding_change``: ``1 -`` the mean over cells of the Jaccard index of the cell's 15 nearest
      neighbours in the reference and in the new embedding (0 for LAVA factors: the embedding is
      the reference's);
    - ``mean_jaccard``: modules are matched one-to-one by the Hungarian algorithm
      (:func:`scipy.optimize.linear_sum_assignment`) on the Jaccard index of their gene sets
      (``uns[key]["module_genes"]``); the summed Jaccard of the matched pairs is divided by the larger
      number of modules, so a module left without partner counts as 0 (1 = the same modules);
    - ``explanation_change``: ``1 - mean_jaccard``;
    - ``activity_corr``: the Pearson correlation over cells of the activity of each matched pair,
      averaged over pairs (NaN when nothing is matched);
    - ``n_modules`` (in the new run), ``n_matched`` (pairs sharing genes), the unmatched modules of
      each side (comma-separated names), ``above_noise`` (explanation change above the largest
      seed-only change) and ``is_reference`` (the value is the reference's own setting: such a run
      should reproduce the reference, with changes near 0).

    **Noise floor.** LAVA rerun with ``n_repeats`` other seeds (``random_state + 1, random_state + 2,
    ...``, skipping the reference's seed), everything else fixed: the explanation change that
    re-seeding alone produces. An intervention whose effect stays within it is not distinguishable
    from noise.

    **Kendall's tau** between ``embedding_change`` and ``explanation_change`` across the embedding
    interventions (:func:`scipy.stats.kendalltau`) says whether LAVA's explanation follows the
    embedding: a high tau means larger changes of the embedding bring larger changes of the modules.
    Values equal to the reference's own setting are left out (they sit at (0, 0) by construction). tau
    is NaN, with a note, with fewer than 3 such interventions or when either change is constant.

    Parameters
    ----------
    adata
        Annotated data matrix with the embedding ``basis`` (and, ideally, LAVA results under ``key``).
    vary
        Factor -> list of values to try, one factor at a time, e.g.
        ``{"n_cells": [100, 150, 200], "resolution": [0.5, 1, 2], "n_neighbors": [10, 15, 30]}``.
        Including the reference value of a factor gives a run that should reproduce the reference
        (``is_reference``). For an embedding factor this also checks that scanpy's pipeline recomputes
        ``basis`` itself (``embedding_change`` near 0); when it does not (an embedding made another way,
        or with settings scanpy did not record), every embedding intervention carries that difference
        too. An empty dict measures the noise floor only.
    key
        Key of the reference LAVA results.
    basis
        The reference embedding (an ``obsm`` key).
    n_repeats
        Number of extra LAVA seeds for the noise floor (at least 1).
    random_state
        Seed of LAVA when the reference has to be computed; the noise-floor seeds follow it.
    key_added
        Results go to ``uns[key_added]``.
    {copy}

    Returns
    -------
    ``None`` or the copy. Writes ``uns[key_added]`` with

    - ``"effects"``: DataFrame, one row per factor and value: ``factor, kind`` (``"lava"`` or
      ``"embedding"``), ``value, embedding_change, explanation_change, mean_jaccard, activity_corr,
      n_modules, n_matched, unmatched_reference, unmatched, above_noise, is_reference``;
    - ``"noise_floor"``: DataFrame, one row per extra seed (same measures);
    - ``"noise_floor_mean"``, ``"noise_floor_max"``: mean and largest seed-only explanation change;
    - ``"kendall_tau"``, ``"kendall_pvalue"``, ``"kendall_n"``, ``"kendall_note"``;
    - ``"n_modules_reference"``, ``"reference"`` (``"stored"`` or ``"computed"``), ``"params"``.

    Read it with :func:`lava_sc.get.stability`; plot it with :func:`lava_sc.pl.stability`.

    Examples
    --------
    >>> lv.tl.modules(adata, random_state=0)
    >>> lv.explain.stability(adata, {"n_cells": [100, 200], "resolution": [0.5, 2], "n_neighbors": [10, 30]})
    >>> lv.get.stability(adata)
    """
    check_adata(adata)
    key = check_key(key)
    key_added = check_key(key_added)
    if key_added == key:
        raise ValueError(f"`key_added`={key_added!r} would overwrite the LAVA results under `key`; choose another.")
    basis = resolve_basis(adata, basis)
    reference_points = embedding(adata, basis)
    n_repeats = check_int("n_repeats", n_repeats, low=1)
    random_state = check_int("random_state", random_state, low=0)
    vary = check_vary(vary, n_obs=adata.n_obs)

    start = logg.info(f"stability assay of LAVA under {key!r} on {basis!r}: {', '.join(vary) or 'noise floor only'}")
    lava_ref = reference_settings(adata, key, basis, random_state)
    emb_ref = embedding_settings(adata) if any(f in EMBEDDING_FACTORS for f in vary) else None
    k = min(KNN_OVERLAP_K, adata.n_obs - 1)
    ref_seed = int(lava_ref.stages["modules"].get("random_state", random_state))
    noise_seeds = list(itertools.islice((s for s in itertools.count(random_state + 1) if s != ref_seed), n_repeats))

    runner = Runner(adata, basis, reference_points)
    if emb_ref is not None:
        emb_ref = runner.prepare_embedding(emb_ref, vary.get("n_pcs", []))
    n_runs = n_repeats + sum(len(v) for v in vary.values()) + (0 if lava_ref.stored else 1)
    with progress(n_runs, "stability runs") as bar:
        if lava_ref.stored:
            reference = stored_result(adata, key)
        else:  # never served from the cache: a run at the reference settings must reproduce it
            reference = runner.lava(reference_points, lava_ref, "reference", cache=False)
            bar.update()
        noise_rows = []
        for seed in noise_seeds:
            result = runner.lava(reference_points, lava_ref.with_value("random_state", seed), "reference")
            measures, _, _ = compare(reference, result)
            noise_rows.append({"random_state": seed, **measures})
            bar.update()
        noise = pd.DataFrame(noise_rows, columns=NOISE_COLUMNS)
        floor_max = float(noise["explanation_change"].max())

        rows = []
        for factor, values in vary.items():
            for value in values:
                if factor in LAVA_FACTORS:
                    result = runner.lava(reference_points, lava_ref.with_value(factor, value), "reference")
                    emb_change, kind = 0.0, "lava"
                    is_reference = lava_ref.value(factor, adata.n_obs) == value
                else:
                    settings = emb_ref.with_value(factor, value)
                    is_reference = settings == emb_ref
                    points = runner.embedding(settings)
                    result = runner.lava(points, lava_ref, settings.cache_key())
                    emb_change, kind = knn_overlap_distance(reference_points, points, k), "embedding"
                measures, unmatched_reference, unmatched = compare(reference, result)
                rows.append(
                    {
                        "factor": factor,
                        "kind": kind,
                        "value": float(value),
                        "embedding_change": emb_change,
                        **measures,
                        "unmatched_reference": ",".join(unmatched_reference),
                        "unmatched": ",".join(unmatched),
                        "above_noise": bool(measures["explanation_change"] > floor_max + 1e-12),
                        "is_reference": bool(is_reference),
                    }
                )
                bar.update()
    effects = pd.DataFrame(rows, columns=EFFECT_COLUMNS)
    effects = effects.astype(EFFECT_DTYPES)  # also when empty (vary={}): h5ad keeps the column types
    tau, pvalue, n_points, note = kendall(effects)

    adata = writable(adata, copy)
    adata.uns[key_added] = {
        "effects": effects,
        "noise_floor": noise,
        "noise_floor_mean": float(noise["explanation_change"].mean()),
        "noise_floor_max": floor_max,
        "kendall_tau": tau,
        "kendall_pvalue": pvalue,
        "kendall_n": n_points,
        "kendall_note": note,
        "n_modules_reference": len(reference.genes),
        "reference": "stored" if lava_ref.stored else "computed",
        "params": encode(
            {
                "key": key,
                "basis": basis,
                "vary": {f: [float(v) for v in vals] for f, vals in vary.items()},
                "n_repeats": n_repeats,
                "random_state": random_state,
                "noise_seeds": noise_seeds,
                "knn_k": k,
                "lava": {stage: dict(p) for stage, p in lava_ref.stages.items()},
                "embedding": {} if emb_ref is None else emb_ref.as_params(),
            }
        ),
    }
    log_added(
        f"stability assay ({len(effects)} interventions, noise floor {float(noise['explanation_change'].mean()):.3f}"
        + ("" if np.isnan(tau) else f", Kendall tau {tau:.2f}")
        + ")",
        start,
        [f"'{key_added}': 'effects', 'noise_floor', Kendall's tau, params (adata.uns)"],
    )
    return adata if copy else None


# --- runs ------------------------------------------------------------------------------------------


@dataclass
class RunResult:
    """A run's modules (name -> genes) and per-cell activity (cells x modules)."""

    genes: dict[str, list[str]]
    activity: pd.DataFrame


def result_of(module_genes: pd.DataFrame, activity) -> RunResult:
    table = module_genes.assign(module=module_genes["module"].astype(str), gene=module_genes["gene"].astype(str))
    genes = {m: sub["gene"].tolist() for m, sub in table.groupby("module", sort=False)}
    if not isinstance(activity, pd.DataFrame):
        activity = pd.DataFrame(np.asarray(activity))
    activity = activity.copy()
    activity.columns = [str(c) for c in activity.columns]
    return RunResult(genes, activity)


def stored_result(adata: AnnData, key: str) -> RunResult:
    return result_of(adata.uns[key][Keys.module_genes], adata.obsm[Keys(key).obsm_activity])


def compare(reference: RunResult, other: RunResult) -> tuple[dict, list[str], list[str]]:
    """The measures of ``other`` against the reference, and the unmatched modules of each side."""
    match = match_modules(reference.genes, other.genes)
    if match.pairs:
        ref_act = np.column_stack([reference.activity[a].to_numpy(dtype=np.float64) for a, _, _ in match.pairs])
        new_act = np.column_stack([other.activity[b].to_numpy(dtype=np.float64) for _, b, _ in match.pairs])
        corr = activity_correlation(ref_act, new_act)
    else:
        corr = float("nan")
    measures = {
        "explanation_change": match.change,
        "mean_jaccard": match.mean_jaccard,
        "activity_corr": corr,
        "n_modules": match.n_b,
        "n_matched": match.n_matched,
    }
    return measures, match.unmatched_a, match.unmatched_b


class Runner:
    """Runs LAVA and recomputes embeddings on lightweight objects that share ``X`` with ``adata``."""

    WORK_KEY = "lava"

    def __init__(self, adata: AnnData, basis: str, reference_points: np.ndarray):
        self.adata = adata
        self.basis = basis
        self.dims = reference_points.shape[1]
        self._lava: dict = {}
        self._embeddings: dict[str, np.ndarray] = {}
        self._pca: np.ndarray | None = None

    def _work(self, points: np.ndarray, settings: LavaSettings) -> AnnData:
        src = self.adata
        corr = settings.stages["correlations"]
        partial = corr.get("partial_out")
        partial = [partial] if isinstance(partial, str) else list(partial or [])
        groupby = resolve_groupby(src, settings.stages["modules"].get("groupby", "auto"))
        columns = [p for p in partial if p in src.obs.columns] + ([groupby] if groupby is not None else [])
        obs = src.obs[list(dict.fromkeys(columns))].copy()
        layer = corr.get("layer")
        layers = {layer: src.layers[layer]} if layer is not None and layer in src.layers else None
        work = AnnData(X=src.X, obs=obs, var=src.var.copy(), layers=layers)
        for name in partial:
            if name in src.obsm and name != self.basis:
                work.obsm[name] = src.obsm[name]
        work.obsm[self.basis] = points
        return work

    def lava(self, points: np.ndarray, settings: LavaSettings, embedding_id: str, *, cache: bool = True) -> RunResult:
        """LAVA with ``settings`` on ``points`` (identified by ``embedding_id``), cached per embedding and settings."""
        cache_key = (embedding_id, settings.cache_key())
        if cache and cache_key in self._lava:
            return self._lava[cache_key]
        work = self._work(points, settings)
        key = self.WORK_KEY
        stages = settings.stages
        localities(work, self.basis, key_added=key, **stages["localities"])
        genes = list(settings.genes) if settings.genes is not None else None
        correlations(work, key=key, genes=genes, **stages["correlations"])
        modules(work, key=key, **stages["modules"])
        result = stored_result(work, key)
        if cache:
            self._lava[cache_key] = result
        return result

    def prepare_embedding(self, reference: EmbeddingSettings, n_pcs_values: list[int]) -> EmbeddingSettings:
        """Make the PCA the embedding runs need (once), and return the reference settings made explicit.

        The user's ``X_pca`` is used when it has enough components; otherwise one PCA with enough
        components (at least 50) is computed for all runs, and the reference's ``n_pcs`` is pinned to
        what scanpy used (all columns of the user's ``X_pca``, or 50).
        """
        import scanpy as sc

        src = self.adata
        rep = reference.use_rep
        uses_pca = rep == "X_pca" or (rep is None and (src.n_vars > 50 or bool(n_pcs_values)))
        if not uses_pca:
            if n_pcs_values:
                raise ValueError(
                    f"`vary['n_pcs']` slices X_pca, but the reference neighbours were computed on "
                    f"use_rep={rep!r}; drop 'n_pcs' from `vary`."
                )
            return reference
        need = max([reference.n_pcs or 0, *n_pcs_values])
        have = src.obsm["X_pca"] if "X_pca" in src.obsm else None
        if have is not None and np.shape(have)[1] >= max(need, 1):
            self._pca = np.asarray(have)
            ref_n_pcs = reference.n_pcs if reference.n_pcs is not None else self._pca.shape[1]
        else:
            n_comps = min(max(need, 50), src.n_obs - 1, src.n_vars - 1)
            if need > n_comps:
                raise ValueError(f"`n_pcs`={need} exceeds the {n_comps} principal components this data allows.")
            tmp = AnnData(X=src.X, obs=pd.DataFrame(index=src.obs_names.copy()), var=src.var.copy())
            hv = src.var["highly_variable"].astype(bool) if "highly_variable" in src.var else None
            mask = hv.to_numpy() if hv is not None and hv.sum() > n_comps else None
            logg.info(f"    computing {n_comps} principal components for the embedding interventions")
            sc.pp.pca(tmp, n_comps=n_comps, mask_var=mask, random_state=0)
            self._pca = np.asarray(tmp.obsm["X_pca"])
            ref_n_pcs = reference.n_pcs if reference.n_pcs is not None else min(50, n_comps)
        if rep is None and src.n_vars <= 50:  # the reference itself reads X; only the n_pcs runs use the PCA
            return reference
        return replace(reference, use_rep="X_pca", n_pcs=ref_n_pcs)

    def embedding(self, settings: EmbeddingSettings) -> np.ndarray:
        """UMAP recomputed with ``settings`` (cached per settings)."""
        import scanpy as sc

        cache_key = settings.cache_key()
        if cache_key in self._embeddings:
            return self._embeddings[cache_key]
        src = self.adata
        work = AnnData(X=src.X, obs=pd.DataFrame(index=src.obs_names.copy()), var=src.var.copy())
        rep = settings.use_rep
        if rep == "X_pca":
            work.obsm["X_pca"] = self._pca
        elif rep is not None and rep != "X":
            if rep not in src.obsm:
                raise KeyError(f"The reference neighbours used adata.obsm[{rep!r}], which is missing.")
            work.obsm[rep] = src.obsm[rep]
        sc.pp.neighbors(
            work,
            n_neighbors=settings.n_neighbors,
            n_pcs=settings.n_pcs,
            use_rep=rep,
            metric=settings.metric,
            random_state=settings.neighbors_seed,
            transformer="sklearn",  # exact; scanpy 1.11.5 with pynndescent fails at >= 8,192 cells
        )
        umap_kwargs: dict = {"random_state": settings.umap_seed, "n_components": max(self.dims, 2)}
        if settings.min_dist is not None:
            umap_kwargs["min_dist"] = settings.min_dist
        elif settings.umap_a is not None and settings.umap_b is not None:
            umap_kwargs.update(a=settings.umap_a, b=settings.umap_b)
        sc.tl.umap(work, **umap_kwargs)
        points = np.asarray(work.obsm["X_umap"], dtype=np.float64)[:, : self.dims]
        self._embeddings[cache_key] = points
        return points


def kendall(effects: pd.DataFrame) -> tuple[float, float, int, str]:
    """Kendall's tau (and p-value) of embedding change vs explanation change over the embedding interventions.

    Runs at the reference's own settings are left out: they sit at (0, 0) by construction and would make
    any explainer look as if it followed the embedding.
    """
    from scipy.stats import kendalltau

    sub = effects[(effects["kind"] == "embedding") & ~effects["is_reference"].astype(bool)]
    n = len(sub)
    if n < 3:
        return (
            float("nan"),
            float("nan"),
            n,
            f"{n} embedding intervention(s) away from the reference settings: Kendall's tau needs at least 3",
        )
    x = sub["embedding_change"].to_numpy(dtype=np.float64)
    y = sub["explanation_change"].to_numpy(dtype=np.float64)
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        which = "embedding change" if np.ptp(x) == 0 else "explanation change"
        return float("nan"), float("nan"), n, f"the {which} is the same for every embedding intervention"
    result = kendalltau(x, y)
    return float(result.statistic), float(result.pvalue), n, ""
