"""Typed settings of each LAVA step: stored exactly in ``uns``, read back exactly, and stamped.

Every tool records what it was run with in ``uns[key]["params"][step]``. h5ad and zarr cannot
store ``None`` and return lists as arrays and numbers as numpy scalars, so the record is encoded:

* a setting that is ``None`` is left out (``params[step].get(name)`` is then ``None``, as it was);
* lists and tuples become arrays, nested mappings stay mappings;
* numpy scalars become Python scalars.

:func:`decode` inverts this for any step; the dataclasses below (one per pipeline step) also give
each setting its type back (``bool``, ``int``, ``float``, ``str``, lists), so that
``Settings.from_uns(s.to_uns()) == s`` through a file. Records written by earlier versions, where
``None`` was the string ``"None"``, read back as ``None``.

**Provenance.** Each record carries ``run_id`` (a digest of the settings and of what the step
wrote, so a changed result has a new one) and ``upstream``: the
``run_id`` of every result it was computed from, by step name. :func:`stale_upstream` compares a
record's ``upstream`` with what is stored now, so that a result computed from something that has
since been recomputed is never taken as current. What a re-run removes outright, under its own
key, is :data:`lava_sc._keys.INVALIDATES`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, get_args, get_origin

import numpy as np
import pandas as pd
import scipy.sparse as sp

#: how earlier versions stored None
LEGACY_NONE = "None"
RUN_ID = "run_id"
UPSTREAM = "upstream"
#: in ``upstream``: the key whose results the stamps name (absent: the result's own key)
SOURCE_KEY = "key"


def encode(value):
    """``value`` as h5ad and zarr store it exactly: ``None`` entries of mappings are left out."""
    if isinstance(value, Mapping):
        return {str(k): encode(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return np.asarray([encode(v) for v in value])
    if isinstance(value, np.generic):
        return value.item()
    return value


def decode(value):
    """Invert :func:`encode` as far as types allow: arrays -> lists, numpy scalars -> Python, ``"None"`` -> None."""
    if isinstance(value, str) and value == LEGACY_NONE:
        return None
    if isinstance(value, Mapping):
        return {str(k): decode(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return [decode(v.item() if isinstance(v, np.generic) else v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    return value


def stored_params(adata, key: str, step: str) -> dict:
    """The decoded record of ``step`` under ``key`` (``{}`` when the step has not run)."""
    slot = adata.uns.get(key)
    params = slot.get("params", {}) if isinstance(slot, Mapping) else {}
    record = params.get(step, {}) if isinstance(params, Mapping) else {}
    return decode(record) if isinstance(record, Mapping) else {}


def recorded(adata, key: str, step: str, name: str, default=None):
    """One decoded setting of ``step`` under ``key``; ``default`` when the step or setting is absent."""
    record = stored_params(adata, key, step)
    return record[name] if name in record else default


def fingerprint(*parts) -> str:
    """A 16-hex-digit digest of settings and results: arrays, sparse matrices, tables, scalars, mappings.

    Equal inputs give equal digests (a re-run with the same data and settings is the same result);
    any change in a result's values gives a new one.
    """
    digest = hashlib.blake2b(digest_size=8)
    for part in parts:
        _feed(digest, part)
    return digest.hexdigest()


def _feed(digest, part) -> None:
    if sp.issparse(part):
        part = sp.csr_matrix(part)
        for array in (part.data, part.indices, part.indptr, np.asarray(part.shape)):
            _feed(digest, array)
    elif isinstance(part, pd.DataFrame | pd.Series):
        digest.update(pd.util.hash_pandas_object(part, index=True).to_numpy().tobytes())
        digest.update(repr(list(part.columns) if isinstance(part, pd.DataFrame) else [part.name]).encode())
    elif isinstance(part, np.ndarray):
        digest.update(f"{part.dtype}{part.shape}".encode())
        digest.update(np.ascontiguousarray(part).tobytes() if part.dtype != object else repr(part.tolist()).encode())
    elif isinstance(part, Mapping):
        for k in sorted(part):
            digest.update(str(k).encode())
            _feed(digest, part[k])
    else:
        digest.update(repr(part).encode())


def run_id(adata, key: str, step: str) -> str | None:
    """The ``run_id`` of the result of ``step`` stored under ``key`` now (None when absent or unstamped)."""
    return recorded(adata, key, step, RUN_ID)


def store_params(
    adata, key: str, step: str, params: Mapping, *, upstream: Mapping[str, str | None] | None = None, result=()
):
    """Record ``params`` for ``step`` under ``key``, with its ``run_id`` and the ``upstream`` stamps.

    ``upstream`` maps a step to that result's ``run_id`` (see :func:`upstream_of`); entries whose id is unknown (results of earlier versions) are left out. The
    ``run_id`` is the :func:`fingerprint` of the step, its settings, its stamps and ``result`` (the
    arrays or tables it wrote). Returns the ``run_id``.
    """
    slot = adata.uns.setdefault(key, {})
    all_params = dict(slot.get("params", {}))
    record = encode(params)
    stamps = {str(k): v for k, v in (upstream or {}).items() if v is not None}
    record[RUN_ID] = fingerprint(step, record, stamps, *result)
    if stamps:
        record[UPSTREAM] = stamps
    all_params[step] = record
    slot["params"] = all_params
    return record[RUN_ID]


def upstream_of(adata, key: str, *steps: str, other_key: str | None = None) -> dict[str, str | None]:
    """Stamps naming the current results of ``steps`` under ``key`` (under ``other_key`` when given).

    A result computed from another key's results records that key as ``upstream["key"]``.
    """
    source = key if other_key is None else other_key
    stamps = {s: run_id(adata, source, s) for s in steps}
    return stamps if other_key is None else {SOURCE_KEY: other_key, **stamps}


def stale_upstream(adata, key: str, step: str) -> list[str]:
    """Names of the inputs of ``step`` (under ``key``) that were recomputed or removed since it ran.

    Empty when the result is current, or when it carries no stamps (written by an earlier version).
    """
    stamps = dict(recorded(adata, key, step, UPSTREAM, {}) or {})
    source = stamps.pop(SOURCE_KEY, key)
    prefix = "" if source == key else f"{source}/"
    return [f"{prefix}{s}" for s, stamp in stamps.items() if run_id(adata, source, s) != stamp]


# --- typed settings of the pipeline steps ---------------------------------------------------------


def literal_values(hint) -> tuple:
    """The values a ``Literal`` annotation allows, also inside a union (``int | Literal["auto"]``)."""
    options = [hint, *get_args(hint)]
    return tuple(v for option in options if get_origin(option) is Literal for v in get_args(option))


def recorded_only(default=None):
    """A field the tool records but does not take as an argument (a diagnostic of the run)."""
    return field(default=default, metadata={"argument": False})


@dataclass(frozen=True)
class Settings:
    """Base of the per-step settings: exact ``to_uns``/``from_uns`` and the tool's arguments."""

    #: the ``uns[key]["params"]`` entry, which is also the name of the ``lava_sc.tl`` function that writes it
    STEP: ClassVar[str] = ""

    def to_uns(self) -> dict:
        return encode(dataclasses.asdict(self))

    @classmethod
    def tool_defaults(cls) -> dict[str, Any]:
        """The tool's own defaults of :meth:`argument_names` (its signature is the one place they live)."""
        import inspect

        from . import tl

        parameters = inspect.signature(getattr(tl, cls.STEP)).parameters
        return {name: parameters[name].default for name in cls.argument_names()}

    @classmethod
    def choices(cls, name: str) -> tuple:
        """The values a ``Literal`` setting allows (for the command line's ``choices=``)."""
        return literal_values(typing.get_type_hints(cls)[name])

    @classmethod
    def from_uns(cls, stored: Mapping) -> Settings:
        """Settings from a stored record: absent fields are ``None``, types restored from the annotations."""
        hints = typing.get_type_hints(cls)
        values = {}
        for f in dataclasses.fields(cls):
            raw = decode(stored[f.name]) if f.name in stored else None
            values[f.name] = _coerce(raw, hints[f.name])
        return cls(**values)

    @classmethod
    def read(cls, adata, key: str) -> Settings | None:
        """The settings stored for this step under ``key``; None when the step has not run."""
        record = stored_params(adata, key, cls.STEP)
        return cls.from_uns(record) if record else None

    def store(self, adata, key: str, *, upstream: Mapping[str, str | None] | None = None, result=()) -> str:
        return store_params(adata, key, self.STEP, dataclasses.asdict(self), upstream=upstream, result=result)

    @classmethod
    def argument_names(cls) -> tuple[str, ...]:
        """The fields that are keyword arguments of the step's tool (what a re-run takes over)."""
        return tuple(f.name for f in dataclasses.fields(cls) if f.metadata.get("argument", True))

    def arguments(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.argument_names()}


