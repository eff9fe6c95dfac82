"""Numerical kernels of LAVA. Plain numpy/scipy/numba; nothing in here knows about AnnData."""
