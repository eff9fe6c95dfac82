"""Ctrl-C held back around numba's one-time set-up (a half-loaded numba fails every later call)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import pytest

from lava_sc._core.interrupts import deferred_interrupts


@pytest.fixture(autouse=True)
def python_handles_sigint():
    """Python's own handler, even where the suite was started with SIGINT ignored (in the background)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_an_interrupt_inside_the_block_is_raised_after_it():
    finished = False
    with pytest.raises(KeyboardInterrupt):
        with deferred_interrupts():
            os.kill(os.getpid(), signal.SIGINT)
            finished = True
    assert finished
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_no_interrupt_no_exception_and_the_handler_is_restored():
    with deferred_interrupts():
        pass
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_handler_of_the_users_own_gets_the_interrupt_after_the_block():
    calls = []
    signal.signal(signal.SIGINT, lambda signum, frame: calls.append(signum))
    with deferred_interrupts():
        os.kill(os.getpid(), signal.SIGINT)
        assert not calls
    assert calls == [signal.SIGINT]


def test_an_ignored_interrupt_stays_ignored():
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with deferred_interrupts():
        os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN


def test_outside_the_main_thread_the_block_just_runs():
    errors = []

    def work():
        try:
            with deferred_interrupts():
                pass
        except Exception as err:  # signal.signal raises ValueError outside the main thread
            errors.append(err)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert not errors


def test_importing_the_kernels_loads_numbas_registries():
    code = "import sys, lava_sc._core; print('numba.np.npyimpl' in sys.modules, 'numba.cpython.unicode' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "True"]
