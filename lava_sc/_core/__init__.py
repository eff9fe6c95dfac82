"""Numerical kernels of LAVA. Plain numpy/scipy/numba; nothing in here knows about AnnData."""

from .interrupts import load_numba

load_numba()  # before any kernel: a Ctrl-C during numba's first-time set-up would break it for the process
