"""Module recovery on the realistic simulated atlas: LAVA at defaults (and Hotspot) over a grid.

    python -m benchmarks.run --only atlas --no-hotspot --write-readme   # LAVA on the full grid, rewrite the README section
    python -m benchmarks.run --only atlas                               # LAVA and Hotspot on every grid point and seed
    python -m benchmarks.run --only atlas --atlas-hotspot-seeds 0       # Hotspot only on seed 0 of every grid point
    python -m benchmarks.run --only atlas --quick --out /tmp/atlas      # smoke run: what tests/test_atlas_benchmark.py runs
    python -m benchmarks.run --only atlas --render --atlas-merge a.json b.json --write-readme
                                                                        # run nothing: merge result files, rewrite the README

Data: ``lava_sc.datasets.simulate_atlas(n_cells, n_genes, program_strength=ps, state_strength=ss,
random_state=seed)`` -- SIMULATED: six cell types (two touching pairs), a dense rank-3 within-type state
that moves every gene, donors in two conditions, a UMAP computed by scanpy from the counts, and seven
planted programs (``uns["planted"]``, active cells in ``obs["active_<program>"]``). One simulation per
(ps, ss, seed); every method sees that same object.

* LAVA: ``lv.tl.modules(adata, random_state=0)`` -- exactly a user's call, nothing else set -- on a copy,
  timed after a warm-up run (numba compilation is not timed), scored with
  ``lava_sc.datasets.recovery(adata, key="lava")``.
* Hotspot (PyPI ``hotspotsc``): ``_workers.hotspot_pipeline`` with ``explainers.HOTSPOT_PARAMS``, as in
  ``speed.py`` and ``explainers.py`` (danb on ``layers["counts"]``, ``X_umap``, 30 neighbours, local
  correlations of all genes, ``create_modules(min_gene_threshold=10)``, module scores). Its modules
  become gene sets and its module scores the per-cell activity, and the *same* ``recovery`` function
  scores them (best-match Jaccard per program, unmatched = best Jaccard < 0.2 with every program,
  AUROC of the best module's per-cell score for the active cells, module sizes).

Results go to ``atlas.json`` in ``--out`` (default ``benchmarks/results``; ``atlas_quick.json`` with
``--quick``, which runs no Hotspot) and a markdown table next to it (``.md``); the JSON is rewritten after
every run, so a stopped run keeps what it finished. ``--render`` runs nothing: it merges the result files
of ``--atlas-merge`` (default: that JSON) into that JSON. ``--write-readme`` rewrites only the part of
``benchmarks/README.md`` (or ``--readme``) between ``<!-- atlas:start -->`` and ``<!-- atlas:end -->``
(appended when missing).

This module holds the options, the methods' runs and scoring, merging and the run; the grid summary and the
markdown are in ``_atlas_report.py``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import time
import warnings
from pathlib import Path

from ._atlas_report import DETECTABLE_MIN_PROGRAM_STRENGTH, detectable, grid_summary, markdown, summary_table
from ._common import (
    ROOT,
    best_match,
    fill_defaults,
    floats,
    fmt,
    ints,
    load_average,
    machine_info,
    mean,
    now,
    quiet,
    rewrite_section,
    write_json_atomic,
    write_text_atomic,
)
from .explainers import HOTSPOT_PARAMS

START = "<!-- atlas:start -->"
END = "<!-- atlas:end -->"

FULL = {
    "atlas_cells": 6000,
    "atlas_genes": 1000,
    "atlas_program_strengths": [0.6, 1.0, 1.4],
    "atlas_state_strengths": [0.15, 0.25, 0.35],
    "atlas_seeds": [0, 1, 2],
}
QUICK = {
    "atlas_cells": 1500,
    "atlas_genes": 500,
    "atlas_program_strengths": [1.0],
    "atlas_state_strengths": [0.25],
    "atlas_seeds": [0],
}
SUMMARY_KEYS = ("mean_jaccard", "n_modules", "n_unmatched", "median_module_size", "max_module_size", "mean_auroc")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group(
        "atlas", "--quick: 1,500 cells x 500 genes, ps 1.0, ss 0.25, seed 0, no Hotspot (smoke run)"
    )
    g.add_argument("--atlas-cells", type=int, help="cells per simulation (6,000)")
    g.add_argument("--atlas-genes", type=int, help="genes per simulation (1,000)")
    g.add_argument("--atlas-program-strengths", type=floats, help="program_strength grid, e.g. 0.6,1.0,1.4")
    g.add_argument("--atlas-state-strengths", type=floats, help="state_strength grid, e.g. 0.15,0.25,0.35")
    g.add_argument("--atlas-seeds", type=ints, help="random_state of each simulation, e.g. 0,1,2")
    g.add_argument("--atlas-hotspot-seeds", type=ints, help="run Hotspot only for these seeds (default: every seed)")
    g.add_argument(
        "--atlas-merge", nargs="+", type=Path, metavar="JSON", help="with --render: merge these result files"
    )


def finish_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    fill_defaults(args, FULL, QUICK)
    args.atlas_no_hotspot = args.no_hotspot or args.quick
    args.atlas_out = args.out / ("atlas_quick.json" if args.quick else "atlas.json")
    if args.atlas_hotspot_seeds is None:
        args.atlas_hotspot_seeds = list(args.atlas_seeds)
    if args.atlas_cells < 1000:
        parser.error("--atlas-cells: simulate_atlas needs at least 1,000 cells")
    for name in ("program_strengths", "state_strengths", "seeds"):
        if not getattr(args, f"atlas_{name}"):
            parser.error(f"--atlas-{name.replace('_', '-')}: give at least one value")
    if args.atlas_merge and not args.render:
        parser.error("--atlas-merge: only with --render (it merges result files instead of running)")


def out_name(out: Path) -> str:
    """How the README names the result file: its path in the repository, or where it was written."""
    try:
        return str(Path(out).resolve().relative_to(ROOT))
    except ValueError:
        return f"{out}, outside the repository: not kept"


# ------------------------------------------------------------------------------------------- methods


def simulate(args, ps: float, ss: float, seed: int):
    from lava_sc.datasets import simulate_atlas

    return simulate_atlas(
        n_cells=args.atlas_cells, n_genes=args.atlas_genes, program_strength=ps, state_strength=ss, random_state=seed
    )


def warm_up(with_hotspot: bool) -> None:
    """LAVA (and Hotspot) once on a small data set, so JIT compilation is not timed."""
    from ._workers import WARMUP_CELLS, hotspot_pipeline, warm_up_lava
    from ._workers_data import planted_data

    warm_up_lava()
    if with_hotspot:
        with quiet():
            hotspot_pipeline(planted_data(WARMUP_CELLS, 100, random_state=1), HOTSPOT_PARAMS, None)


def scored(table, summary: dict, modules: dict, planted: dict, seconds: float, **extra) -> dict:
    """One method's result on one simulation: recovery's summary and per-program rows, signed halves."""
    import math

    def clean(v):
        if isinstance(v, float) and math.isnan(v):
            return None
        return v.item() if hasattr(v, "item") else v

    rows = [{k: clean(v) for k, v in r.items()} for r in table.to_dict("records")]
    return {
        "status": "done",
        "seconds": round(seconds, 3),
        "summary": {k: clean(summary[k]) for k in SUMMARY_KEYS},
        "mean_jaccard_without_gradient": round(
            float(mean([r["jaccard"] for r in rows if r["program"] != "gradient"]) or 0.0), 4
        ),
        "programs": rows,
        "signed_halves": signed_halves(planted.get("signed"), modules),
        **extra,
    }


def signed_halves(genes, modules: dict) -> dict | None:
    """``signed``'s two anti-correlated halves scored apart: best Jaccard of each half with any module.

    ``simulate_atlas`` gives the first ``size // 2`` genes of ``uns["planted"]["signed"]`` sign +1 and the
    rest sign -1. A module of one half has Jaccard <= 0.5 with the whole program although it recovered
    that half exactly; ``same_module`` says whether the two halves' best modules are one module.
    """
    if genes is None:
        return None
    genes = [str(g) for g in genes]
    half = len(genes) // 2
    out = {}
    for name, part in (("positive", genes[:half]), ("negative", genes[half:])):
        best, best_j = best_match(part, modules)
        out[name] = {"module": best, "jaccard": round(best_j, 4)}
    out["same_module"] = (
        out["positive"]["module"] is not None and out["positive"]["module"] == out["negative"]["module"]
    )
    return out


def run_lava(adata) -> dict:
    import lava_sc as lv
    from lava_sc.datasets import recovery

    work = adata.copy()
    t0 = time.perf_counter()
    lv.tl.modules(work, random_state=0)
    seconds = time.perf_counter() - t0
    table, summary = recovery(work, key="lava")
    modules = {
        str(m): set(g["gene"].astype(str)) for m, g in lv.get.module_genes(work).groupby("module", observed=True)
    }
    return scored(table, summary, modules, work.uns["planted"], seconds)


def run_hotspot(adata) -> dict:
    """Hotspot's pipeline on the same object; its modules and module scores are scored by ``recovery``."""
    import anndata
    import numpy as np
    import pandas as pd

    from lava_sc.datasets import recovery

    from ._workers import hotspot_pipeline

    counts = adata.layers["counts"]
    constant = np.asarray(counts.max(axis=0).todense()).ravel() == np.asarray(counts.min(axis=0).todense()).ravel()
    data = adata[:, ~constant].copy() if constant.any() else adata  # danb cannot fit a constant gene
    t0 = time.perf_counter()
    with quiet():
        hs = hotspot_pipeline(data, HOTSPOT_PARAMS, None)
    seconds = time.perf_counter() - t0
    mods = hs.modules
    modules = {f"H{m}": set(mods.index[mods == m].astype(str)) for m in sorted(set(mods)) if m != -1}
    scores = hs.module_scores.reindex(adata.obs_names)
    activity = pd.DataFrame(
        {f"H{c}": np.asarray(scores[c], dtype=float) for c in scores.columns if f"H{c}" in modules},
        index=adata.obs_names,
    )
    genes = pd.DataFrame([(m, g) for m, gs in modules.items() for g in sorted(gs)], columns=["module", "gene"]).astype(
        {"module": "category"}
    )
    # a bare AnnData (no X) carrying Hotspot's result where recovery() reads LAVA's
    view = anndata.AnnData(
        obs=adata.obs[[c for c in adata.obs.columns if c.startswith("active_")]].copy(),
        uns={"planted": dict(adata.uns["planted"]), "hotspot": {"module_genes": genes}},
        obsm={"hotspot_activity": activity},
    )
    table, summary = recovery(view, key="hotspot")
    return scored(table, summary, modules, adata.uns["planted"], seconds, n_constant_genes_dropped=int(constant.sum()))


