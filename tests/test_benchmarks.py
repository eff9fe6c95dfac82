"""The benchmark suite runs with one command: ``python -m benchmarks.run --quick`` (< 2 minutes)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import run

ROOT = Path(__file__).resolve().parents[1]
HARNESS = [sys.executable, "-m", "benchmarks.run"]


def test_parts_are_selectable():
    assert run.parse_args(["--quick"]).parts == ["hotspot", "floor", "scaling", "fidelity"]
    assert run.parse_args(["--only", "scaling,floor"]).parts == ["scaling", "floor"]
    assert run.parse_args(["--only", "hotspot", "--only", "floor"]).parts == ["hotspot", "floor"]
    full = run.parse_args([])
    assert full.hotspot_cells == [6000, 20000] and full.scaling_cells[-1] == 1_000_000
    assert full.fidelity_cells == [30_000, 50_000] and len(full.fidelity_seeds) >= 3
    assert full.fidelity_search_cells is None  # cells // 3 per size
    custom = run.parse_args(["--only", "fidelity", "--fidelity-cells", "8000", "--fidelity-seeds", "4,5"])
    assert custom.parts == ["fidelity"] and custom.fidelity_cells == [8000] and custom.fidelity_seeds == [4, 5]
    with pytest.raises(SystemExit):
        run.parse_args(["--only", "gpu"])


def test_only_composes_the_speed_parts_with_the_others():
    assert run.parse_args(["--only", "explainers"]).parts == ["explainers"]
    assert run.parse_args(["--only", "seeds,hotspot", "--only", "atlas"]).parts == ["seeds", "hotspot", "atlas"]
    assert run.parse_args(["--only", "speed,atlas_levers"]).parts == [*run.speed.PARTS, "atlas_levers"]
    assert run.parse_args(["--only", "floor,speed"]).parts == ["floor", "hotspot", "scaling", "fidelity"]
    quick = run.parse_args(["--only", "seeds,explainers", "--quick"])
    assert (quick.seeds_count, quick.seeds_datasets) == (2, ["pbmc68k_reduced"])
    assert (quick.explainers_cells, quick.explainers_seeds) == (800, [0])
    full = run.parse_args(["--only", "seeds", "--seeds-count", "3"])
    assert (full.seeds_count, full.seeds_datasets) == (3, ["pbmc68k_reduced", "atlas"])
    assert full.command == "python -m benchmarks.run --only seeds --seeds-count 3"
    with pytest.raises(SystemExit):  # atlas_levers has no smoke run
        run.parse_args(["--only", "atlas_levers", "--quick"])


def test_quick_run_writes_every_section(tmp_path):
    readme = tmp_path / "README.md"
    shutil.copy(ROOT / "benchmarks" / "README.md", readme)
    out = tmp_path / "results"
    proc = subprocess.run(
        [*HARNESS, "--quick", "--out", str(out), "--write-readme", "--readme", str(readme)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads((out / "results_quick.json").read_text())
    assert {"meta", "hotspot", "floor", "scaling", "fidelity"} <= set(results)
    assert results["meta"]["machine"]["cores"] >= 1 and results["meta"]["machine"]["blas"]

    (row,) = results["hotspot"]["rows"]
    assert row["n_cells"] == 2000 and row["n_genes"] == 500
    assert row["lava"]["status"] == "done" and row["lava"]["timed_s"] > 0
    assert row["lava"]["recovery"]["n_planted"] == 4
    if results["hotspot"].get("status") != "skipped":  # hotspotsc is an optional (bench) dependency
        assert row["hotspot"]["status"] == "done" and row["hotspot"]["timed_s"] > 0
        assert row["speedup"] > 0 and row["same_input"]

    (floor,) = results["floor"]["rows"]
    assert floor["status"] == "done"
    assert floor["floor_s"] > 0 and floor["correlations_s"] > 0 and floor["ratio"] > 0
    assert floor["multiply_adds"] == floor["n_localities"] * floor["cells_per_locality"] * floor["n_genes"] ** 2
    assert floor["profile"]["top_by_own_time"]

    scaling = results["scaling"]["rows"]
    assert {r["axis"] for r in scaling} == {"cells", "genes"}
    for r in scaling:
        assert r["status"] == "done", r
        assert {"localities", "correlations", "modules"} <= set(r["stages"])
        assert r["peak_rss_gib"] > 0

    fidelity = results["fidelity"]["rows"]
    assert {r["params"]["geometry"] for r in fidelity} == {"planted", "blobs"}
    for r in fidelity:
        assert r["status"] == "done", r
        assert r["exact"]["max_exact_cells"] >= r["n_cells"] > r["fast"]["max_exact_cells"]
        assert r["fast"]["search_cells"] == 2000
        assert r["exact"]["coverage_loss"] > 0 and r["fast"]["coverage_loss"] > 0
        assert r["ratio"] == pytest.approx(r["fast"]["coverage_loss"] / r["exact"]["coverage_loss"], rel=1e-3)
    assert "worst_ratio" in results["fidelity"]["summary"]

    table = (out / "results_quick.md").read_text()
    assert "Against Hotspot" in table and "BLAS floor" in table and "Scaling" in table
    assert "fast path against exact path" in table
    text = readme.read_text()
    assert text.count("<!-- results:start -->") == 1 and text.count("<!-- results:end -->") == 1
    assert table.strip() in text


def test_placement_profile_adds_up(tmp_path):
    args = run.parse_args(["--only", "placement", "--quick", "--out", str(tmp_path)])
    assert args.placement_cells == [6000]
    assert run.main(["--only", "placement", "--quick", "--out", str(tmp_path)]) == 0
    (row,) = json.loads((tmp_path / "placement_quick.json").read_text())
    assert row["cells"] == 6000 and row["path"] == "exact" and row["search_s"] == 0
    assert 0 < row["stats_s"] <= row["floor_s"] and row["stats_s"] <= row["total_s"]  # the floor holds the statistics
    # the seconds are rounded to 1 ms before the JSON, the ratio is not
    assert row["total_over_floor"] == pytest.approx(row["total_s"] / row["floor_s"], rel=0.1)
    assert 0 < row["coverage_loss"] < 1


def test_seed_stability_quick_run(tmp_path):
    cmd = [*HARNESS, "--only", "seeds", "--quick", "--out", str(tmp_path)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads((tmp_path / "seeds_quick.json").read_text())["results"][0]
    assert result["dataset"] == "pbmc68k_reduced" and len(result["n_modules"]) == 2
    assert 0.0 <= result["mean_matched_jaccard"] <= 1.0
    assert "matched Jaccard to seed 0" in proc.stdout
