"""Small helpers shared by the tools: h5ad-safe params, logging, progress bars."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scanpy import logging as logg
from tqdm import tqdm


def serialisable(value):
    """Convert a parameter value into something h5ad and zarr can store (None -> "None")."""
    if value is None:
        return "None"
    if isinstance(value, Mapping):
        return {str(k): serialisable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return np.asarray([serialisable(v) for v in value])
    if isinstance(value, (np.generic,)):
        return value.item()
    return value


def store(adata, key: str, **entries) -> None:
    """Set ``adata.uns[key][name] = value`` for each entry, creating ``uns[key]`` if needed."""
    slot = adata.uns.setdefault(key, {})
    slot.update(entries)


def store_params(adata, key: str, stage: str, params: Mapping) -> None:
    slot = adata.uns.setdefault(key, {})
    all_params = dict(slot.get("params", {}))
    all_params[stage] = serialisable(params)
    slot["params"] = all_params


def log_added(what: str, start, added: list[str]) -> None:
    logg.info(f"    finished {what}; added\n" + "\n".join(f"    {a}" for a in added), time=start)


def progress(total: int, desc: str, disable: bool | None = None):
    """A tqdm bar that stays quiet for tiny jobs and when scanpy's verbosity is below 'info'."""
    from scanpy import settings

    if disable is None:
        disable = total < 20 or settings.verbosity < 2
    return tqdm(total=total, desc=desc, disable=disable, leave=False)
