"""Small helpers shared by the tools: storing entries, logging, progress bars, undo on error."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from scanpy import logging as logg
from tqdm import tqdm


def store(adata, key: str, **entries) -> None:
    """Set ``adata.uns[key][name] = value`` for each entry, creating ``uns[key]`` if needed."""
    slot = adata.uns.setdefault(key, {})
    slot.update(entries)


def log_added(what: str, start, added: list[str]) -> None:
    logg.info(f"    finished {what}; added\n" + "\n".join(f"    {a}" for a in added), time=start)


def progress(total: int, desc: str, disable: bool | None = None):
    """A tqdm bar that stays quiet for tiny jobs and when scanpy's verbosity is below 'info'."""
    from scanpy import settings

    if disable is None:
        disable = total < 20 or settings.verbosity < 2
    return tqdm(total=total, desc=desc, disable=disable, leave=False)


@contextmanager
def restore_on_error(adata) -> Iterator[None]:
    """Undo what the block wrote into ``adata.uns``, ``obsm`` and ``obs`` if it raises (Ctrl-C included).

    A tool that runs missing steps first (``tl.modules`` runs ``tl.localities`` and ``tl.correlations``)
    writes their results before its own heavy work; interrupted there, it must not leave a half-done
    ``adata``. Only references are kept (no data is copied): top-level ``uns`` entries, with a shallow
    copy of each dict (the tools add and remove entries of ``uns[key]`` but never change them in place),
    the ``obsm`` entries and the ``obs`` columns.
    """
    uns = {k: (v, dict(v) if isinstance(v, dict) else None) for k, v in adata.uns.items()}
    obsm = dict(adata.obsm.items())
    obs_columns = list(adata.obs.columns)
    try:
        yield
    except BaseException:
        for k in [k for k in adata.uns if k not in uns]:
            del adata.uns[k]
        for k, (value, content) in uns.items():
            if content is not None:
                value.clear()
                value.update(content)
            adata.uns[k] = value
        for k in [k for k in adata.obsm if k not in obsm]:
            del adata.obsm[k]
        for k, value in obsm.items():
            if adata.obsm.get(k) is not value:
                adata.obsm[k] = value
        added = [c for c in adata.obs.columns if c not in obs_columns]
        if added:
            adata.obs.drop(columns=added, inplace=True)
        raise
