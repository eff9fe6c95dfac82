"""The speed parts of the benchmark harness: lava_sc against Hotspot, the BLAS floor, scaling, fidelity.

    python -m benchmarks.run                        # these four parts (about an hour on 2 cores)
    python -m benchmarks.run --quick                # smoke run, < 2 minutes (what tests/test_benchmarks.py runs)
    python -m benchmarks.run --only hotspot,floor   # some of them: hotspot, floor, scaling, fidelity
    python -m benchmarks.run --write-readme         # ... and rewrite their section of benchmarks/README.md
    python -m benchmarks.run --render --write-readme  # run nothing: markdown and README from --out's JSON

Parts (see benchmarks/README.md):
  hotspot  lava_sc.tl.modules vs Hotspot's full pipeline on identical simulated data (speed + recovery)
  floor    lava_sc.tl.correlations vs this machine's float32 GEMM rate for the same multiply-adds
           (with a cProfile of the correlation stage)
  scaling  per-stage time and peak RSS over cells (10k -> 1M) and genes (500 -> 5,000)
  fidelity probe placement: coverage loss of find_localities' fast path (subsampled search) against its
           exact path (search on all cells) on the same embeddings, and their seconds

Every measurement runs in a fresh worker process (``_workers.py``) with its own warm-up, so JIT
compilation is excluded and peak RSS is per configuration; a worker that passes its time limit is
stopped and reported as a lower bound ("> X s"). The parts of one run share ``results.json`` /
``results.md`` in ``--out`` (``results_quick.*`` with ``--quick``); with ``--only`` the other parts of an
earlier run of the same mode are kept.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import time

from . import _report
from ._common import (
    fill_defaults,
    ints,
    load_average,
    machine_info,
    names,
    now,
    rewrite_section,
    run_worker,
    write_json_atomic,
    write_text_atomic,
)

PARTS = ("hotspot", "floor", "scaling", "fidelity")

FULL = {
    "hotspot_cells": [6000, 20000],
    "floor_sizes": [(20000, 1000), (50000, 2000)],
    "scaling_cells": [10_000, 100_000, 1_000_000],
    "scaling_genes": [500, 2000, 5000],
    "scaling_cells_genes": 1000,
    "scaling_genes_cells": 50_000,
    "fidelity_cells": [30_000, 50_000],
    "fidelity_seeds": [0, 1, 2],
}
QUICK = {
    "hotspot_cells": [2000],
    "floor_sizes": [(5000, 500)],
    "scaling_cells": [1000, 2000],
    "scaling_genes": [100, 200],
    "scaling_cells_genes": 100,
    "scaling_genes_cells": 1000,
    "fidelity_cells": [6000],
    "fidelity_seeds": [0],
    "fidelity_search_cells": 2000,
}


def _sizes(text: str) -> list[tuple[int, int]]:
    out = []
    for item in text.split(","):
        cells, genes = item.lower().split("x")
        out.append((int(float(cells)), int(float(genes))))
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("hotspot")
    g.add_argument("--hotspot-cells", type=ints, help="cell counts, e.g. 6000,20000")
    g.add_argument("--hotspot-genes", type=int, default=500)
    g.add_argument("--hotspot-jobs", type=int, default=1, help="Hotspot's jobs= (1 was fastest on 2 cores)")
    g.add_argument(
        "--hotspot-local-genes",
        choices=("all", "significant"),
        default="all",
        help="genes for Hotspot's local correlations: all (identical to lava_sc) or autocorrelation FDR < 0.05",
    )
    g.add_argument("--hotspot-timeout", type=float, default=600.0, help="limit on each timed run (s)")
    g = parser.add_argument_group("floor")
    g.add_argument("--floor-sizes", type=_sizes, help="cells x genes, e.g. 20000x1000,50000x2000")
    g.add_argument("--floor-timeout", type=float, default=900.0)
    g.add_argument("--no-profile", action="store_true", help="skip the cProfile of the correlation stage")
    g = parser.add_argument_group("scaling")
    g.add_argument("--scaling-cells", type=ints, help="cells axis, e.g. 10000,100000,1000000")
    g.add_argument("--scaling-genes", type=ints, help="genes axis, e.g. 500,2000,5000")
    g.add_argument("--scaling-cells-genes", type=int, help="genes on the cells axis (1,000)")
    g.add_argument("--scaling-genes-cells", type=int, help="cells on the genes axis (50,000)")
    g.add_argument("--scaling-timeout", type=float, default=900.0, help="limit on each pipeline run (s)")
    g = parser.add_argument_group("fidelity")
    g.add_argument("--fidelity-cells", type=ints, help="embedding sizes, e.g. 30000,50000")
    g.add_argument("--fidelity-seeds", type=ints, help="seeds of each embedding and search, e.g. 0,1,2")
    g.add_argument(
        "--fidelity-geometries",
        type=names,
        default=["planted", "blobs"],
        help="embeddings: planted (the simulator's), blobs (12 anisotropic blobs + 5%% background)",
    )
    g.add_argument("--fidelity-search-cells", type=int, help="fast path's search subsample (default: cells // 3)")
    g.add_argument("--fidelity-timeout", type=float, default=1200.0, help="limit on exact + fast search (s)")
    g = parser.add_argument_group("speed parts' workers")
    g.add_argument(
        "--setup-timeout", type=float, default=1200.0, help="limit on a worker's imports + warm-up + data (s)"
    )


def finish_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Sizes left unset take the ``--quick`` or full defaults; ``--quick`` caps every time limit at 2 min."""
    for geometry in args.fidelity_geometries:
        if geometry not in ("planted", "blobs"):
            parser.error(f"--fidelity-geometries: unknown geometry {geometry!r}; choose from planted, blobs")
    fill_defaults(args, FULL, QUICK)
    if args.quick:
        args.hotspot_timeout = min(args.hotspot_timeout, 120.0)
        args.floor_timeout = min(args.floor_timeout, 120.0)
        args.scaling_timeout = min(args.scaling_timeout, 120.0)
        args.fidelity_timeout = min(args.fidelity_timeout, 120.0)
        args.setup_timeout = min(args.setup_timeout, 120.0)


