"""The atlas recovery benchmark runs with one command: ``python -m benchmarks.run --only atlas --quick``
(well under a minute)."""

import importlib.util
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import atlas, run
from benchmarks._common import rewrite_section

ROOT = Path(__file__).resolve().parents[1]
HARNESS = [sys.executable, "-m", "benchmarks.run", "--only", "atlas"]
PROGRAMS = {"recurring", "signed", "straddle", "condition", "small", "gradient", "response"}
START, END = "<!-- atlas:start -->", "<!-- atlas:end -->"


def parse_args(argv):
    return run.parse_args(["--only", "atlas", *argv])


def outside_section(text: str) -> str:
    if START in text:
        text = text[: text.index(START)] + text[text.index(END) + len(END) :]
    return text.strip("\n")


def test_grid_options():
    assert (START, END) == (atlas.START, atlas.END)
    full = parse_args([])
    assert full.parts == ["atlas"] and (full.atlas_cells, full.atlas_genes) == (6000, 1000)
    assert full.atlas_program_strengths == [0.6, 1.0, 1.4] and full.atlas_state_strengths == [0.15, 0.25, 0.35]
    assert full.atlas_seeds == [0, 1, 2] and full.atlas_hotspot_seeds == [0, 1, 2] and not full.atlas_no_hotspot
    assert full.atlas_out.name == "atlas.json" and not full.write_readme
    quick = parse_args(["--quick"])
    assert quick.atlas_cells == 1500 and quick.atlas_seeds == [0] and quick.atlas_no_hotspot
    assert quick.atlas_out.name == "atlas_quick.json"
    assert len(quick.atlas_program_strengths) * len(quick.atlas_state_strengths) == 1
    custom = parse_args(
        ["--atlas-program-strengths", "1.4", "--atlas-seeds", "3,4", "--atlas-hotspot-seeds", "4", "--write-readme"]
    )
    assert custom.atlas_program_strengths == [1.4] and custom.atlas_seeds == [3, 4]
    assert custom.atlas_hotspot_seeds == [4]
    assert custom.write_readme and custom.readme == ROOT / "benchmarks" / "README.md"
    # 'detectable' is a fixed rule on the program strength, not a function of the results
    assert atlas.detectable(1.0) and atlas.detectable(1.4) and not atlas.detectable(0.6)
    with pytest.raises(SystemExit):
        parse_args(["--atlas-cells", "500"])
    with pytest.raises(SystemExit):  # merging is a --render
        parse_args(["--atlas-merge", "a.json"])


def test_signed_halves_are_scored_apart():
    genes = [f"signed_{i}" for i in range(14)]
    modules = {"M1": set(genes[:7]), "M2": set(genes[7:]) | {"gene_0"}}
    h = atlas.signed_halves(genes, modules)
    assert h["positive"] == {"module": "M1", "jaccard": 1.0}
    assert h["negative"]["module"] == "M2" and h["negative"]["jaccard"] == pytest.approx(7 / 8, abs=1e-4)
    assert not h["same_module"]


