"""Benchmark workers. Each runs in a fresh process started by the speed parts (``speed.py``, through
``_common.run_worker``), from the repository root:

    python -m benchmarks._workers {compare,floor,scaling,fidelity} --params '<json>' --result <path>

A worker rewrites ``<path>`` after every stage, so a run stopped at its time limit still reports how far
it got. ``timed_start_unix`` marks the start of the measured part (after imports, warm-up and data).

This module holds the workers, their ``Recorder`` and the LAVA / Hotspot pipelines they time; the data
they build is in ``_workers_data.py`` and the floor worker's GEMM rates and profile in ``_workers_floor.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import time
import warnings
from pathlib import Path

from ._common import (
    GIB,
    best_match_jaccard,
    current_rss_bytes,
    git_revision,
    peak_rss_bytes,
    write_json_atomic,
)
from ._workers_data import chunked_planted_data, fidelity_embedding, fingerprint, planted_data
from ._workers_floor import gemm_rate, profile_correlations, replay_gemms

os.environ.setdefault("TQDM_DISABLE", "1")
warnings.filterwarnings("ignore")

WARMUP_CELLS = 1000


class Recorder:
    """The worker's result dictionary, written to disk after every change."""

    def __init__(self, path: str | None, params: dict | None = None, parent: Recorder | None = None):
        """A recorder with a ``path`` writes the file; one with a ``parent`` is a sub-dictionary of it."""
        self.path = None if path is None else Path(path)
        self.parent = parent
        self.data: dict = {"status": "running", "stage": "setup", "stages": {}}
        if params is not None:
            self.data["params"] = params
        self.write()

    def write(self) -> None:
        self.data["peak_rss_gib"] = round(peak_rss_bytes() / GIB, 3)
        if self.parent is not None:
            self.parent.write()
        elif self.path is not None:
            write_json_atomic(self.path, self.data)

    def set(self, **entries) -> None:
        self.data.update(entries)
        self.write()

    def start_timed(self) -> None:
        self.data["timed_start_unix"] = time.time()
        self.data["rss_before_timed_gib"] = round(current_rss_bytes() / GIB, 3)
        self.data["peak_rss_before_timed_gib"] = round(peak_rss_bytes() / GIB, 3)
        self.write()

    @contextlib.contextmanager
    def stage(self, name: str):
        self.data["stage"] = name
        self.write()
        t0 = time.perf_counter()
        yield
        self.data["stages"][name] = round(time.perf_counter() - t0, 3)
        # ru_maxrss never falls: the stage after which it jumps is the one that needed the memory
        self.data.setdefault("peak_rss_after_stage_gib", {})[name] = round(peak_rss_bytes() / GIB, 3)
        self.data["stage"] = None
        self.write()

    def done(self, **entries) -> None:
        self.data.update(entries)
        self.data["status"] = "done"
        self.write()


# --------------------------------------------------------------------------------------------- helpers


def lava_module_genes(adata, key: str = "lava") -> dict:
    import lava_sc

    table = lava_sc.get.module_genes(adata, key=key)
    return {str(m): sorted(g["gene"].astype(str)) for m, g in table.groupby("module", observed=True)}


def run_lava_modules(adata, rec: Recorder) -> float:
    """``lava_sc.tl.modules(adata)`` (localities + correlations + modules) with per-stage times.

    The stage split wraps the ``localities`` / ``correlations`` functions ``tl.modules`` calls, so the
    measured call is exactly the user's one-liner: each where ``tl.modules`` looks it up, its own module
    (``lava_sc.tl._modules``) when it holds the name, else ``lava_sc.tl`` (``localities`` is imported from
    there when it is needed, by ``lava_sc._adata.ensure_localities``). Returns the total seconds.
    """
    import lava_sc
    import lava_sc.tl as tl
    import lava_sc.tl._modules as tm

    originals = {}
    for name in ("localities", "correlations"):
        owner = tm if callable(getattr(tm, name, None)) else tl
        fn = getattr(owner, name, None)
        if not callable(fn):
            continue
        originals[name] = (owner, fn)

        def wrapper(*args, _fn=fn, _name=name, **kwargs):
            with rec.stage(_name):
                out = _fn(*args, **kwargs)
            rec.set(stage="modules")  # what tl.modules does after its missing steps
            return out

        setattr(owner, name, wrapper)
    rec.data["stage"] = "modules"
    t0 = time.perf_counter()
    try:
        lava_sc.tl.modules(adata)
    finally:
        for name, (owner, fn) in originals.items():
            setattr(owner, name, fn)
    total = time.perf_counter() - t0
    rec.data["stages"]["modules"] = round(total - sum(rec.data["stages"].get(n, 0.0) for n in originals), 3)
    rec.data.setdefault("peak_rss_after_stage_gib", {})["modules"] = round(peak_rss_bytes() / GIB, 3)
    rec.data["stage"] = None
    rec.write()
    return total


