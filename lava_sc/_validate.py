"""Input checks that fail early with a message naming the problem and the fix."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from numbers import Integral, Real

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from ._keys import Keys


def check_adata(adata) -> None:
    if not isinstance(adata, AnnData):
        raise TypeError(f"Expected an AnnData object as first argument, got {type(adata).__name__}.")
    if adata.n_obs == 0 or adata.n_vars == 0:
        raise ValueError(f"AnnData is empty ({adata.n_obs} cells x {adata.n_vars} genes); pass a non-empty object.")


def check_key(key) -> str:
    if not isinstance(key, str) or not key:
        raise TypeError(f"`key` must be a non-empty string, got {key!r}.")
    return key


def check_int(name: str, value, *, low: int | None = None, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"`{name}` must be an integer, got {value!r}.")
    if low is not None and value < low:
        raise ValueError(f"`{name}` must be >= {low}, got {value}.")
    if high is not None and value > high:
        raise ValueError(f"`{name}` must be <= {high}, got {value}.")
    return int(value)


def check_bool(name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"`{name}` must be True or False, got {value!r}.")
    return bool(value)


def check_float(name: str, value, *, low: float | None = None, high: float | None = None, open_low=False) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"`{name}` must be a number, got {value!r}.")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"`{name}` must be finite, got {value}.")
    if low is not None and (value <= low if open_low else value < low):
        raise ValueError(f"`{name}` must be {'>' if open_low else '>='} {low}, got {value}.")
    if high is not None and value > high:
        raise ValueError(f"`{name}` must be <= {high}, got {value}.")
    return value


def check_choice(name: str, value, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {list(choices)}, got {value!r}.")
    return value


def resolve_basis(adata: AnnData, basis: str) -> str:
    """The obsm key for ``basis``, accepting both ``"umap"`` and ``"X_umap"``."""
    if not isinstance(basis, str):
        raise TypeError(f"`basis` must be an obsm key (a string such as 'X_umap'), got {basis!r}.")
    for candidate in (basis, f"X_{basis}"):
        if candidate in adata.obsm:
            return candidate
    raise KeyError(
        f"Embedding {basis!r} not found in adata.obsm (available: {list(adata.obsm.keys())}). "
        "Compute it first (e.g. sc.pp.neighbors(adata); sc.tl.umap(adata)) or pass `basis=` with an existing key."
    )


def embedding(adata: AnnData, basis: str) -> np.ndarray:
    """The embedding as a finite float64 array of shape (cells, dims)."""
    key = resolve_basis(adata, basis)
    values = adata.obsm[key]
    if isinstance(values, pd.DataFrame):
        values = values.to_numpy()
    if sp.issparse(values):
        values = values.toarray()
    values = np.asarray(values)
    if values.dtype.kind not in "biuf":
        raise TypeError(f"adata.obsm[{key!r}] must be numeric, got dtype {values.dtype}.")
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2 or values.shape[1] == 0:
        raise ValueError(f"adata.obsm[{key!r}] must be a cells x dimensions matrix, got shape {values.shape}.")
    values = values.astype(np.float64)
    bad = ~np.isfinite(values).all(axis=1)
    if bad.any():
        raise ValueError(
            f"adata.obsm[{key!r}] has NaN or inf in {int(bad.sum())} cells; remove those cells "
            "(adata = adata[np.isfinite(adata.obsm[...]).all(1)].copy()) or recompute the embedding."
        )
    return values


def layer_values(adata: AnnData, layer: str | None) -> tuple[object, str]:
    """``X`` or the layer ``layer``, unread, and how to name it in a message; errors for a missing layer."""
    if layer is None:
        return adata.X, "adata.X"
    if not isinstance(layer, str):
        raise TypeError(f"`layer` must be a layer name or None, got {layer!r}.")
    if layer not in adata.layers:
        raise KeyError(f"Layer {layer!r} not found (available: {list(adata.layers.keys())}); pass `layer=None` for X.")
    return adata.layers[layer], f"adata.layers[{layer!r}]"


def expression(adata: AnnData, layer: str | None):
    """``X`` or a layer, checked to be numeric and finite (returned as is: sparse, dense or a dask array)."""
    values, where = layer_values(adata, layer)
    if values is None:
        raise ValueError(f"{where} is empty; store log-normalised expression there or pass `layer=`.")
    from ._core.distributed import all_finite, is_dask

    if is_dask(values):  # lazy (e.g. read from h5ad / zarr): check the dtype now, finiteness in one pass
        if values.dtype.kind not in "biuf":
            raise TypeError(f"{where} must be numeric, got dtype {values.dtype}; convert it to float.")
        if values.dtype.kind == "f" and not all_finite(values):
            raise ValueError(f"{where} contains NaN or inf; replace them (e.g. with 0) or choose another `layer`.")
        return values.astype(np.float32) if values.dtype.kind == "b" else values
    if hasattr(values, "to_memory"):  # backed sparse dataset
        values = values.to_memory()
    elif not sp.issparse(values) and not isinstance(values, np.ndarray):  # backed dense (h5py.Dataset), np.matrix
        values = np.asarray(values)
    if sp.issparse(values) and values.format not in ("csr", "csc"):  # COO, LIL, DOK, BSR: the kernels read CSR
        values = values.tocsr()
    data = values.data if sp.issparse(values) else np.asarray(values)
    if data.dtype.kind not in "biuf":
        raise TypeError(f"{where} must be numeric, got dtype {data.dtype}; convert it to float.")
    if data.dtype.kind == "f" and not np.isfinite(data).all():
        raise ValueError(f"{where} contains NaN or inf; replace them (e.g. with 0) or choose another `layer`.")
    if data.dtype.kind == "b":  # presence/absence: the kernels compute in floats (numba has no float(bool))
        return values.astype(np.float32)
    return values


#: tools whose results go to ``key_added`` (the others read and write ``key``)
KEY_ADDED_TOOLS = ("localities", "score")


def run_hint(tool: str, key: str) -> str:
    """A call of ``lava_sc.tl.<tool>`` that writes its results under ``key`` (with the right argument name)."""
    argument = "key_added" if tool in KEY_ADDED_TOOLS else "key"
    extra = {"enrich": "gene_sets, ", "score": "modules, "}.get(tool, "")
    return f"lava_sc.tl.{tool}(adata, {extra}{argument}={key!r})"


def require(adata: AnnData, key: str, entry: str, tool: str) -> None:
    """Raise a KeyError saying which tool to run first when ``uns[key][entry]`` is missing."""
    keys = Keys(key)
    present = keys.uns in adata.uns and isinstance(adata.uns[keys.uns], Mapping) and entry in adata.uns[keys.uns]
    if entry == "localities":
        present = present and keys.obsm_localities in adata.obsm
    if not present:
        raise KeyError(f"No LAVA {entry} under key {key!r}; run {run_hint(tool, key)} first.")
    require_current(adata, key)


def require_current(adata: AnnData, key: str) -> None:
    """Raise a KeyError when a result under ``key`` was computed from inputs recomputed since.

    Within one key a re-run clears what it makes stale (``_keys.INVALIDATES``); a result computed from
    another key's results (``tl.score`` from the localities under ``key``) is checked by its stamps, so
    that nothing is read under a name that now means something else.
    """
    from ._params import stale_upstream

    params = adata.uns[key].get(Keys.params, {})
    for step in params if isinstance(params, Mapping) else ():
        inputs = stale_upstream(adata, key, step)
        if inputs:
            raise KeyError(
                f"The {step} results under key {key!r} were computed from {', '.join(inputs)}, which has been "
                f"recomputed or removed since; re-run {run_hint(step, key)} to read them."
            )


def check_localities(adata: AnnData, key: str, *, sketch: bool = False) -> None:
    """Raise when the stored localities no longer belong together.

    ``obsm[f"{key}_localities"]`` (cells x localities), ``uns[key]["probes"]`` (one row per locality)
    and, with ``sketch=True``, ``uns[key]["sketch"]`` (one row per locality) come from one run of
    :func:`lava_sc.tl.localities` / :func:`lava_sc.tl.correlations`; an entry replaced by hand (or
    copied from another object) would make later steps index out of range or mix localities.
    """
    keys = Keys(key)
    membership = adata.obsm[keys.obsm_localities]
    if not (sp.issparse(membership) or isinstance(membership, np.ndarray)) or np.ndim(membership) != 2:
        raise TypeError(
            f"adata.obsm[{keys.obsm_localities!r}] must be a sparse cells x localities matrix, got "
            f"{type(membership).__name__}; rerun lava_sc.tl.localities(adata, key_added={key!r})."
        )
    n_loc = membership.shape[1]
    slot = adata.uns[key]
    check_locality_sizes(membership, slot, key)
    sizes = {f"adata.uns[{key!r}]['probes']": len(slot["probes"])} if Keys.probes in slot else {}
    if sketch and Keys.sketch in slot:
        sizes[f"adata.uns[{key!r}]['sketch']"] = slot[Keys.sketch].shape[0]
    for where, n in sizes.items():
        if n != n_loc:
            raise ValueError(
                f"adata.obsm[{keys.obsm_localities!r}] has {n_loc} localities but {where} has {n}: they come from "
                f"different runs; rerun lava_sc.tl.localities(adata, key_added={key!r}) (then tl.correlations / "
                "tl.modules)."
            )


def check_locality_sizes(membership, slot, key: str) -> None:
    """A locality holds at most the ``n_cells`` cells it was built with: fewer after ``adata[mask]``,
    more only when objects were concatenated (``ad.concat``), which mixes the localities of both."""
    n_cells = slot.get(Keys.params, {}).get("localities", {}).get("n_cells") if isinstance(slot, Mapping) else None
    if n_cells is None:
        return
    # stored entries per column (the tools store only ones): no boolean copy of a large membership
    sizes = membership.getnnz(axis=0) if sp.issparse(membership) else np.count_nonzero(membership, axis=0)
    if len(sizes) and sizes.max() > int(n_cells):
        raise ValueError(
            f"A locality under key {key!r} holds {int(sizes.max())} cells but was built with n_cells={int(n_cells)}: "
            "adata joins objects whose localities were computed apart (e.g. ad.concat), so each locality now "
            f"mixes cells of several; rerun lava_sc.tl.localities(adata, key_added={key!r}) on the joined data."
        )


def check_per_cell(adata: AnnData, values, where: str, tool: str, key: str) -> None:
    """Raise when a per-cell result no longer has one row per cell of ``adata`` (e.g. an array kept in ``uns``
    across ``adata[mask]``): its rows would be misaligned with the cells."""
    n = np.shape(values)[0] if np.ndim(values) else 0
    if n != adata.n_obs:
        raise ValueError(
            f"{where} has {n} rows but adata has {adata.n_obs} cells, so its rows no longer match the cells "
            f"(was adata subset after the tool?); rerun {run_hint(tool, key)}."
        )


#: entries of ``uns[key]`` that mark LAVA results (localities, correlations, modules)
LAVA_ENTRIES = (Keys.probes, Keys.sketch, Keys.modules, Keys.module_genes, Keys.locality_activity)


def check_not_lava_slot(adata: AnnData, key_added: str, entries=LAVA_ENTRIES) -> None:
    """Refuse a ``key_added`` whose ``uns`` slot holds LAVA results (any of ``entries``) that a tool
    writing there would overwrite or mix with its own."""
    slot = adata.uns.get(key_added)
    found = [entry for entry in entries if isinstance(slot, Mapping) and entry in slot]
    if found:
        raise ValueError(
            f"uns[{key_added!r}] holds LAVA results ({', '.join(found)}) that this tool would overwrite; "
            "choose another `key_added`."
        )


def check_key_added_differs(key_added: str, key: str, holds: str, example: str) -> None:
    """Refuse writing results to ``key``, which holds what the tool reads (``holds``)."""
    if key_added == key:
        raise ValueError(
            f"`key_added` ({key_added!r}) must differ from `key`, which holds {holds}; pass e.g. key_added={example!r}."
        )


def check_obs_column(adata: AnnData, column, name: str, *, optional: bool = False) -> None:
    """``column`` (passed as argument ``name``) must name a column of ``adata.obs``; ``optional``: the
    argument also accepts None, which the messages mention."""
    if not isinstance(column, str):
        hint = " or None" if optional else ""
        raise TypeError(f"`{name}` must be the name of a column of adata.obs{hint}, got {column!r}.")
    if column not in adata.obs.columns:
        hint = f", or `{name}=None`" if optional else ""
        raise KeyError(
            f"Column {column!r} (`{name}`) not found in adata.obs (available: {list(adata.obs.columns)}); "
            f"pass `{name}=` with an existing column{hint}."
        )