# ------------------------------------------------------------------------------------------------ parts


def run_hotspot(args) -> dict:
    cfg = {
        "n_genes": args.hotspot_genes,
        "jobs": args.hotspot_jobs,
        "genes": args.hotspot_local_genes,
        "min_gene_threshold": 10,
        "approx_neighbors": False,
        "timeout_s": args.hotspot_timeout,
    }
    section = {"measured_at": now(), "config": cfg, "rows": []}
    if args.no_hotspot:
        section["status"] = "skipped"
        section["note"] = "Hotspot not run (`--no-hotspot`)."
        print("  hotspot: skipped (--no-hotspot)", flush=True)
    elif importlib.util.find_spec("hotspot") is None:
        section["status"] = "skipped"
        section["note"] = "Hotspot is not installed (`pip install hotspotsc`, or `pip install -e .[bench]`)."
        print("  hotspot: skipped (hotspotsc not installed)", flush=True)
    have_hotspot = section.get("status") != "skipped"
    for n_cells in args.hotspot_cells:
        params = {
            "n_cells": n_cells,
            "n_genes": args.hotspot_genes,
            "hotspot": have_hotspot,
            **{k: cfg[k] for k in ("jobs", "genes", "min_gene_threshold", "approx_neighbors")},
        }
        res = run_worker("compare", params, timeout=args.hotspot_timeout, setup_timeout=args.setup_timeout)
        lava = res.get("lava") or {"status": res.get("status"), "error": res.get("error")}
        hs = res.get("hotspot") or {"status": "skipped" if not have_hotspot else res.get("status")}
        if res.get("status") in ("timeout", "setup_timeout", "error"):
            failed = hs if res.get("phase") == "hotspot" else lava
            for k in ("status", "timeout_after_s", "error", "log_tail", "returncode"):
                if k in res:
                    failed[k] = res[k]
            if res.get("phase") == "hotspot" and lava.get("status") != "done":
                lava["status"] = "error"
        row = {
            "n_cells": n_cells,
            "n_genes": res.get("n_genes", args.hotspot_genes),
            "fingerprint": res.get("fingerprint"),
            "lava_sc_revision": res.get("lava_sc_revision"),
            "wall_s": res.get("wall_s"),
            "load_average_before": res.get("load_average_before"),
            "load_average_after": res.get("load_average_after"),
            "lava": lava,
            "hotspot": hs,
            # one AnnData object, one process: LAVA ran on a copy, Hotspot on the object itself
            "same_input": True if res.get("fingerprint") else None,
        }
        if lava.get("status") == "done" and hs.get("status") == "done":
            row["speedup"] = round(hs["timed_s"] / lava["timed_s"], 2)
            row["speedup_text"] = f"**{row['speedup']:.1f}×**"
        elif lava.get("status") == "done" and hs.get("status") == "timeout":
            row["speedup_lower_bound"] = round(hs["timeout_after_s"] / lava["timed_s"], 2)
            row["speedup_text"] = f"**> {row['speedup_lower_bound']:.1f}×**"
        section["rows"].append(row)
    section["note"] = section.get("note") or (
        "Hotspot settings: `approx_neighbors=False` (exact ball-tree kNN: faster than pynndescent on a 2-d"
        " embedding and needs no JIT), `min_gene_threshold=10` (Hotspot's default 20 is larger than the"
        " planted 15-gene modules), all genes in `compute_local_correlations` so both methods see the same"
        " genes. A module counts as recovered when its best-matching found module has Jaccard ≥ 0.5."
    )
    return section


