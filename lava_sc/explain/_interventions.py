"""What ``explain.stability`` varies, and from which reference: the LAVA and embedding factors with
their checks, the reference run's settings (stored under ``key`` or LAVA's defaults) and the
embedding's (neighbours graph and UMAP), each with ``with_value`` giving one intervention."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from numbers import Integral, Real

import numpy as np
import pandas as pd
from anndata import AnnData

from .._keys import Keys
from .._params import PIPELINE, decode
from .._validate import check_float, check_int
from ..tl._localities import default_n_cells

#: LAVA hyperparameters the assay can vary: name -> (integer?, bounds for the check)
LAVA_FACTORS: dict[str, tuple[bool, dict]] = {
    "n_cells": (True, dict(low=3)),
    "overlap": (False, dict(low=0.0, open_low=True)),
    "fdr": (False, dict(low=0.0, high=1.0, open_low=True)),
    "min_detected": (False, dict(low=0.0, high=1.0)),
    "min_abs_r": (False, dict(low=0.0, high=1.0)),
    "max_partners": (True, dict(low=1)),
    "resolution": (False, dict(low=0.0, open_low=True)),
    "rank": (True, dict(low=1)),
    "min_support": (True, dict(low=1)),
    "min_genes": (True, dict(low=2)),
    "merge_overlap": (False, dict(low=0.0, open_low=True)),
    "random_state": (True, dict(low=0)),
}


#: embedding settings the assay can vary (the embedding is recomputed with scanpy): name -> (integer?, bounds)
EMBEDDING_FACTORS: dict[str, tuple[bool, dict]] = {
    "umap_seed": (True, dict(low=0)),
    "n_neighbors": (True, dict(low=2)),
    "min_dist": (False, dict(low=0.0)),
    "n_pcs": (True, dict(low=1)),
}


#: parameters of each LAVA stage that are taken over from the reference run (``uns[key]["params"]``)
STAGE_PARAMS = {settings.STEP: settings.argument_names() for settings in PIPELINE}


SETTINGS = {settings.STEP: settings for settings in PIPELINE}


def stages_of(factor: str) -> tuple[str, ...]:
    """The LAVA steps that take ``factor`` as an argument (``random_state``: all three)."""
    return tuple(stage for stage, names in STAGE_PARAMS.items() if factor in names)


def check_vary(vary, *, n_obs: int) -> dict[str, list]:
    """``vary`` as factor -> list of checked values (ints for integer factors)."""
    if not isinstance(vary, Mapping):
        raise TypeError(
            f"`vary` must be a dict of factor -> list of values (e.g. {{'n_cells': [100, 200]}}), got {vary!r}."
        )
    allowed = list(LAVA_FACTORS) + list(EMBEDDING_FACTORS)
    out: dict[str, list] = {}
    for factor, values in vary.items():
        if factor not in allowed:
            raise ValueError(
                f"Unknown factor {factor!r} in `vary`. LAVA factors (embedding fixed): {list(LAVA_FACTORS)}; "
                f"embedding factors (LAVA fixed): {list(EMBEDDING_FACTORS)}."
            )
        if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray, pd.Index, pd.Series)):
            raise TypeError(f"`vary[{factor!r}]` must be a list of values, got {values!r}; e.g. [{values!r}].")
        values = list(np.asarray(values, dtype=object).ravel()) if isinstance(values, np.ndarray) else list(values)
        if not values:
            raise ValueError(f"`vary[{factor!r}]` is empty; give at least one value or drop the factor.")
        integer, bounds = LAVA_FACTORS[factor] if factor in LAVA_FACTORS else EMBEDDING_FACTORS[factor]
        checked = []
        for value in values:
            name = f"vary[{factor!r}] value"
            if integer:
                if isinstance(value, Real) and not isinstance(value, (bool, Integral)) and float(value).is_integer():
                    value = int(value)  # 2.0 for an integer factor is fine
                checked.append(check_int(name, value, **bounds))
            else:
                checked.append(check_float(name, value, **bounds))
        if factor == "n_cells" and max(checked) > n_obs:
            raise ValueError(f"`vary['n_cells']` asks for {max(checked)} cells per locality but adata has {n_obs}.")
        if factor == "n_neighbors" and max(checked) >= n_obs:
            raise ValueError(f"`vary['n_neighbors']` must stay below the {n_obs} cells, got {max(checked)}.")
        out[str(factor)] = checked
    return out


@dataclass(frozen=True)
class LavaSettings:
    """Keyword arguments of the three LAVA steps, plus the tested genes of the reference."""

    stages: dict[str, dict]
    genes: tuple[str, ...] | None
    stored: bool

    def with_value(self, factor: str, value) -> LavaSettings:
        stages = {stage: dict(p) for stage, p in self.stages.items()}
        for name in stages_of(factor):
            stages[name][factor] = value
        return LavaSettings(stages, self.genes, self.stored)

    def value(self, factor: str, n_obs: int):
        """The reference's value of a LAVA factor (None when the step's own default is unknown here)."""
        stage = stages_of(factor)[-1]
        if factor in self.stages[stage]:
            return self.stages[stage][factor]
        if factor == "n_cells":
            return default_n_cells(n_obs)
        return SETTINGS[stage].tool_defaults().get(factor)

    def cache_key(self) -> tuple:
        return tuple((stage, tuple(sorted((k, repr(v)) for k, v in p.items()))) for stage, p in self.stages.items())


def reference_settings(adata: AnnData, key: str, basis: str, random_state: int) -> LavaSettings:
    """The reference run's settings: stored under ``key`` where present, LAVA's defaults otherwise."""
    slot = adata.uns.get(key)
    slot = slot if isinstance(slot, Mapping) else {}
    params = slot.get(Keys.params, {})
    params = params if isinstance(params, Mapping) else {}
    stages: dict[str, dict] = {}
    for settings in PIPELINE:
        recorded = settings.read(adata, key) if isinstance(params.get(settings.STEP), Mapping) else None
        stages[settings.STEP] = {} if recorded is None else recorded.arguments()
        stages[settings.STEP].setdefault("random_state", random_state)
    keys = Keys(key)
    stored = (
        Keys.module_genes in slot
        and keys.obsm_activity in adata.obsm
        and all(stage in params for stage in STAGE_PARAMS)
        and Keys.genes in slot
    )
    if stored:
        used = str(decode(params["localities"].get("basis", basis)))
        if used != basis:
            raise ValueError(
                f"The LAVA results under key {key!r} were computed on {used!r}, not on `basis`={basis!r}; "
                f"pass basis={used!r} (or another `key`)."
            )
        activity = adata.obsm[keys.obsm_activity]
        if np.shape(activity)[0] != adata.n_obs:
            raise ValueError(f"adata.obsm[{keys.obsm_activity!r}] does not have one row per cell; rerun tl.modules.")
    genes = tuple(np.asarray(slot[Keys.genes], dtype=object).astype(str).tolist()) if stored else None
    return LavaSettings(stages, genes, stored)


@dataclass(frozen=True)
class EmbeddingSettings:
    """How the embedding is recomputed: neighbours graph and UMAP settings."""

    n_neighbors: int = 15
    n_pcs: int | None = None
    use_rep: str | None = None
    metric: str = "euclidean"
    neighbors_seed: int = 0
    min_dist: float | None = None  # None: the reference's a, b (or scanpy's default min_dist=0.5)
    umap_a: float | None = None
    umap_b: float | None = None
    umap_seed: int = 0

    def with_value(self, factor: str, value) -> EmbeddingSettings:
        if factor == "n_pcs" and self.use_rep == "X":
            raise ValueError("`vary['n_pcs']` slices X_pca, but the reference neighbours were computed on X.")
        if factor == "n_pcs":  # with few genes scanpy reads X itself unless told to use X_pca
            return replace(self, n_pcs=value, use_rep=self.use_rep or "X_pca")
        return replace(self, **{factor: value})

    def cache_key(self) -> str:
        return repr(self)

    def as_params(self) -> dict:
        return asdict(self)


def embedding_settings(adata: AnnData) -> EmbeddingSettings:
    """The reference embedding's settings as scanpy recorded them (defaults where it did not)."""
    neighbours = adata.uns.get("neighbors", {})
    nparams = neighbours.get("params", {}) if isinstance(neighbours, Mapping) else {}
    umap = adata.uns.get("umap", {})
    uparams = umap.get("params", {}) if isinstance(umap, Mapping) else {}
    a, b = decode(uparams.get("a")), decode(uparams.get("b"))
    use_rep = decode(nparams.get("use_rep"))
    n_pcs = decode(nparams.get("n_pcs"))
    return EmbeddingSettings(
        n_neighbors=int(decode(nparams.get("n_neighbors", 15))),
        n_pcs=None if n_pcs is None else int(n_pcs),
        use_rep=None if use_rep is None else str(use_rep),
        metric=str(decode(nparams.get("metric", "euclidean"))),
        neighbors_seed=int(decode(nparams.get("random_state", 0))),
        umap_a=None if a is None else float(a),
        umap_b=None if b is None else float(b),
        umap_seed=int(decode(uparams.get("random_state", 0))),
    )
