"""Out of core: LAVA on a zarr store read lazily through dask, on a ``distributed.LocalCluster``.

    python -m benchmarks.out_of_core --cells 5000000 --genes 1000 --store /tmp/ooc/atlas.zarr
    python -m benchmarks.out_of_core --cells 500000 --order random --store /tmp/ooc/random.zarr

Two steps, the second in a fresh process:

1. **Write the store.** The planted simulation (``simulate_planted``'s model, at ``--genes`` genes as in
   the scaling part) is drawn cell chunk by cell chunk *in the order the store is written*: the
   per-cell parameters (type, condition, embedding, depth, module signals) are drawn for all cells
   first, the cells are ordered by :func:`lava_sc.io.embedding_order` (``--order hilbert``) or kept in
   the simulator's order, which is random in the embedding (``--order random``), and each chunk of
   ``--write-chunk`` consecutive cells of that order gets its counts (its own random stream),
   log-normalised, and is appended to ``X`` (float32 CSR) with anndata's writers
   (``anndata.io.write_elem`` and ``sparse_dataset(...).append``). Only one chunk of X is ever in memory.
2. **Run.** A fresh process starts a ``LocalCluster`` (``--workers`` workers x 1 thread, ``--worker-memory``
   each), reads obs, var and the embedding into memory and X lazily
   (``anndata.experimental.read_elem_lazy``, ``--chunk-rows`` rows per dask chunk), and runs
   ``lava_sc.tl.modules`` (localities on the in-memory embedding, correlations and modules as dask tasks
   on the cluster). A sampler thread records, every 0.5 s, the RSS of the driver and of every cluster
   process (nannies and workers) and their read counters (``psutil``: ``read_chars`` counts every byte
   read through the page cache or not, ``read_bytes`` what came from the disk).

Results go to ``benchmarks/results/out_of_core.json``, one entry per ``<cells>_<order>`` run.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from ._common import GIB, RESULTS, git_revision, load_average, machine_info, now, peak_rss_bytes, write_json_atomic

RESULT = RESULTS / "out_of_core.json"
#: cells simulated and appended at a time (about 20,000 x 1,000 float64 values per draw)
WRITE_CHUNK = 20_000
#: rows of one dask chunk of X when read back
CHUNK_ROWS = 5_000
#: elements of one zarr chunk of X's ``data`` and ``indices`` (4 MB of float32 / int32)
ZARR_CHUNK = 1_000_000


# ------------------------------------------------------------------------------------------- the store


def _cells(n_cells: int, n_genes: int, random_state: int):
    """The simulation's per-cell and per-gene parameters (``simulate_planted``, chunked variant)."""
    import numpy as np

    from lava_sc.datasets import _simulate as sim

    module_size = max(3, min(15, (n_genes - 25) // 4))
    n_noise = n_genes - sim._N_TYPES * sim._N_MARKERS - len(sim._MODULES) * module_size
    rng = np.random.default_rng(random_state)
    type_idx, disease, t_grad, emb, _ = sim._draw_cells(n_cells, rng)
    active = {
        "shared": disease & ((type_idx == 0) | (type_idx == 2)),
        "typeB": type_idx == 1,
        "gradient": type_idx == 3,
        "disease_T4": disease & (type_idx == 4),
    }
    n_markers = sim._N_TYPES * sim._N_MARKERS
    mu_mk = rng.uniform(-sim._MU_RANGE, sim._MU_RANGE, n_markers)
    owner = np.repeat(np.arange(sim._N_TYPES), sim._N_MARKERS)
    mu, latent = {}, {}
    for m in sim._MODULES:
        mu[m] = rng.uniform(-sim._MU_RANGE, sim._MU_RANGE, module_size)
        latent[m] = t_grad if m == "gradient" else rng.standard_normal(n_cells)
    mu_noise = sim._noise_log_mean(rng, n_noise)
    depth = np.exp(rng.normal(0.0, sim._DEPTH_SD, n_cells))
    background = rng.poisson(depth * sim._BACKGROUND_COUNTS)
    names = (
        [f"mk_T{k}_{i}" for k in range(sim._N_TYPES) for i in range(sim._N_MARKERS)]
        + [f"{m}_{i}" for m in sim._MODULES for i in range(module_size)]
        + [f"noise_{i}" for i in range(n_noise)]
    )
    return {
        "type_idx": type_idx,
        "disease": disease,
        "emb": emb.astype(np.float32),
        "active": active,
        "mu_mk": mu_mk,
        "owner": owner,
        "mu": mu,
        "latent": latent,
        "mu_noise": mu_noise,
        "depth": depth,
        "background": background,
        "module_size": module_size,
        "gene_names": names,
    }


def _chunk_x(cells: dict, rows, stream):
    """Log-normalised float32 CSR of the cells ``rows`` (an index array), drawn from ``stream``."""
    import numpy as np

    from lava_sc.datasets import _simulate as sim

    crng = np.random.default_rng(stream)
    marker = cells["mu_mk"] + sim._MARKER_SHIFT * (cells["type_idx"][rows, None] == cells["owner"][None, :])
    blocks = [marker]
    for m in sim._MODULES:
        indep = crng.standard_normal((len(rows), cells["module_size"]))
        block = sim._module_log_mean(
            cells["mu"][m], indep, cells["active"][m][rows], cells["latent"][m][rows], sim._scale(m)
        )
        blocks.append(block)
    blocks.append(np.broadcast_to(cells["mu_noise"], (len(rows), len(cells["mu_noise"]))))
    counts = sim._negative_binomial(crng, cells["depth"][rows], np.hstack(blocks))
    x, _ = sim._log_normalise(counts, cells["background"][rows])
    return x


_SHARED = None


def _draw_part(job):
    start, stream = job
    cells, perm = _SHARED
    return _chunk_x(cells, perm[start : start + WRITE_CHUNK], stream)


def _widen_indptr(group) -> None:
    """Rewrite X's ``indptr`` as int64 (anndata writes int32 for a small first part, and appends cannot
    widen it); ``indices`` stay int32. Past 2**31 stored values (4.8 million cells at density 0.45) an
    int32 ``indptr`` overflows."""
    import numpy as np

    indptr = group["indptr"][:].astype(np.int64)
    del group["indptr"]
    group.create_array("indptr", shape=indptr.shape, dtype=np.int64, chunks=(ZARR_CHUNK,))[:] = indptr


def write_store(
    path: Path, n_cells: int, n_genes: int, *, order: str, random_state: int = 0, processes: int = 2
) -> dict:
    """Simulate and write the store chunk by chunk in the given row order; returns timings and sizes.

    ``processes`` forked processes draw the chunks ahead (each chunk from its own random stream, so the
    store does not depend on their number); this process appends them to X in order.
    """
    import shutil
    import warnings

    import anndata as ad
    import numpy as np
    import pandas as pd
    import zarr

    import lava_sc as lv
    from lava_sc.datasets import _simulate as sim

    warnings.filterwarnings("ignore", message=".*autosharding.*")
    t0 = time.perf_counter()
    cells = _cells(n_cells, n_genes, random_state)
    types = [f"T{k}" for k in range(sim._N_TYPES)]
    obs = pd.DataFrame(
        {
            "cell_type": pd.Categorical.from_codes(cells["type_idx"], categories=types),
            "condition": pd.Categorical.from_codes(cells["disease"].astype(int), categories=list(sim._CONDITIONS)),
        },
        index=pd.RangeIndex(n_cells).astype(str),
    )
    for m, act in cells["active"].items():
        obs[f"active_{m}"] = act
    t_order = time.perf_counter()
    if order == "hilbert":
        probe = ad.AnnData(obs=obs[[]], obsm={"X_umap": cells["emb"]})
        perm = lv.io.embedding_order(probe, basis="X_umap")
    else:
        perm = np.arange(n_cells)  # the simulator's order: cell types drawn by a random permutation
    order_s = time.perf_counter() - t_order
    var = pd.DataFrame(index=pd.Index(cells["gene_names"]))
    var["planted_module"] = (
        ["none"] * 25
        + [m for m in sim._MODULES for _ in range(cells["module_size"])]
        + ["none"] * len(cells["mu_noise"])
    )
    var["highly_variable"] = True
    module_size = cells["module_size"]
    planted = {m: np.asarray([f"{m}_{i}" for i in range(module_size)], dtype=str) for m in sim._MODULES}

    if path.exists():
        shutil.rmtree(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    root = zarr.open_group(str(path), mode="w")
    root.attrs.update({"encoding-type": "anndata", "encoding-version": "0.1.0"})
    ad.io.write_elem(root, "obs", obs.iloc[perm])
    ad.io.write_elem(root, "var", var)
    ad.io.write_elem(root, "obsm", {"X_umap": cells["emb"][perm]})
    ad.io.write_elem(root, "uns", {"planted": planted, "simulation": {"n_cells": n_cells, "order": order}})
    for empty in ("layers", "obsp", "varm", "varp"):
        ad.io.write_elem(root, empty, {})
    del obs
    starts = range(0, n_cells, WRITE_CHUNK)
    streams = np.random.SeedSequence(random_state).spawn(len(starts))
    wait_s = append_s = 0.0
    nnz = 0
    x_store = None
    global _SHARED
    _SHARED = (cells, perm)  # read by the forked simulation processes
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        parts = pool.imap(_draw_part, zip(starts, streams, strict=True))  # in order; drawn ahead in parallel
        for _ in starts:
            t = time.perf_counter()
            part = next(parts)
            wait_s += time.perf_counter() - t
            t = time.perf_counter()
            nnz += part.nnz
            if x_store is None:
                ad.io.write_elem(root, "X", part, dataset_kwargs={"chunks": (ZARR_CHUNK,)})
                _widen_indptr(root["X"])
                x_store = ad.io.sparse_dataset(root["X"])
            else:
                x_store.append(part)
            append_s += time.perf_counter() - t
    _SHARED = None
    disk = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return {
        "write_s": round(time.perf_counter() - t0, 1),
        "order_s": round(order_s, 2),
        "processes": processes,
        "wait_for_simulation_s": round(wait_s, 1),
        "append_s": round(append_s, 1),
        "nnz": int(nnz),
        "density": round(nnz / (n_cells * n_genes), 3),
        "x_gib_uncompressed": round(nnz * 8 / GIB, 2),
        "store_gib_on_disk": round(disk / GIB, 2),
        "write_peak_rss_gib": round(peak_rss_bytes() / GIB, 2),
    }


# ------------------------------------------------------------------------------------------ the run


class Sampler(threading.Thread):
    """Every ``interval`` s: RSS of this process and of all its descendants, and their read counters."""

    def __init__(self, interval: float = 0.5, path: Path | None = None):
        """With ``path``, the summary is also written there every 10 s (a run killed midway still tells)."""
        super().__init__(daemon=True)
        self.path = path
        import psutil

        self.psutil = psutil
        self.me = psutil.Process()
        self.interval = interval
        self.stop = threading.Event()
        self.driver_peak = 0
        self.workers_sum_peak = 0
        self.workers_max_peak = 0
        self.total_peak = 0
        self.reads: dict[int, tuple[int, int]] = {}
        self.driver_reads = (0, 0)
        self.n_procs = 0

    def sample(self) -> None:
        ps = self.psutil
        try:
            driver = self.me.memory_info().rss
            io = self.me.io_counters()
            self.driver_reads = (io.read_chars, io.read_bytes)
        except ps.Error:
            return
        rss = []
        for child in self.me.children(recursive=True):
            try:
                rss.append(child.memory_info().rss)
                io = child.io_counters()
                self.reads[child.pid] = (io.read_chars, io.read_bytes)
            except ps.Error:
                continue
        self.n_procs = max(self.n_procs, len(rss))
        self.driver_peak = max(self.driver_peak, driver)
        self.workers_sum_peak = max(self.workers_sum_peak, sum(rss))
        self.workers_max_peak = max(self.workers_max_peak, max(rss, default=0))
        self.total_peak = max(self.total_peak, driver + sum(rss))

    def run(self) -> None:
        last = time.monotonic()
        while not self.stop.wait(self.interval):
            self.sample()
            if self.path is not None and time.monotonic() - last > 10:
                last = time.monotonic()
                write_json_atomic(self.path, {"time": now(), **self.summary()})

    def summary(self) -> dict:
        self.sample()
        return {
            "driver_peak_rss_gib": round(self.driver_peak / GIB, 2),
            "driver_ru_maxrss_gib": round(peak_rss_bytes() / GIB, 2),
            "workers_peak_rss_sum_gib": round(self.workers_sum_peak / GIB, 2),
            "workers_peak_rss_max_gib": round(self.workers_max_peak / GIB, 2),
            "total_peak_rss_gib": round(self.total_peak / GIB, 2),
            "cluster_processes": self.n_procs,
            "workers_read_chars_gib": round(sum(r[0] for r in self.reads.values()) / GIB, 2),
            "workers_read_disk_gib": round(sum(r[1] for r in self.reads.values()) / GIB, 2),
            "driver_read_chars_gib": round(self.driver_reads[0] / GIB, 2),
        }


def _worker_counters(client) -> dict:
    """Bytes the workers sent each other and spilled to disk, summed over workers."""

    def counters(dask_worker):
        spilled = getattr(getattr(dask_worker, "data", None), "spilled_total", None)
        return {
            "sent": int(getattr(dask_worker, "transfer_outgoing_bytes_total", 0)),
            "sends": int(getattr(dask_worker, "transfer_outgoing_count_total", 0)),
            "spilled": int(getattr(spilled, "disk", 0) or 0),
        }

    try:
        per_worker = client.run(counters).values()
    except Exception as exc:  # counters are diagnostics: a renamed attribute must not fail the run
        return {"worker_counters_error": f"{type(exc).__name__}: {exc}"}
    return {
        "workers_transfer_gib": round(sum(c["sent"] for c in per_worker) / GIB, 2),
        "workers_transfers": sum(c["sends"] for c in per_worker),
        "workers_spilled_gib": round(sum(c["spilled"] for c in per_worker) / GIB, 2),
    }


def read_lazy(path: Path, chunk_rows: int):
    """The store as an AnnData: obs, var, uns and obsm in memory, X a dask array of ``chunk_rows`` rows per chunk."""
    import anndata as ad
    import zarr

    root = zarr.open_group(str(path), mode="r")
    return ad.AnnData(
        X=ad.experimental.read_elem_lazy(root["X"], chunks=(chunk_rows, -1)),
        obs=ad.io.read_elem(root["obs"]),
        var=ad.io.read_elem(root["var"]),
        obsm={"X_umap": root["obsm"]["X_umap"][:]},
        uns=ad.io.read_elem(root["uns"]),
    )


def task_reads(membership, chunks: tuple[int, ...], per_task: int) -> dict:
    """Rows the sketch tasks read: every dask chunk that holds one of a task's rows is read whole."""
    import numpy as np
    import scipy.sparse as sp

    from lava_sc._core.correlations import locality_cells
    from lava_sc._core.distributed import locality_batches

    membership = sp.csc_matrix(membership)
    bounds = np.cumsum((0, *chunks))
    read = chunks_touched = used = 0
    for locs in locality_batches(membership, per_task):
        rows = np.unique(np.concatenate([locality_cells(membership, loc) for loc in locs]))
        touched = np.unique(np.searchsorted(bounds, rows, side="right") - 1)
        chunks_touched += len(touched)
        read += int(np.sum(np.diff(bounds)[touched]))
        used += len(rows)
    n = int(bounds[-1])
    return {
        "task_rows_read": read,
        "task_rows_used": used,
        "task_chunks_read": chunks_touched,
        "task_read_over_store": round(read / n, 2),
        "task_read_over_used": round(read / max(used, 1), 2),
    }


def run_pipeline(params: dict, result_path: Path) -> None:
    """The timed run (fresh process): LocalCluster, lazy X, ``tl.modules``; writes ``result_path``."""
    os.environ.setdefault("TQDM_DISABLE", "1")
    from distributed import Client, LocalCluster

    from ._workers import (
        Recorder,
        _recovery,
        lava_module_genes,
        lava_summary,
        pipeline_floor,
        run_lava_modules,
        silence,
        warm_up_lava,
    )

    rec = Recorder(str(result_path), params)
    rec.set(lava_sc_revision=git_revision(), started=now())
    sampler = Sampler(path=result_path.with_name(result_path.stem + "_sampler.json"))
    sampler.start()
    silence()
    with rec.stage("warmup"):
        warm_up_lava()
    rec.data["stages"].pop("warmup")
    in_memory = bool(params.get("in_memory"))
    cluster = client = None
    if not in_memory:
        cluster = LocalCluster(
            n_workers=params["workers"],
            threads_per_worker=1,
            processes=True,
            memory_limit=params["worker_memory"],
            dashboard_address=None,
        )
        client = Client(cluster)
    try:
        with rec.stage("read"):
            adata = read_lazy(Path(params["store"]), params["chunk_rows"])
            if in_memory:  # the reference: the same store loaded whole, the in-memory path
                import anndata as ad
                import zarr

                adata.X = ad.io.read_elem(zarr.open_group(params["store"], mode="r")["X"])
        rec.set(read_s=rec.data["stages"].pop("read"), n_obs=adata.n_obs, n_vars=adata.n_vars)
        rec.start_timed()
        rec.set(load_average_start=load_average())
        total = run_lava_modules(adata, rec)
        rec.set(load_average_end=load_average(), **sampler.summary())
        if client is not None:
            rec.set(**_worker_counters(client))
    finally:
        if client is not None:
            client.close()
            cluster.close()
    sampler.stop.set()
    import lava_sc._core.distributed as ld

    membership = adata.obsm["lava_localities"]
    chunks = (params["chunk_rows"],) * (adata.n_obs // params["chunk_rows"])
    chunks += (adata.n_obs % params["chunk_rows"],) if adata.n_obs % params["chunk_rows"] else ()
    reads = None if in_memory else task_reads(membership, chunks, ld.LOCALITIES_PER_TASK)
    recovery = _recovery(adata.uns["planted"], lava_module_genes(adata))
    rec.done(
        timed_s=round(total, 1),
        recovery=recovery,
        lava=lava_summary(adata),
        reads=reads,
        localities_per_task=ld.LOCALITIES_PER_TASK,
        **pipeline_floor(adata, total),
    )


# ------------------------------------------------------------------------------------------ table


def render(data: dict) -> str:
    """The markdown table of every run in the results file (``--render``)."""
    head = (
        "| cells | order | X in memory (GiB) | store (GiB) | write (s) | localities (s) | correlations (s) "
        "| modules (s) | total (s) | floor (s) | total / floor | peak RSS driver / workers sum / max / all (GiB) "
        "| sketch tasks read (x store; localities per task) | workers read / sent to each other (GiB) | recovered | load avg | status |"
    )
    lines = [head, "|" + "---:|" * 2 + "---:|" * 13 + "---|" * 2]
    for _, entry in sorted(data["runs"].items(), key=lambda kv: (kv[1]["params"]["cells"], kv[0])):
        run, store, params = entry.get("run", {}), entry.get("store", {}), entry["params"]
        stages = run.get("stages", {})
        rec = run.get("recovery", {})
        reads = run.get("reads") or {}
        order = params["order"] + (" (in memory)" if params.get("in_memory") else "")
        load = run.get("load_average_end") or []
        peak = (
            f"{run.get('driver_ru_maxrss_gib', '')} / {run.get('workers_peak_rss_sum_gib', '')} / "
            f"{run.get('workers_peak_rss_max_gib', '')} / {run.get('total_peak_rss_gib', '')}"
        )
        found = f"{rec['n_recovered']}/{rec['n_planted']} (mean J {rec['mean_jaccard']:.2f})" if rec else ""
        cells = [
            f"{params['cells']:,}",
            order,
            store.get("x_gib_uncompressed", ""),
            store.get("store_gib_on_disk", ""),
            _s(store.get("write_s")),
            _s(stages.get("localities")),
            _s(stages.get("correlations")),
            _s(stages.get("modules")),
            _s(run.get("timed_s")),
            _s(run.get("floor_s")),
            run.get("total_over_floor", ""),
            peak,
            f"{reads.get('task_read_over_store', '—')} ({run.get('localities_per_task', '?')})",
            f"{run.get('workers_read_chars_gib', '')} / {run.get('workers_transfer_gib', '—')}",
            found,
            f"{load[0]:.1f}" if load else "",
            run.get("status", "not run"),
        ]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def _s(seconds) -> str:
    return "" if seconds is None else f"{seconds:.1f}"


# ------------------------------------------------------------------------------------------ driver


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.out_of_core", description=__doc__.split("\n")[0])
    p.add_argument("--cells", type=lambda s: int(float(s)), default=5_000_000)
    p.add_argument("--genes", type=int, default=1000)
    p.add_argument("--store", type=Path, default=Path("/tmp/ooc/atlas.zarr"))
    p.add_argument("--order", choices=["hilbert", "random"], default="hilbert")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--worker-memory", default="3.5GiB")
    p.add_argument("--chunk-rows", type=int, default=CHUNK_ROWS)
    p.add_argument("--reuse-store", action="store_true", help="run on an existing store (skip step 1)")
    p.add_argument("--in-memory", action="store_true", help="reference: load X whole, no cluster, no dask")
    p.add_argument("--write-only", action="store_true", help="write the store, do not run")
    p.add_argument("--result", type=Path, default=RESULT)
    p.add_argument("--render", action="store_true", help="run nothing: print the table of the results file")
    p.add_argument("--_run", dest="run_file", type=Path, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.render:
        print(render(json.loads(args.result.read_text())))
        return 0
    params = {
        "cells": args.cells,
        "genes": args.genes,
        "store": str(args.store),
        "order": args.order,
        "workers": args.workers,
        "worker_memory": args.worker_memory,
        "chunk_rows": args.chunk_rows,
        "in_memory": args.in_memory,
    }
    if args.run_file is not None:  # step 2, in its own process
        run_pipeline(params, args.run_file)
        return 0
    label = f"{args.cells}_{args.order}" + ("_in_memory" if args.in_memory else "")
    entry: dict = {"params": params, "command": "python -m benchmarks.out_of_core " + " ".join(argv or sys.argv[1:])}
    entry["machine"] = machine_info()
    entry["load_average_before"] = load_average()
    if not args.reuse_store:
        print(f"[{now()}] writing {args.store} ({args.cells} x {args.genes}, {args.order} order)", flush=True)
        entry["store"] = write_store(args.store, args.cells, args.genes, order=args.order)
        print(f"[{now()}] store: {json.dumps(entry['store'])}", flush=True)
        _save(args.result, label, entry)
    if args.write_only:
        return 0
    run_file = args.store.parent / f"out_of_core_{label}.json"  # the run's own record, beside the store
    cmd = [sys.executable, "-m", "benchmarks.out_of_core", *_forward(argv or sys.argv[1:]), "--_run", str(run_file)]
    print(f"[{now()}] running the pipeline in a fresh process", flush=True)
    t0 = time.perf_counter()
    code = subprocess.call(cmd, cwd=Path(__file__).resolve().parents[1])
    entry["run_wall_s"] = round(time.perf_counter() - t0, 1)
    entry["run"] = json.loads(run_file.read_text()) if run_file.exists() else {"status": f"no result (exit {code})"}
    if code != 0 and entry["run"].get("status") == "running":
        entry["run"]["status"] = f"exit {code}"
    _save(args.result, label, entry)
    print(f"[{now()}] {label}: {json.dumps(entry['run'], default=str)[:2000]}", flush=True)
    return code


def _forward(argv: list[str]) -> list[str]:
    drop = {"--write-only"}
    return [a for a in argv if a not in drop]


def _save(path: Path, label: str, entry: dict) -> None:
    """Merge ``entry`` into the results file under ``label`` (a lock file serialises concurrent runs)."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(Path(tempfile.gettempdir()) / "lava_sc_out_of_core.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _merge(path, label, entry)


def _merge(path: Path, label: str, entry: dict) -> None:
    data = json.loads(path.read_text()) if path.exists() else {"runs": {}}
    entry = {**entry, "saved": now()}
    previous = data["runs"].get(label, {})
    if "store" not in entry and "store" in previous:
        entry["store"] = previous["store"]
    if "store" not in entry:  # a run on a store written by another entry (the in-memory reference)
        sibling = data["runs"].get(label.removesuffix("_in_memory"), {})
        if "store" in sibling:
            entry["store"] = sibling["store"]
    data["runs"][label] = entry
    write_json_atomic(path, data)


if __name__ == "__main__":
    sys.exit(main())