def error_entry(exc: BaseException) -> dict:
    return {"status": "error", "error": f"{type(exc).__name__}: {exc}"[:2000]}


# ---------------------------------------------------------------------------------------------- main


def write(result: dict, out: Path) -> None:
    result["summary"] = grid_summary(result["runs"])
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out, result)
    write_text_atomic(out.with_suffix(".md"), markdown(result, for_readme=False))


def merge(paths: list[Path], out: Path) -> dict:
    """Several result files as one: their runs, commands and revisions (the first file's config)."""
    import json

    parts = [json.loads(Path(p).read_text()) for p in paths]
    meta = dict(parts[0]["meta"])
    meta["commands"] = [c for r in parts for c in r["meta"]["commands"]]
    meta["revisions"] = list(dict.fromkeys(v for r in parts for v in r["meta"]["revisions"]))
    meta["started"] = min(r["meta"]["started"] for r in parts)
    meta["finished"] = max(r["meta"]["finished"] for r in parts)
    meta["sources"] = [str(p) for p in paths]
    meta["out_name"] = out_name(out)
    cfg = dict(meta["config"])
    for path, r in zip(paths[1:], parts[1:], strict=True):
        c = r["meta"]["config"]
        for k in ("program_strengths", "state_strengths", "seeds", "hotspot_seeds"):
            cfg[k] = sorted(set(cfg.get(k) or []) | set(c.get(k) or []))
        cfg["hotspot"] = cfg.get("hotspot") or c.get("hotspot")
        if (c["cells"], c["genes"]) != (cfg["cells"], cfg["genes"]):
            raise SystemExit(
                f"--render: {path} has {c['cells']} x {c['genes']}, {paths[0]} {cfg['cells']} x {cfg['genes']}"
            )
    meta["config"] = cfg
    runs: dict = {}
    for r in parts:
        for run in r["runs"]:
            for method in ("lava", "hotspot"):
                if isinstance(run.get(method), dict) and run[method].get("status") == "done":
                    run[method].setdefault("lava_sc_revision", run.get("lava_sc_revision"))
            k = (run["program_strength"], run["state_strength"], run["seed"])
            prev = runs.get(k)
            if prev is None:
                runs[k] = dict(run)
                continue
            for method in ("lava", "hotspot"):  # a method that ran replaces one that was skipped
                if (run.get(method) or {}).get("status") == "done" and (prev.get(method) or {}).get("status") != "done":
                    prev[method] = dict(run[method])
                    other = run.get("lava") or {}
                    if method == "hotspot" and other.get("status") == "done" and other is not prev.get("lava"):
                        # the LAVA result of Hotspot's own run (same object, same process, maybe other code)
                        prev[method]["lava_in_same_run"] = {
                            k: other.get(k) for k in ("summary", "seconds", "lava_sc_revision")
                        }
    order = {k: i for i, k in enumerate(runs)}
    ordered = sorted(runs.values(), key=lambda x: (x["program_strength"], x["state_strength"], x["seed"], order))
    return {"meta": meta, "runs": ordered}


