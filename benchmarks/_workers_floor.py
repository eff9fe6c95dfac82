"""Measurements of the floor worker (``_workers.worker_floor``): this machine's float32 GEMM and ``ssyrk``
rates, the correlation stage's GEMM work replayed alone, and a cProfile of one ``tl.correlations`` call.
"""

from __future__ import annotations

import cProfile
import pstats
import time
from pathlib import Path


def gemm_rate(n_genes: int, n_cells: int, repeats: int = 7, min_batch_s: float = 0.05) -> dict:
    """Best float32 rates, in multiply-adds per second, of numpy ``(G x n) @ (n x G)`` and of ``ssyrk``.

    Each is measured with BLAS's default thread count and with one thread (on a small matrix or a busy
    machine one thread can be the faster); the machine's rate is the better of the two.
    """
    import numpy as np
    from scipy.linalg import blas
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    a = rng.standard_normal((n_genes, n_cells), dtype=np.float32)
    b = rng.standard_normal((n_cells, n_genes), dtype=np.float32)
    bf = np.asfortranarray(b)

    def best_rate(fn, work):
        fn()
        t0 = time.perf_counter()
        fn()
        one = max(time.perf_counter() - t0, 1e-6)
        batch = max(1, int(min_batch_s / one))
        best = np.inf
        for _ in range(repeats):
            t0 = time.perf_counter()
            for _ in range(batch):
                fn()
            best = min(best, (time.perf_counter() - t0) / batch)
        return work / best

    out = {}
    for threads in (None, 1):
        with threadpool_limits(limits=threads):
            suffix = "" if threads is None else "_1thread"
            out["gemm" + suffix] = best_rate(lambda: a @ b, float(n_genes) * n_genes * n_cells)
            # ssyrk as LAVA calls it (upper triangle of z.T @ z): n * G * (G + 1) / 2 multiply-adds
            out["syrk" + suffix] = best_rate(
                lambda: blas.ssyrk(1.0, bf, trans=1, lower=0), float(n_cells) * n_genes * (n_genes + 1) / 2
            )
    out["gemm_best"] = max(out["gemm"], out["gemm_1thread"])
    out["syrk_best"] = max(out["syrk"], out["syrk_1thread"])
    return out


def replay_gemms(n_loc: int, n_genes: int, n_cells: int) -> dict:
    """Seconds for the correlation stage's GEMM work alone: ``n_loc`` back-to-back (G x n) @ (n x G).

    The same multiply-adds as the stage, run under the machine's conditions of the moment (a busy
    machine slows it as much as it slows LAVA), with BLAS's default threads and with one thread.
    """
    import numpy as np
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    a = rng.standard_normal((n_genes, n_cells), dtype=np.float32)
    b = rng.standard_normal((n_cells, n_genes), dtype=np.float32)
    out = {}
    for threads in (None, 1):
        with threadpool_limits(limits=threads):
            a @ b
            t0 = time.perf_counter()
            for _ in range(n_loc):
                a @ b
            out["default_threads_s" if threads is None else "one_thread_s"] = round(time.perf_counter() - t0, 3)
    out["best_s"] = min(out["default_threads_s"], out["one_thread_s"])
    return out


#: LAVA functions whose cumulative time the profile reports when they exist (names may change)
PROFILE_FUNCTIONS = {
    "syrk_upper": "GEMM (ssyrk, observed + shuffled null)",
    "gather_rows": "gather locality rows (sparse -> dense)",
    "_column_stats": "numba: column means, norms, detection",
    "_write_tested": "numba: standardise tested genes + null copies",
    "_scan": "numba: level counts, then histograms and candidates from each start (both Gram matrices)",
    "significant_pairs": "numba: scan, knockoff thresholds, selection",
    "strongest_partners": "max_partners filter",
    "column_floor": "per-gene floor",
    "gene_matrix": "gene matrix (float32 CSR, no copy when all genes)",
    "assemble_sketch": "assemble sketch",
}


def profile_correlations(adata, top: int = 15) -> dict:
    """cProfile of one ``tl.correlations`` call: LAVA's named kernels and the top functions by own time.

    Run with ``n_jobs=1``: cProfile sees only the calling thread, so with worker threads every kernel
    would hide behind a lock wait. This is a separate call from the timed one.
    """
    import lava_sc

    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    lava_sc.tl.correlations(adata, n_jobs=1)
    prof.disable()
    total = time.perf_counter() - t0
    stats = pstats.Stats(prof).stats  # (file, line, name) -> (cc, nc, tottime, cumtime, callers)
    by_name: dict = {}
    for (file, _line, name), (_cc, ncalls, _tottime, cumtime, _callers) in stats.items():
        label = name.split("'")[1] if name.startswith("<method '") else name
        for key, desc in PROFILE_FUNCTIONS.items():
            if label == key and "lava_sc" in file:
                entry = by_name.setdefault(key, {"what": desc, "cumtime_s": 0.0, "ncalls": 0})
                entry["cumtime_s"] += cumtime
                entry["ncalls"] += ncalls
    for v in by_name.values():
        v["cumtime_s"] = round(v["cumtime_s"], 3)
        v["share"] = round(v["cumtime_s"] / total, 3)
    rows = sorted(stats.items(), key=lambda kv: -kv[1][2])[:top]
    top_rows = [
        {
            "function": f"{Path(file).name}:{line}({name})" if file != "~" else name,
            "ncalls": nc,
            "tottime_s": round(tt, 3),
            "cumtime_s": round(ct, 3),
            "share_own": round(tt / total, 3),
        }
        for (file, line, name), (_cc, nc, tt, ct, _callers) in rows
    ]
    return {"total_s": round(total, 3), "named": by_name, "top_by_own_time": top_rows}