def test_quick_run_writes_results_and_readme_section(tmp_path):
    readme = tmp_path / "README.md"
    shutil.copy(ROOT / "benchmarks" / "README.md", readme)
    before = outside_section(readme.read_text())
    out = tmp_path / "atlas_quick.json"
    cmd = [*HARNESS, "--quick", "--out", str(tmp_path), "--write-readme", "--readme", str(readme)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    result = json.loads(out.read_text())
    cfg = result["meta"]["config"]
    assert cfg["cells"] == 1500 and cfg["lava_call"] == "lv.tl.modules(adata, random_state=0)"
    assert result["meta"]["machine"]["cores"] >= 1 and result["meta"]["revisions"]
    (run,) = result["runs"]
    assert (run["program_strength"], run["state_strength"], run["seed"]) == (1.0, 0.25, 0)
    assert run["hotspot"]["status"] == "skipped"  # --quick runs no Hotspot
    lava = run["lava"]
    assert lava["status"] == "done" and 0 < lava["seconds"] < 300 and run["simulate_s"] > 0
    s = lava["summary"]
    assert 0.0 <= s["mean_jaccard"] <= 1.0 and 0.0 <= lava["mean_jaccard_without_gradient"] <= 1.0
    assert s["n_modules"] >= 1 and 0 <= s["n_unmatched"] <= s["n_modules"]
    assert 1 <= s["median_module_size"] <= s["max_module_size"] <= cfg["genes"]
    assert s["mean_auroc"] is None or 0.0 <= s["mean_auroc"] <= 1.0
    assert {r["program"] for r in lava["programs"]} == PROGRAMS
    for r in lava["programs"]:
        assert 0.0 <= r["jaccard"] <= 1.0 and r["size"] > 0 and r["module_size"] >= 0
        assert r["auroc"] is None or 0.0 <= r["auroc"] <= 1.0
    assert s["mean_jaccard"] == pytest.approx(sum(r["jaccard"] for r in lava["programs"]) / 7)
    for half in ("positive", "negative"):
        assert 0.0 <= lava["signed_halves"][half]["jaccard"] <= 1.0

    summary = result["summary"]
    assert [e["method"] for e in summary] == ["LAVA", "Hotspot"]
    entry, hotspot = summary
    assert entry["detectable"] and entry["n_seeds"] == 1 and hotspot["n_seeds"] == 0
    assert set(entry["programs"]) == PROGRAMS
    assert entry["mean_jaccard"] == pytest.approx(s["mean_jaccard"], abs=1e-4)
    assert math.isfinite(entry["seconds"])

    md = out.with_suffix(".md").read_text()
    assert "| program strength | state strength | detectable |" in md and "`gradient`" in md and "Detectable" in md
    text = readme.read_text()
    assert outside_section(text) == before  # nothing else in the README changed
    assert text.count(START) == 1 and text.count(END) == 1 and "Module recovery on the simulated atlas" in text

    # --render merges result files (here the same run twice: one run, not two) and rewrites the section again
    merged = tmp_path / "merged" / "atlas.json"
    cmd = [*HARNESS, "--render", "--atlas-merge", str(out), str(out), "--out", str(merged.parent)]
    cmd += ["--write-readme", "--readme", str(readme)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    again = json.loads(merged.read_text())
    assert len(again["runs"]) == 1 and len(again["meta"]["commands"]) == 2
    text = readme.read_text()
    assert outside_section(text) == before and text.count(START) == 1


@pytest.mark.skipif(importlib.util.find_spec("hotspot") is None, reason="hotspotsc is an optional (bench) dependency")
def test_hotspot_is_scored_like_lava(tmp_path):
    out = tmp_path / "atlas.json"
    cmd = [*HARNESS, "--atlas-cells", "1000", "--atlas-genes", "300", "--atlas-program-strengths", "1.0"]
    cmd += ["--atlas-state-strengths", "0.25", "--atlas-seeds", "0", "--out", str(tmp_path)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(out.read_text())
    (run,) = result["runs"]
    hs = run["hotspot"]
    assert hs["status"] == "done" and hs["seconds"] > 0 and result["meta"]["config"]["hotspot_seeds"] == [0]
    assert set(hs["summary"]) == set(run["lava"]["summary"])
    assert {r["program"] for r in hs["programs"]} == PROGRAMS
    for r in hs["programs"]:
        assert 0.0 <= r["jaccard"] <= 1.0
        assert r["auroc"] is None or 0.0 <= r["auroc"] <= 1.0
    s = hs["summary"]
    assert 0 <= s["n_unmatched"] <= s["n_modules"] and s["max_module_size"] >= s["median_module_size"]
    assert [e["n_seeds"] for e in result["summary"]] == [1, 1]
    assert "Head to head" in out.with_suffix(".md").read_text()


def test_readme_section_is_appended_when_missing(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# Benchmarks\n\n<!-- results:start -->\ntable\n<!-- results:end -->\n")
    rewrite_section(readme, "section\n", atlas.START, atlas.END)
    assert readme.read_text() == (
        f"# Benchmarks\n\n<!-- results:start -->\ntable\n<!-- results:end -->\n\n{START}\nsection\n{END}\n"
    )