def lava_summary(adata, key: str = "lava") -> dict:
    slot = adata.uns[key]
    params = slot.get("params", {})
    loc = params.get("localities", {})
    membership = adata.obsm[f"{key}_localities"]
    return {
        "n_localities": int(membership.shape[1]),
        "cells_per_locality": int(loc.get("n_cells", 0)) or None,
        "locality_memberships": int(membership.nnz),
        "n_genes_tested": int(len(slot["genes"])) if "genes" in slot else None,
        "n_pairs_in_sketch": int(slot["sketch"].shape[1]) if "sketch" in slot else None,
        "n_associations": int(slot["sketch"].nnz) if "sketch" in slot else None,
        "min_support_used": params.get("modules", {}).get("min_support_used"),
        "module_sizes": (
            [int(n) for n in slot["module_genes"].groupby("module", observed=True).size()]
            if "module_genes" in slot
            else None
        ),
    }


def silence() -> None:
    import scanpy as sc

    sc.settings.verbosity = 0


# --------------------------------------------------------------------------------------------- workers


def warm_up_lava(n_genes: int = 100) -> None:
    """Run the whole LAVA pipeline once on a small data set so JIT compilation is not timed.

    The probe search is cut short (``max_evaluations=5``): warm-up only needs every kernel called once.
    """
    import lava_sc

    adata = planted_data(WARMUP_CELLS, n_genes, random_state=1)
    quick_localities(adata)
    lava_sc.tl.modules(adata)


def quick_localities(adata) -> None:
    """``tl.localities`` with a short probe search, for runs that only need *some* localities."""
    import lava_sc

    try:
        lava_sc.tl.localities(adata, max_evaluations=5)
    except TypeError:  # the option was renamed or removed: fall back to the defaults
        lava_sc.tl.localities(adata)


def worker_compare(params: dict, rec: Recorder) -> None:
    """lava_sc vs Hotspot in one process: both warmed up, the same AnnData, LAVA first, then Hotspot.

    ``timed_start_unix`` is reset at the start of each timed run, so the time limit applies to each.
    """
    import contextlib as _cl
    import io

    silence()
    with rec.stage("warmup"):
        warm_up_lava()
        if params.get("hotspot", True):
            with _cl.redirect_stdout(io.StringIO()):
                hotspot_pipeline(planted_data(WARMUP_CELLS, 100, random_state=1), params, None)
    rec.data["stages"].pop("warmup")
    adata = planted_data(params["n_cells"], params["n_genes"])
    rec.set(fingerprint=fingerprint(adata), n_genes=int(adata.n_vars), n_cells=int(adata.n_obs))

    # lava_sc: the user's one-liner on a copy (Hotspot gets the untouched object)
    lava_adata = adata.copy()
    lava = Recorder(None, parent=rec)
    rec.data["lava"] = lava.data
    rec.set(phase="lava")
    rec.start_timed()
    total = run_lava_modules(lava_adata, lava)
    lava.data.update(
        status="done",
        timed_s=round(total, 3),
        recovery=_recovery(adata.uns["planted"], lava_module_genes(lava_adata)),
        lava=lava_summary(lava_adata),
    )
    del lava_adata
    if not params.get("hotspot", True):
        rec.done(phase=None)
        return
    hs_rec = Recorder(None, parent=rec)
    rec.data["hotspot"] = hs_rec.data
    rec.set(phase="hotspot")
    rec.start_timed()
    t0 = time.perf_counter()
    with _cl.redirect_stdout(io.StringIO()):
        hs = hotspot_pipeline(adata, params, hs_rec)
    total = time.perf_counter() - t0
    mods = hs.modules
    found = {f"H{m}": sorted(mods.index[mods == m].astype(str)) for m in sorted(set(mods)) if m != -1}
    hs_rec.data.update(status="done", timed_s=round(total, 3), recovery=_recovery(adata.uns["planted"], found))
    rec.done(phase=None)


def hotspot_pipeline(adata, params: dict, rec: Recorder | None):
    """Hotspot's documented pipeline on raw counts; returns the Hotspot object."""
    import hotspot

    jobs = int(params.get("jobs", 1))
    stage = rec.stage if rec is not None else (lambda name: contextlib.nullcontext())
    with stage("init"):
        hs = hotspot.Hotspot(
            adata,
            layer_key="counts",
            model="danb",
            latent_obsm_key="X_umap",
            umi_counts_obs_key="total_counts",
        )
    with stage("knn"):
        hs.create_knn_graph(
            weighted_graph=False,
            n_neighbors=30,
            approx_neighbors=bool(params.get("approx_neighbors", False)),
        )
    with stage("autocorrelations"):
        auto = hs.compute_autocorrelations(jobs=jobs)
    genes = adata.var_names if params.get("genes", "all") == "all" else auto.index[auto["FDR"] < 0.05]
    if rec is not None:
        rec.set(n_genes_autocorrelated=int((auto["FDR"] < 0.05).sum()), n_genes_local_correlations=int(len(genes)))
    with stage("local_correlations"):
        hs.compute_local_correlations(genes, jobs=jobs)
    with stage("modules"):
        hs.create_modules(
            min_gene_threshold=int(params.get("min_gene_threshold", 10)), core_only=True, fdr_threshold=0.05
        )
    with stage("module_scores"):
        hs.calculate_module_scores()
    return hs