def _coerce(value, annotation):
    """``value`` (decoded) as the annotated type: ``bool``/``int``/``float``/``str``, lists, tuples, unions."""
    if value is None:
        return None
    origin = get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in get_args(annotation) if a is not type(None)]
        if isinstance(value, list):
            for option in options:
                if get_origin(option) in (list, tuple):
                    return _coerce(value, option)
        for option in options:
            if get_origin(option) not in (list, tuple) and _fits(value, option):
                return _coerce(value, option)
        return value
    if origin is Literal:
        return value
    if origin in (list, tuple):
        (item,) = get_args(annotation)[:1] or (Any,)
        items = [_coerce(v, item) for v in (value if isinstance(value, list) else [value])]
        return items if origin is list else tuple(items)
    if annotation is bool:
        return bool(value)
    if annotation is int and not isinstance(value, bool):
        return int(value)
    if annotation is float:
        return float(value)
    if annotation is str:
        return str(value)
    return value


def _fits(value, annotation) -> bool:
    if get_origin(annotation) is Literal:
        return value in get_args(annotation)
    if annotation is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation in (bool, str):
        return isinstance(value, annotation)
    return True


@dataclass(frozen=True, kw_only=True)
class LocalitiesSettings(Settings):
    """What ``tl.localities`` ran with (``basis`` is the ``obsm`` key it resolved)."""

    STEP: ClassVar[str] = "localities"

    basis: str | None = recorded_only()
    n_cells: int
    overlap: float
    n_placements: int | Literal["auto"]
    n_placements_used: int | None = recorded_only()
    max_evaluations: int
    knn_method: Literal["auto", "exact", "pynndescent"]
    max_exact_cells: int
    random_state: int


