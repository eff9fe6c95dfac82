"""The planted-program benchmark of the explainers runs with one command:
``python -m benchmarks.run --only explainers --quick``."""

import importlib.util
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

from benchmarks import explainers
from benchmarks._common import rewrite_section

ROOT = Path(__file__).resolve().parents[1]
HARNESS = [sys.executable, "-m", "benchmarks.run", "--only", "explainers"]
METHODS = {"LAVA", "Hotspot", "COCOA", "label-free", "DAC"}
PROGRAMS = {"shared", "typeB", "gradient", "disease_T4"}


def rewrite_readme(readme: Path, text: str) -> None:
    rewrite_section(readme, text, explainers.START, explainers.END)


def outside_section(text: str) -> str:
    """The README without the explainers section (and the blank lines around where it goes)."""
    start, end = "<!-- explainers:start -->", "<!-- explainers:end -->"
    assert (explainers.START, explainers.END) == (start, end)
    if start in text:
        text = text[: text.index(start)] + text[text.index(end) + len(end) :]
    return text.strip("\n")


def test_quick_run_has_a_row_per_method_and_program(tmp_path):
    readme = tmp_path / "README.md"
    shutil.copy(ROOT / "benchmarks" / "README.md", readme)
    before = outside_section(readme.read_text())
    out = tmp_path / "results"
    cmd = [*HARNESS, "--quick", "--out", str(out), "--write-readme", "--readme", str(readme)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    result = json.loads((out / "explainers_quick.json").read_text())
    rows = result["rows"]
    assert {(r["method"], r["program"]) for r in rows} == {(m, p) for m in METHODS for p in PROGRAMS}
    assert len(rows) == len(METHODS) * len(PROGRAMS)  # one seed in --quick
    hotspot_ran = importlib.util.find_spec("hotspot") is not None
    for r in rows:
        if r["method"] == "Hotspot" and not hotspot_ran:
            assert r["status"] == "skipped"
            continue
        assert r["status"] == "done"
        assert 0.0 <= r["gene_jaccard_or_precision"] <= 1.0
        assert 0.0 <= r["gene_jaccard"] <= r["gene_jaccard_or_precision"] + 1e-9
        assert r["seconds"] >= 0 and math.isfinite(r["seconds"])
        if r["localisation_auroc"] is not None:
            assert 0.0 <= r["localisation_auroc"] <= 1.0
        if r["method"] == "COCOA":  # every cell gets a target, so the AUROC is always defined
            assert r["localisation_auroc"] is not None
        if r["method"] == "DAC":
            assert 0.0 <= r["classifier_accuracy"] <= 1.0 and r["dac_auc"] >= 0
        assert r["notes"]
    assert len(result["summary"]) == len(METHODS) * len(PROGRAMS)
    # LAVA finds the planted programs carried by whole cell types even at 800 cells
    lava = {r["program"]: r for r in rows if r["method"] == "LAVA"}
    assert lava["typeB"]["gene_jaccard_or_precision"] >= 0.5

    md = (out / "explainers_quick.md").read_text()
    assert "| method | program |" in md and "localisation AUROC" in md
    text = readme.read_text()
    assert outside_section(text) == before  # nothing else in the README changed
    assert text.count("<!-- explainers:start -->") == 1 and text.count("<!-- explainers:end -->") == 1
    # a second write replaces the section instead of appending another one
    rewrite_readme(readme, "replaced\n")
    again = readme.read_text()
    assert again.count("<!-- explainers:start -->") == 1 and "replaced\n<!-- explainers:end -->" in again
    assert outside_section(again) == before
    # --render rebuilds the markdown and the section from the JSON alone
    (out / "explainers_quick.md").unlink()
    proc = subprocess.run(
        [*HARNESS, "--quick", "--render", "--out", str(out), "--write-readme", "--readme", str(readme)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (out / "explainers_quick.md").read_text() == md
    assert readme.read_text() == text


def test_readme_section_is_appended_when_missing(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# Benchmarks\n\n<!-- results:start -->\ntable\n<!-- results:end -->\n")
    rewrite_readme(readme, "section\n")
    assert readme.read_text() == (
        "# Benchmarks\n\n<!-- results:start -->\ntable\n<!-- results:end -->\n\n"
        "<!-- explainers:start -->\nsection\n<!-- explainers:end -->\n"
    )
