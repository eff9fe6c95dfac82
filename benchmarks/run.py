"""lava_sc benchmark harness: one command, one parser, every part (run from the repository root).

    python -m benchmarks.run                          # the speed suite: hotspot, floor, scaling, fidelity
                                                      # (about an hour on 2 cores)
    python -m benchmarks.run --quick                  # smoke run of the speed suite, < 2 minutes
    python -m benchmarks.run --only hotspot           # parts, comma-separated or repeated (below)
    python -m benchmarks.run --only explainers        # LAVA vs Hotspot vs COCOA / label-free / DAC
    python -m benchmarks.run --only atlas             # module recovery over the simulated-atlas grid
    python -m benchmarks.run --only atlas_levers      # the defaults' levers on the simulated atlas
    python -m benchmarks.run --only seeds             # module stability across random_states
    python -m benchmarks.run --only placement         # probe placement's stages against its floor
    python -m benchmarks.run --out benchmarks/results --write-readme
    python -m benchmarks.run --render --write-readme  # run nothing: markdown (and README) from --out's JSON

Out of core (a store on disk, a LocalCluster; its own command, minutes to an hour):
    python -m benchmarks.out_of_core --cells 5000000 --genes 1000 --store /tmp/ooc/atlas.zarr

Parts (``--only``; ``speed`` names the first four; without ``--only``, the speed suite):
  hotspot       speed.py: lava_sc.tl.modules vs Hotspot's full pipeline on identical simulated data
  floor         speed.py: lava_sc.tl.correlations vs this machine's float32 GEMM rate (with a cProfile)
  scaling       speed.py: per-stage time and peak RSS over cells (10k -> 1M) and genes (500 -> 5,000)
  fidelity      speed.py: probe placement, find_localities' fast path against its exact path
  explainers    explainers.py: planted-program recovery and localisation, five methods
  atlas         atlas.py: LAVA at defaults (and Hotspot) over program x state strength on simulate_atlas
  atlas_levers  atlas_levers.py: the defaults against each of their parts switched off
  seeds         seeds.py: modules of several random_states matched one-to-one to seed 0's
  placement     placement.py: find_localities' stages (kNN statistics, search, placements) and floor

The speed parts named run first, as one suite (one ``results.json``), then the others in the order
given. Options shared by every part: ``--quick`` (each part's smoke run: the sizes in its module's
docstring; atlas_levers has none), ``--out`` (the folder of every part's JSON and markdown: results,
explainers, atlas, atlas_levers, seeds, placement ``.json``, ``*_quick.*`` with ``--quick``), ``--write-readme``
(rewrite the part's marked section of ``--readme``: speed suite, explainers, atlas), ``--render`` and
``--no-hotspot``; every other option belongs to one part and is named after it (``--atlas-seeds``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import atlas, atlas_levers, explainers, placement, seeds, speed
from ._common import README, RESULTS, code_revision, command_line

#: part name -> its module (the speed parts share one: they run as one suite)
MODULES = {**dict.fromkeys(speed.PARTS, speed), "explainers": explainers, "atlas": atlas}
MODULES.update(atlas_levers=atlas_levers, seeds=seeds, placement=placement)
PARTS = tuple(MODULES)
GROUPS = {"speed": speed.PARTS}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.run", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="smoke run: each part's small sizes (its module docstring)")
    p.add_argument(
        "--only", action="append", help=f"parts to run, comma-separated: {', '.join(PARTS)}; speed = the first four"
    )
    p.add_argument("--out", type=Path, default=RESULTS, help="folder of every part's JSON and markdown")
    p.add_argument(
        "--write-readme",
        action="store_true",
        help="rewrite the parts' sections of the README (speed, explainers, atlas)",
    )
    p.add_argument("--readme", type=Path, default=README, help="the README --write-readme rewrites")
    p.add_argument(
        "--render", action="store_true", help="run nothing: rebuild the markdown (and README) from --out's JSON"
    )
    p.add_argument("--no-hotspot", action="store_true", help="skip Hotspot in every part (its rows say 'skipped')")
    for module in dict.fromkeys(MODULES.values()):
        module.add_arguments(p)
    args = p.parse_args(argv)
    args.command = command_line(argv)
    parts: list[str] = []
    for item in args.only or [",".join(speed.PARTS)]:
        for part in item.split(","):
            part = part.strip()
            if part not in PARTS and part not in GROUPS:
                p.error(f"--only: unknown part {part!r}; choose from {', '.join((*PARTS, *GROUPS))}")
            parts += [x for x in GROUPS.get(part, (part,)) if x not in parts]
    args.parts = parts
    for module in dict.fromkeys(MODULES.values()):
        module.finish_args(args, p)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # read once, before any part imports lava_sc: what this process runs, whatever changes on disk later
    args.code_revision = None if args.render else code_revision()
    order = [MODULES[part] for part in args.parts if part in speed.PARTS]
    order += [MODULES[part] for part in args.parts if part not in speed.PARTS]
    status = 0
    for module in dict.fromkeys(order):
        status = max(status, module.main(args))
    return status


if __name__ == "__main__":
    sys.exit(main())