def worker_floor(params: dict, rec: Recorder) -> None:
    """``tl.correlations`` alone (localities computed beforehand) against this machine's GEMM rate."""
    import lava_sc

    silence()
    with rec.stage("warmup"):
        warm_up_lava()
    rec.data["stages"].pop("warmup")
    with rec.stage("data"):
        adata = planted_data(params["n_cells"], params["n_genes"])
    with rec.stage("localities"):  # not measured here: any placement gives the same l * n workload
        quick_localities(adata)
    membership = adata.obsm["lava_localities"]
    n_loc = int(membership.shape[1])
    n = int(round(membership.nnz / n_loc))
    g = int(adata.n_vars)
    rate_before = gemm_rate(g, n)
    replay_before = replay_gemms(n_loc, g, n)
    rec.start_timed()
    runs = []
    for _ in range(int(params.get("repeats", 3))):  # best of a few, as the GEMM rate is best of 7
        with rec.stage("correlations"):
            lava_sc.tl.correlations(adata)
        runs.append(rec.data["stages"]["correlations"])
    rec.data["stages"]["correlations"] = corr_s = min(runs)
    rate_after = gemm_rate(g, n)
    replay_after = replay_gemms(n_loc, g, n)
    replay_s = min(replay_before["best_s"], replay_after["best_s"])
    gemm = max(rate_before["gemm_best"], rate_after["gemm_best"])
    syrk = max(rate_before["syrk_best"], rate_after["syrk_best"])
    macs = float(membership.nnz) * g * g  # l * n * G^2 = E * o * G^2
    floor_s = macs / gemm
    result = {
        "n_cells": int(adata.n_obs),
        "n_genes": g,
        "n_genes_tested": int(len(adata.uns["lava"]["genes"])),
        "n_localities": n_loc,
        "cells_per_locality": n,
        "multiply_adds": macs,
        "gemm_gmacs": round(gemm / 1e9, 2),
        "rates_gmacs_before": {k: round(v / 1e9, 2) for k, v in rate_before.items()},
        "rates_gmacs_after": {k: round(v / 1e9, 2) for k, v in rate_after.items()},
        "syrk_gmacs": round(syrk / 1e9, 2),
        "floor_s": round(floor_s, 3),
        # two ssyrk calls (observed + permuted) per locality at the measured ssyrk rate
        "syrk_floor_s": round(2 * n_loc * n * g * (g + 1) / 2 / syrk, 3),
        "replay_floor_s": round(replay_s, 3),
        "replay": {"before": replay_before, "after": replay_after},
        "correlations_s": corr_s,
        "correlations_runs_s": runs,
        "ratio": round(corr_s / floor_s, 2),
        "ratio_vs_replay": round(corr_s / replay_s, 2),
    }
    rec.set(**result)
    if params.get("one_thread", True):
        from threadpoolctl import threadpool_limits

        with rec.stage("correlations_1thread"), threadpool_limits(limits=1):
            lava_sc.tl.correlations(adata)
        result["correlations_1thread_s"] = rec.data["stages"]["correlations_1thread"]
        result["ratio_1thread"] = round(result["correlations_1thread_s"] / floor_s, 2)
    if params.get("profile"):
        with rec.stage("profile"):
            result["profile"] = profile_correlations(adata, top=int(params.get("profile_top", 15)))
    rec.done(timed_s=corr_s, **result)


def worker_scaling(params: dict, rec: Recorder) -> None:
    """End-to-end ``tl.modules`` on chunk-simulated data: per-stage times and peak RSS."""
    silence()
    with rec.stage("warmup"):
        warm_up_lava()
    rec.data["stages"].pop("warmup")
    with rec.stage("data"):
        adata = chunked_planted_data(params["n_cells"], params["n_genes"], random_state=0)
    rec.set(
        data_s=rec.data["stages"].pop("data"),
        density=round(adata.X.nnz / (adata.n_obs * adata.n_vars), 3),
        data_nbytes_gib=round((adata.X.data.nbytes + adata.X.indices.nbytes + adata.X.indptr.nbytes) / GIB, 3),
    )
    rec.start_timed()
    total = run_lava_modules(adata, rec)
    recovery = _recovery(adata.uns["planted"], lava_module_genes(adata))
    rec.done(timed_s=round(total, 3), recovery=recovery, lava=lava_summary(adata), **pipeline_floor(adata, total))


