"""Small helpers shared by the tools: storing entries, logging, progress bars, undo on error."""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tqdm import tqdm
from tqdm.std import EMA

from . import _logging as logg


def store(adata, key: str, **entries) -> None:
    """Set ``adata.uns[key][name] = value`` for each entry, creating ``uns[key]`` if needed."""
    slot = adata.uns.setdefault(key, {})
    slot.update(entries)


def log_added(what: str, start, added: list[str]) -> None:
    logg.info(f"    finished {what}; added\n" + "\n".join(f"    {a}" for a in added), time=start)


def progress(total: int, desc: str, disable: bool | None = None):
    """A tqdm bar that stays quiet for tiny jobs and when scanpy's verbosity is below 'info'.

    When LAVA's numba kernels are still to be compiled (the first run on a machine), that is said
    first, and the bar's rate starts after its first step, which carries the compilation.
    """
    from scanpy import settings

    from ._core.compiled import share_to_compile

    if disable is None:
        disable = total < 20 or settings.verbosity < 2
    if disable or share_to_compile() < 0.5:
        return tqdm(total=total, desc=desc, disable=disable, leave=False)
    logg.info(
        "    compiling LAVA's numerical kernels: first run on this machine only (about a minute on two cores), "
        "then loaded from numba's cache; progress estimates start after it"
    )
    return RateAfterFirstStep(total=total, desc=desc, leave=False)


class RateAfterFirstStep(tqdm):
    """A tqdm whose rate and ETA leave out its first step (which carried a one-time compilation)."""

    def update(self, n=1):
        first = self.n == 0 and n > 0
        shown = super().update(n)
        if first:  # restart the rate estimate from here; the elapsed time shown stays the true one
            self._ema_dn, self._ema_dt = EMA(self.smoothing), EMA(self.smoothing)
            self.last_print_n, self.last_print_t = self.n, self._time()
        return shown


def advance(bar) -> None:
    """``bar.update()``, raising the total when the work outruns its plan, so no bar ends past its total."""
    bar.update()
    if bar.total is not None and bar.n > bar.total:
        bar.total = bar.n
        bar.refresh()


@contextmanager
def restore_on_error(adata) -> Iterator[None]:
    """Undo what the block wrote into ``adata.uns``, ``obsm`` and ``obs`` if it raises (Ctrl-C included).

    A tool that runs missing steps first (``tl.modules`` runs ``tl.localities`` and ``tl.correlations``)
    writes their results before its own heavy work; interrupted there, it must not leave a half-done
    ``adata``. Only references are kept (no data is copied): top-level ``uns`` entries, with a shallow
    copy of each dict (the tools add and remove entries of ``uns[key]`` but never change them in place),
    the ``obsm`` entries and the ``obs`` columns (tools replace a column, never write into one).
    """
    uns = {k: (v, dict(v) if isinstance(v, dict) else None) for k, v in adata.uns.items()}
    obsm = dict(adata.obsm.items())
    obs_columns = {c: adata.obs[c] for c in adata.obs.columns}
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
        for c, column in obs_columns.items():  # an overwritten column gets its old values back
            if adata.obs[c] is not column:
                adata.obs[c] = column
        raise


@contextmanager
def explained_memory_error(step: str, advice: str) -> Iterator[None]:
    """Re-raise numpy's bare ``MemoryError`` ("Unable to allocate 3.0 GiB for an array with shape ...")
    as one that names the step and the fix; a ``MemoryError`` that already gives ``advice`` passes."""
    try:
        yield
    except MemoryError as err:
        if advice in str(err):
            raise
        raise MemoryError(f"{step} ran out of memory ({err or 'no details'}); {advice}") from err


def renamed_keyword(old: str, new: str) -> Callable[[Callable], Callable]:
    """Accept the keyword ``old`` as ``new`` for one release, with a FutureWarning naming the new spelling.

    Used where a reader's ``key_added`` became ``key`` (scanpy's rule: ``key_added`` names what a tool
    writes, ``key`` what a reader reads).
    """

    def decorate(function: Callable) -> Callable:
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            if old in kwargs:
                if new in kwargs:
                    raise TypeError(f"{function.__name__}() got both `{old}` and `{new}`; pass only `{new}`.")
                warnings.warn(
                    f"{function.__name__}(): `{old}=` is now `{new}=`; `{old}` will be removed.",
                    FutureWarning,
                    stacklevel=2,
                )
                kwargs[new] = kwargs.pop(old)
            return function(*args, **kwargs)

        return wrapper

    return decorate


def positional_to_keywords(*names: str) -> Callable[[Callable], Callable]:
    """Accept the keyword-only ``names`` as extra positional arguments for one release, with a FutureWarning.

    Public functions take at most 3 positional parameters; this keeps calls written before a parameter
    became keyword-only working (``f(adata, "group", "A", "B")`` -> ``f(adata, "group", group_a="A",
    group_b="B")``).
    """

    def decorate(function: Callable) -> Callable:
        n_positional = sum(
            p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
            for p in inspect.signature(function).parameters.values()
        )

        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            extra = args[n_positional:]
            if extra:
                if len(extra) > len(names):
                    raise TypeError(
                        f"{function.__name__}() takes {n_positional} positional arguments (then "
                        f"{', '.join(names)} by keyword) but {len(args)} were given."
                    )
                moved = dict(zip(names, extra, strict=False))
                clash = sorted(set(moved) & set(kwargs))
                if clash:
                    raise TypeError(f"{function.__name__}() got {clash} both by position and by keyword.")
                warnings.warn(
                    f"{function.__name__}(): pass {', '.join(f'{n}=' for n in moved)} by keyword; "
                    "positional use will be removed.",
                    FutureWarning,
                    stacklevel=2,
                )
                kwargs.update(moved)
                args = args[:n_positional]
            return function(*args, **kwargs)

        return wrapper

    return decorate