def run_floor(args) -> dict:
    section = {"measured_at": now(), "rows": []}
    for i, (n_cells, n_genes) in enumerate(args.floor_sizes):
        params = {"n_cells": n_cells, "n_genes": n_genes, "profile": (i == 0 and not args.no_profile)}
        section["rows"].append(
            run_worker("floor", params, timeout=args.floor_timeout, setup_timeout=args.setup_timeout)
        )
    return section


def run_scaling(args) -> dict:
    configs = [("cells", c, args.scaling_cells_genes) for c in args.scaling_cells]
    configs += [("genes", args.scaling_genes_cells, g) for g in args.scaling_genes]
    section = {"measured_at": now(), "timeout_s": args.scaling_timeout, "rows": []}
    done: dict[tuple[int, int], dict] = {}
    for axis, n_cells, n_genes in configs:
        key = (n_cells, n_genes)
        if key not in done:
            done[key] = run_worker(
                "scaling",
                {"n_cells": n_cells, "n_genes": n_genes},
                timeout=args.scaling_timeout,
                setup_timeout=args.setup_timeout,
            )
        section["rows"].append({"axis": axis, **done[key]})
    target = done.get((_report.SCALING_TARGET_CELLS, 1000))
    if target is not None:
        if target.get("status") == "done":
            ok_t = target["timed_s"] <= _report.SCALING_TARGET_S
            ok_m = target["peak_rss_gib"] <= _report.SCALING_TARGET_GIB
            section["target"] = (
                f"{target['timed_s']:.0f} s ({'met' if ok_t else 'missed'}), peak RSS"
                f" {target['peak_rss_gib']:.1f} GiB ({'met' if ok_m else 'missed'})"
            )
        else:
            section["target"] = f"not measured to the end ({_report._timed(target)}) — missed"
    return section


def run_fidelity(args) -> dict:
    """Exact vs fast probe placement on the same embeddings: coverage-loss ratio and seconds."""
    section = {
        "measured_at": now(),
        "timeout_s": args.fidelity_timeout,
        "config": {
            "locality_cells": 200,
            "overlap": 3,
            "search_cells": args.fidelity_search_cells or "cells // 3",
            "target_ratio": _report.FIDELITY_TARGET,
        },
        "rows": [],
    }
    for geometry in args.fidelity_geometries:
        for n_cells in args.fidelity_cells:
            for seed in args.fidelity_seeds:
                params = {
                    "geometry": geometry,
                    "n_cells": n_cells,
                    "seed": seed,
                    "search_cells": args.fidelity_search_cells or n_cells // 3,
                }
                res = run_worker(
                    "fidelity", params, timeout=args.fidelity_timeout, setup_timeout=args.setup_timeout, verbose=False
                )
                section["rows"].append(res)
                print(f"  [fidelity] {_fidelity_line(res)}", flush=True)
    section["summary"] = fidelity_summary(section["rows"])
    return section


def _fidelity_line(res: dict) -> str:
    p = res.get("params", {})
    label = f"{p.get('geometry')}, {p.get('n_cells'):,} cells, seed {p.get('seed')}"
    if res.get("status") != "done":
        tail = (res.get("log_tail") or "")[-800:]
        return f"{label}: {_report._timed(res)} in {res.get('stage')!r} {tail}"
    e, f = res["exact"], res["fast"]
    ratio = "–" if res.get("ratio") is None else f"{res['ratio']:.3f}"
    return (
        f"{label}: loss exact {e['coverage_loss']:.4f} ({e['seconds']:.1f} s), fast {f['coverage_loss']:.4f}"
        f" ({f['seconds']:.1f} s), ratio {ratio}; wall {res.get('wall_s')} s, load {res.get('load_average_after')}"
    )


