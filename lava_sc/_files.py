"""Files the package writes (h5ad, CSV tables, figures, GMT) are written atomically, through here."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; renamed over ``path`` only once the block finishes.

    ``os.replace`` within one folder is atomic, so ``path`` is always either the old file or the new
    one, never half of each: not on Ctrl-C, not on a crash or SIGKILL mid-write (which can leave only a
    hidden ``.<name>.<id>.part<suffix>`` file beside it). The temporary name keeps the suffix, so
    writers that choose the format from it (matplotlib) write the same format.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.part{path.suffix}")
    try:
        yield partial
        os.replace(partial, path)
    finally:
        if partial.exists():
            partial.unlink()