@dataclass(frozen=True, kw_only=True)
class CorrelationsSettings(Settings):
    """What ``tl.correlations`` ran with (``genes`` records where the tested genes came from)."""

    STEP: ClassVar[str] = "correlations"

    layer: str | None
    genes: str | None = recorded_only()
    fdr: float
    alternative: Literal["greater", "two-sided"]
    min_detected: float
    min_abs_r: float
    max_partners: int | None
    remove_dense: bool
    robust: bool
    fdr_scope: Literal["all", "locality"]
    n_null: int | Literal["auto"]
    n_null_used: int | None = recorded_only()
    partial_out: str | list[str] | None
    n_partial_components: int
    random_state: int


@dataclass(frozen=True, kw_only=True)
class ModulesSettings(Settings):
    """What ``tl.modules`` ran with, and the support threshold and population check it used."""

    STEP: ClassVar[str] = "modules"

    method: Literal["leiden", "nmf"]
    resolution: float
    rank: int
    min_support: int | Literal["auto"]
    min_support_used: int | None = recorded_only()
    min_genes: int
    max_genes: int | None
    merge_overlap: float
    n_neighbors: int
    groupby: str | None
    between_populations: Literal["drop", "keep"]
    n_between_population: int | None = recorded_only()
    random_state: int


#: the settings of the three pipeline steps, in order
PIPELINE = (LocalitiesSettings, CorrelationsSettings, ModulesSettings)


#: what ``uns[key]["params"]["correlations"]["genes"]`` records, in words
GENE_SOURCES = {
    "custom": "the genes passed as `genes=`",
    "highly_variable": "var['highly_variable']",
    "all_variable": "every gene that varies",
}


def gene_source_in_words(source: str | None) -> str:
    """``"top_2000_variance"`` -> "the 2000 most variable genes", and so on (``None``: not recorded)."""
    if source is None:
        return "not recorded"
    if source.startswith("top_") and source.endswith("_variance"):
        return f"the {source[len('top_') : -len('_variance')]} most variable genes"
    return GENE_SOURCES.get(source, source)