def main(args: argparse.Namespace) -> int:
    """Run the grid (or, with ``--render``, merge result files); ``args.code_revision`` is the lava_sc
    revision the harness read before any part imported lava_sc."""
    os.environ.setdefault("TQDM_DISABLE", "1")
    warnings.filterwarnings("ignore")
    out = args.atlas_out
    if args.render:
        result = merge(args.atlas_merge or [out], out)
        finish(args, result, out)
        return 0

    rev = args.code_revision
    import scanpy as sc

    sc.settings.verbosity = 0
    have_hotspot = importlib.util.find_spec("hotspot") is not None
    with_hotspot = not args.atlas_no_hotspot and have_hotspot and bool(args.atlas_hotspot_seeds)
    if args.no_hotspot or args.quick:
        reason = "--no-hotspot" if args.no_hotspot else "--quick"
    else:
        reason = "hotspotsc not installed" if not have_hotspot else "not in --atlas-hotspot-seeds"
    result = {
        "meta": {
            "commands": [args.command],
            "started": now(),
            "finished": None,
            "load_average_start": load_average(),
            "load_average_end": None,
            # once, before lava_sc is imported: this process runs that code to the end, whatever
            # happens to the files (or HEAD) meanwhile
            "revisions": [rev],
            "machine": machine_info(),
            "out_name": out_name(out),
            "config": {
                "cells": args.atlas_cells,
                "genes": args.atlas_genes,
                "program_strengths": args.atlas_program_strengths,
                "state_strengths": args.atlas_state_strengths,
                "seeds": args.atlas_seeds,
                "hotspot": HOTSPOT_PARAMS if with_hotspot else None,
                "hotspot_seeds": args.atlas_hotspot_seeds if with_hotspot else [],
                "quick": args.quick,
                "lava_call": "lv.tl.modules(adata, random_state=0)",
                "detectable_min_program_strength": DETECTABLE_MIN_PROGRAM_STRENGTH,
            },
        },
        "runs": [],
    }
    points = [(ps, ss) for ps in args.atlas_program_strengths for ss in args.atlas_state_strengths]
    print(
        f"atlas: {args.atlas_cells} cells x {args.atlas_genes} genes, {len(points)} grid point(s) x"
        f" {len(args.atlas_seeds)} seed(s),"
        f" Hotspot {'seeds ' + str(args.atlas_hotspot_seeds) if with_hotspot else 'off (' + reason + ')'},"
        f" load {result['meta']['load_average_start']}",
        flush=True,
    )
    t0 = time.perf_counter()
    warm_up(with_hotspot)
    result["meta"]["warmup_s"] = round(time.perf_counter() - t0, 2)
    print(f"  warm-up {result['meta']['warmup_s']:.1f} s", flush=True)
    failed = False
    for ps, ss in points:
        for seed in args.atlas_seeds:
            run = {
                "program_strength": ps,
                "state_strength": ss,
                "seed": seed,
                "detectable": detectable(ps),
                "lava_sc_revision": rev,
                "load_average_before": load_average(),
            }
            t1 = time.perf_counter()
            adata = simulate(args, ps, ss, seed)
            run["simulate_s"] = round(time.perf_counter() - t1, 2)
            for method, fn in (("lava", run_lava), ("hotspot", run_hotspot)):
                if method == "hotspot" and not (with_hotspot and seed in args.atlas_hotspot_seeds):
                    run[method] = {
                        "status": "skipped",
                        "reason": reason if not with_hotspot else "not in --atlas-hotspot-seeds",
                    }
                    continue
                try:
                    run[method] = fn(adata)
                except Exception as exc:  # noqa: BLE001 - record it and go on with the grid
                    run[method] = error_entry(exc)
                    failed = True
                run[method]["lava_sc_revision"] = rev
            run["load_average_after"] = load_average()
            result["runs"].append(run)
            result["meta"]["finished"] = now()
            result["meta"]["load_average_end"] = load_average()
            write(result, out)
            text = []
            for method in ("lava", "hotspot"):
                d = run[method]
                if d["status"] == "done":
                    s = d["summary"]
                    text.append(
                        f"{method} J {s['mean_jaccard']:.3f} ({s['n_modules']} modules, {s['n_unmatched']} unmatched,"
                        f" AUROC {fmt(s['mean_auroc'], 3)}) {d['seconds']:.1f} s"
                    )
                else:
                    text.append(f"{method} {d['status']} {d.get('error', '')}")
            print(f"  ps {ps:g} ss {ss:g} seed {seed} (sim {run['simulate_s']:.1f} s): " + "; ".join(text), flush=True)
            del adata
    finish(args, result, out)
    return 1 if failed else 0


def finish(args: argparse.Namespace, result: dict, out: Path) -> None:
    """``out`` and its markdown written (again), the summary printed, the README section rewritten."""
    write(result, out)
    print(summary_table(result["summary"]))
    if args.write_readme:
        rewrite_section(args.readme, markdown(result, for_readme=True), START, END)
    print(f"wrote {out} / {out.with_suffix('.md')}" + (f" and {args.readme}" if args.write_readme else ""))
