"""Ctrl-C around code that must not be cut in half.

numba loads its typing and lowering registries (``numba.cpython.unicode``, ``numba.np.npyimpl``,
...) on the first compile or cache load. A KeyboardInterrupt half-way through leaves them half
registered, and every later numba call in the process fails (``KeyError: duplicate registration``),
so a second run after Ctrl-C would fail too. :func:`load_numba` does that loading once, at import,
with the interrupt held back until it is done.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Hold back SIGINT inside the block, then hand it to the handler that was in place.

    Python's default handler raises ``KeyboardInterrupt`` after the block. Only the main thread
    receives signals, and an ignored or OS-default SIGINT has nothing to defer: there, and under a
    handler installed outside Python, the block runs as it is.
    """
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or not callable(previous):
        yield
        return
    received: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        previous(signal.SIGINT, None)


def load_numba() -> None:
    """Import numba and load its CPU registries (about 0.5 s, paid once per process) uninterrupted."""
    with deferred_interrupts():
        from numba.core.registry import cpu_target

        cpu_target.target_context.refresh()