def fidelity_summary(rows: list[dict]) -> dict:
    """Mean and worst fast / exact loss ratio over seeds per (geometry, cells), and overall, vs the target."""
    target = _report.FIDELITY_TARGET
    groups: dict[str, list[float]] = {}
    for r in rows:
        if r.get("status") == "done" and r.get("ratio") is not None:
            groups.setdefault(f"{r['params']['geometry']} {r['params']['n_cells']}", []).append(r["ratio"])
    by_group = {
        name: {
            "n_seeds": len(v),
            "mean_ratio": round(sum(v) / len(v), 4),
            "worst_ratio": round(max(v), 4),
            "mean_met": sum(v) / len(v) <= target,
            "worst_met": max(v) <= target,
        }
        for name, v in groups.items()
    }
    ratios = [x for v in groups.values() for x in v]
    n_failed = sum(r.get("status") != "done" for r in rows)
    summary = {"target": target, "groups": by_group, "n_rows": len(rows), "n_not_measured": n_failed}
    if ratios:
        worst_mean = max(g["mean_ratio"] for g in by_group.values())
        summary.update(
            worst_ratio=round(max(ratios), 4),
            mean_ratio=round(sum(ratios) / len(ratios), 4),
            worst_group_mean_ratio=worst_mean,
            mean_met=worst_mean <= target,  # every (geometry, cells) within target on average over seeds
            worst_met=max(ratios) <= target,  # every single run within target
        )
        summary["text"] = (
            f"worst single run {summary['worst_ratio']:.3f} ({'met' if summary['worst_met'] else 'missed'}),"
            f" worst mean over seeds {worst_mean:.3f} ({'met' if summary['mean_met'] else 'missed'}),"
            f" mean of all runs {summary['mean_ratio']:.3f}"
            + (f"; {n_failed} run(s) not measured to the end" if n_failed else "")
        )
    else:
        summary["text"] = "no run measured to the end — missed"
    return summary


RUNNERS = {"hotspot": run_hotspot, "floor": run_floor, "scaling": run_scaling, "fidelity": run_fidelity}


def main(args: argparse.Namespace) -> int:
    """Run the speed parts in ``args.parts`` (or, with ``--render``, rebuild their markdown from the JSON)."""
    parts = [part for part in args.parts if part in PARTS]
    mode = "quick" if args.quick else "full"
    args.out.mkdir(parents=True, exist_ok=True)
    json_path = args.out / f"results{'_quick' if args.quick else ''}.json"
    md_path = json_path.with_suffix(".md")
    if args.render:
        results = json.loads(json_path.read_text())
        _write_markdown(args, results, md_path)
        return 0
    t0 = time.time()
    meta = {"command": args.command, "mode": mode, "started": now(), "machine": machine_info()}
    print(f"lava_sc benchmarks ({mode}): {', '.join(parts)} -> {json_path}", flush=True)
    m = meta["machine"]
    print(f"  machine: {m['cpu_model']}, {m['cores']} cores, {m['memory_gib']} GiB; load {m['load_average']}")
    results: dict = {}
    if args.only and json_path.exists():  # keep the other parts of an earlier run of the same mode
        try:
            results = {k: v for k, v in json.loads(json_path.read_text()).items() if k in PARTS}
        except ValueError:
            results = {}
    results["meta"] = meta
    for part in parts:
        print(f"[{part}]", flush=True)
        results[part] = RUNNERS[part](args)
        results["meta"]["finished"] = now()
        results["meta"]["load_average_end"] = load_average()
        write_json_atomic(json_path, results)  # partial results survive an interrupted run
    results["meta"]["elapsed_s"] = round(time.time() - t0, 1)
    write_json_atomic(json_path, results)
    _write_markdown(args, results, md_path)
    print(f"wrote {json_path} and {md_path}{' and ' + str(args.readme) if args.write_readme else ''}")
    return 0


def _write_markdown(args: argparse.Namespace, results: dict, md_path) -> None:
    markdown = _report.results_markdown(results)
    write_text_atomic(md_path, markdown)
    if args.write_readme:
        rewrite_section(args.readme, markdown, _report.START, _report.END)
    print(markdown)
