"""Probe placement: where the time of ``find_localities`` goes, against its floor (issue 14).

    python -m benchmarks.run --only placement                                   # 100k, 300k, 1M cells
    python -m benchmarks.run --only placement --placement-cells 6000,100000     # other sizes

``find_localities`` on ``simulate_planted``'s 2-d embedding (``n_cells = min(200, cells / 7)``,
overlap 3, seed 0), after a warm-up, in this process. Its stages are timed by running them again
alone with the same inputs (they are deterministic): the kNN statistics, and the subsampled DIRECT
search of the fast path; the placements on all cells are the rest. **Floor** = what no placement can
avoid: the kNN statistics, one weighted k-means++ seeding of all cells and one Lloyd run from it to
convergence, at the chosen (alpha, beta). Rows go to ``placement.json`` in ``--out`` and the table
to stdout (``--render``: the table from that JSON).
"""

from __future__ import annotations

import argparse
import json
import time

from ._common import ints, write_json_atomic

DEFAULT_CELLS = [100_000, 300_000, 1_000_000]
QUICK_CELLS = [6_000]
#: find_localities' default max_exact_cells: the fast path above
FAST_ABOVE = 50_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("placement")
    g.add_argument("--placement-cells", type=ints, help="embedding sizes (100000,300000,1000000)")


def finish_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    if args.placement_cells is None:
        args.placement_cells = QUICK_CELLS if args.quick else DEFAULT_CELLS


def seconds(work) -> tuple[float, object]:
    start = time.perf_counter()
    result = work()
    return time.perf_counter() - start, result


def profile(n: int) -> dict:
    """One placement of ``n`` cells: total, stages and floor, in seconds."""
    import numpy as np

    from lava_sc._core import localities as loc
    from lava_sc._core.knn import NeighbourIndex

    from ._workers_data import fidelity_embedding

    points = fidelity_embedding("planted", n, 0).astype(np.float64)
    n_cells, fast = min(200, n // 7), n > FAST_ABOVE
    total, res = seconds(lambda: loc.find_localities(points, n_cells=n_cells, overlap=3, random_state=0))
    index = NeighbourIndex(points, n_neighbors=n_cells)
    stats_s, (deg, dist) = seconds(lambda: loc.neighbourhood_statistics(index, n_cells, grid=fast))
    n_loc = loc.n_localities_for(n, n_cells, 3)
    search_s = 0.0
    if fast:
        search_s, _ = seconds(
            lambda: loc.subsample_search(points, n_cells, n_loc, 20_000, 0, ((0, 3), (0, 3)), 40, "auto", None)
        )
    weights = loc.cell_weights(deg, dist, res.alpha, res.beta)
    seed_s, init = seconds(lambda: loc.seed_centres(points, weights, n_loc, 0))
    lloyd_s, _ = seconds(lambda: loc.lloyd(points, weights, init, max_iter=100))
    floor = stats_s + seed_s + lloyd_s
    return {
        "cells": n,
        "localities": n_loc,
        "path": "fast" if fast else "exact",
        "total_s": round(total, 3),
        "stats_s": round(stats_s, 3),
        "search_s": round(search_s, 3),
        "placements_s": round(total - stats_s - search_s, 3),
        "floor_s": round(floor, 3),
        "total_over_floor": round(total / floor, 2),
        "coverage_loss": round(float(res.coverage_loss), 4),
        "n_evaluations": int(res.n_evaluations),
    }


def markdown(rows: list[dict]) -> str:
    lines = [
        "| cells | localities | path | kNN stats (s) | subsample search (s) | placements on all cells (s) "
        "| total (s) | floor (s) | **total / floor** | coverage loss |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['cells']:,} | {r['localities']:,} | {r['path']} | {r['stats_s']} | {r['search_s']} | "
            f"{r['placements_s']} | {r['total_s']} | {r['floor_s']} | **{r['total_over_floor']}** | "
            f"{r['coverage_loss']} |"
        )
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    out = args.out / ("placement_quick.json" if args.quick else "placement.json")
    if args.render:
        print(markdown(json.loads(out.read_text())))
        return 0
    profile(3_000)  # numba compiles on the first call
    if max(args.placement_cells) > FAST_ABOVE:
        profile(FAST_ABOVE + 10_000)  # and the fast path's kernels on theirs
    rows = []
    for n in args.placement_cells:
        rows.append(profile(n))
        print(rows[-1], flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out, rows)
    print(markdown(rows))
    return 0
