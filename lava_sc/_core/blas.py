"""Float32 symmetric rank-k update through scipy's Cython BLAS, called without holding the GIL.

``scipy.linalg.blas.ssyrk`` keeps the GIL for the whole call, so localities sketched in Python
threads would run one GEMM at a time. The same ``ssyrk`` symbol from ``scipy.linalg.cython_blas``
called through ``ctypes`` releases it, so threads overlap their GEMMs, and it writes into a buffer
we own (no fresh G x G allocation per locality).
"""

from __future__ import annotations

import ctypes
from functools import lru_cache

import numpy as np
from numba.extending import get_cython_function_address
from threadpoolctl import ThreadpoolController

_INT_P = ctypes.POINTER(ctypes.c_int)
_FLOAT_P = ctypes.POINTER(ctypes.c_float)
_SSYRK = ctypes.CFUNCTYPE(
    None,
    ctypes.c_char_p,  # uplo
    ctypes.c_char_p,  # trans
    _INT_P,  # n
    _INT_P,  # k
    _FLOAT_P,  # alpha
    ctypes.c_void_p,  # a
    _INT_P,  # lda
    _FLOAT_P,  # beta
    ctypes.c_void_p,  # c
    _INT_P,  # ldc
)(get_cython_function_address("scipy.linalg.cython_blas", "ssyrk"))


def syrk_upper(a: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Upper triangle of ``a.T @ a`` into ``out`` (float32, Fortran-ordered), GIL released.

    Parameters
    ----------
    a
        ``(k, n)`` float32, Fortran-ordered (columns contiguous).
    out
        ``(n, n)`` float32, Fortran-ordered; only its upper triangle is written (the lower one is left
        as it was).
    """
    k, n = a.shape
    if a.dtype != np.float32 or out.dtype != np.float32 or not a.flags.f_contiguous or not out.flags.f_contiguous:
        raise TypeError("syrk_upper needs Fortran-ordered float32 arrays.")
    if out.shape != (n, n):
        raise ValueError(f"`out` must be ({n}, {n}), got {out.shape}.")
    if n == 0:
        return out
    if k == 0:
        out[np.triu_indices(n)] = 0.0
        return out
    n_, k_, lda, ldc = ctypes.c_int(n), ctypes.c_int(k), ctypes.c_int(k), ctypes.c_int(n)
    alpha, beta = ctypes.c_float(1.0), ctypes.c_float(0.0)
    _SSYRK(
        b"U",
        b"T",
        ctypes.byref(n_),
        ctypes.byref(k_),
        ctypes.byref(alpha),
        a.ctypes.data,
        ctypes.byref(lda),
        ctypes.byref(beta),
        out.ctypes.data,
        ctypes.byref(ldc),
    )
    return out


@lru_cache(maxsize=1)
def _controller() -> ThreadpoolController:
    # finding the loaded BLAS libraries takes ~10 ms; they are all loaded by the time lava_sc is imported
    return ThreadpoolController()


def one_blas_thread():
    """Context manager: BLAS runs single-threaded inside (threadpoolctl, libraries looked up once)."""
    return _controller().limit(limits=1, user_api="blas")


def blas_threads() -> int | None:
    """The BLAS thread count in effect now (the smallest over loaded BLAS libraries), or None."""
    counts = [lib.num_threads for lib in _controller().select(user_api="blas").lib_controllers]
    return min(counts) if counts else None