def pipeline_floor(adata, total_s: float) -> dict:
    """The correlation stage's BLAS floor for this run (``l * n * G^2`` multiply-adds at this machine's
    best float32 GEMM rate, measured after the run) and the whole pipeline's time over it."""
    membership = adata.obsm["lava_localities"]
    n_loc = int(membership.shape[1])
    n = int(round(membership.nnz / max(n_loc, 1)))
    g = int(adata.n_vars)
    gemm = gemm_rate(g, n)["gemm_best"]
    floor_s = float(membership.nnz) * g * g / gemm
    return {
        "floor_s": round(floor_s, 3),
        "floor_gemm_gmacs": round(gemm / 1e9, 2),
        "total_over_floor": round(total_s / floor_s, 2),
    }


#: localities of the fidelity part: LAVA's defaults (``tl.localities``: 200 cells, overlap 3)
FIDELITY_LOCALITY_CELLS = 200
FIDELITY_OVERLAP = 3


def _placement(points, seed: int, **options) -> dict:
    """One ``find_localities`` call, timed, with the numbers the fidelity table reports."""
    import numpy as np

    from lava_sc._core.localities import find_localities

    t0 = time.perf_counter()
    res = find_localities(
        points, n_cells=FIDELITY_LOCALITY_CELLS, overlap=FIDELITY_OVERLAP, random_state=seed, **options
    )
    seconds = time.perf_counter() - t0
    return {
        "coverage_loss": float(res.coverage_loss),
        "alpha": float(res.alpha),
        "beta": float(res.beta),
        "n_evaluations": int(res.n_evaluations),
        "seconds": round(seconds, 3),
        "n_localities": int(len(res.probes)),
        "uncovered_cells": int(np.sum(res.coverage == 0)),
        "max_coverage": int(res.coverage.max()),
        **{k: v for k, v in options.items()},
    }


def worker_fidelity(params: dict, rec: Recorder) -> None:
    """``find_localities`` on one embedding twice: the exact path (DIRECT on all cells) and the fast path
    (DIRECT on a geometry-matched subsample of ``search_cells`` cells, the 5 best placed on all cells).

    Both see the same points and seed; the fast path is forced with ``max_exact_cells = n - 1``.
    """
    n = int(params["n_cells"])
    seed = int(params.get("seed", 0))
    geometry = params.get("geometry", "planted")
    search_cells = int(params.get("search_cells") or n // 3)
    with rec.stage("warmup"):  # numba compiles on the first call: run both paths once on a small embedding
        small = fidelity_embedding(geometry, 3000, seed + 1000)
        _placement(small, seed, max_exact_cells=len(small), max_evaluations=5)
        _placement(small, seed, max_exact_cells=len(small) - 1, search_cells=1000, max_evaluations=5)
    rec.data["stages"].pop("warmup")
    with rec.stage("data"):
        points = fidelity_embedding(geometry, n, seed)
    rec.set(data_s=rec.data["stages"].pop("data"), geometry=geometry, n_cells=n, seed=seed)
    rec.start_timed()
    with rec.stage("exact"):
        exact = _placement(points, seed, max_exact_cells=n)
    rec.set(exact=exact)
    with rec.stage("fast"):
        fast = _placement(points, seed, max_exact_cells=n - 1, search_cells=search_cells)
    ratio = fast["coverage_loss"] / exact["coverage_loss"] if exact["coverage_loss"] > 0 else None
    rec.done(
        fast=fast,
        search_cells=search_cells,
        ratio=None if ratio is None else round(ratio, 4),
        time_ratio=round(fast["seconds"] / exact["seconds"], 4),
        timed_s=round(exact["seconds"] + fast["seconds"], 3),
    )


def _recovery(planted, found) -> dict:
    return best_match_jaccard({k: list(v) for k, v in planted.items()}, found)


WORKERS = {
    "compare": worker_compare,
    "floor": worker_floor,
    "scaling": worker_scaling,
    "fidelity": worker_fidelity,
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=sorted(WORKERS))
    parser.add_argument("--params", required=True)
    parser.add_argument("--result", required=True)
    args = parser.parse_args()
    params = json.loads(args.params)
    rec = Recorder(args.result, params)
    rec.set(lava_sc_revision=git_revision())  # the library may change between workers of one run
    try:
        WORKERS[args.kind](params, rec)
    except BaseException as exc:
        rec.set(status="error", error=f"{type(exc).__name__}: {exc}")
        raise


if __name__ == "__main__":
    main()
