"""``io.write_report`` (lava_sc/_report.py): one self-contained HTML file, checked as text and in a real browser.

The browser tests run Debian's ``chromium`` headless. Without it they are skipped, unless
``LAVA_REQUIRE_BROWSER`` is set (``.ci/run`` sets it and installs chromium), where they fail.
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
import shutil
import subprocess
import time

import matplotlib.pyplot as plt
import numpy as np
import pytest

import lava_sc as lv
from lava_sc.cli import main

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
IMG = re.compile(r"<img\b[^>]*>")
BROWSER_TIMEOUT_S = 60


@pytest.fixture(scope="module")
def pbmc_report(pbmc_lava, tmp_path_factory):
    """The report of pbmc68k_reduced's default modules, and how long it took to write."""
    path = tmp_path_factory.mktemp("report") / "pbmc.html"
    start = time.perf_counter()
    lv.io.write_report(pbmc_lava, path)
    seconds = time.perf_counter() - start
    print(f"\n[report] pbmc68k_reduced: {path.stat().st_size / 1024:.0f} KiB written in {seconds:.1f} s")
    return path


@pytest.fixture(scope="module")
def full_report(small_all, tmp_path_factory):
    """The report of a run with differential activity and enrichment results as well."""
    path = tmp_path_factory.mktemp("report") / "full.html"
    lv.io.write_report(small_all, path, groupby="condition")
    return path


def images(text: str) -> list[str]:
    return IMG.findall(text)


@pytest.mark.parametrize("which", ["pbmc_report", "full_report"])
def test_the_report_is_one_self_contained_file(which, request):
    text = request.getfixturevalue(which).read_text(encoding="utf-8")
    assert not re.search(r"""\b(?:src|href|action)\s*=\s*["']?\s*(?:https?:)?//""", text, re.I)
    assert not re.search(r"<script\b[^>]*\bsrc\s*=", text, re.I)
    assert not re.search(r"<link\b|@import|url\(", text, re.I)
    assert "http://" not in text and "https://" not in text
    found = images(text)
    assert found
    for tag in found:
        src = re.search(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', tag)
        assert src, f"an image that is not an embedded PNG: {tag[:80]}"
        data = base64.b64decode(src.group(1), validate=True)
        assert data.startswith(PNG_SIGNATURE)
        width = int.from_bytes(data[16:20], "big")
        assert f'width="{width}"' in tag and width > 100


def test_the_report_holds_every_module_the_parameters_and_what_was_tested(pbmc_lava, pbmc_report):
    text = pbmc_report.read_text(encoding="utf-8")
    summary = lv.get.summary(pbmc_lava)
    names = summary["module"].tolist()
    assert len(names) >= 3
    for i, name in enumerate(names, start=1):
        assert f'<section class="module" id="module-{i}"><h2>{name} ' in text
        assert f'href="#module-{i}">{name}</a>' in text  # the table's link to it
        assert f'alt="Activity of {name}"' in text and f'alt="Gene network of {name}"' in text
    for gene in lv.get.module_genes(pbmc_lava)["gene"]:
        assert f">{html.escape(gene)}</span>" in text
    for column in summary.columns:  # every column of get.summary, as it is
        assert f">{column}</th>" in text
    assert 'alt="Localities"' in text
    for step in ("localities", "correlations", "modules"):
        assert f"<h3>{step} <small" in text
    assert "n_cells" in text and "max_genes" in text and "remove_dense" in text
    assert html.escape(summary.attrs["gene_source"]) in text
    assert f"{summary.attrs['n_genes_tested']:,} of {pbmc_lava.n_vars:,}" in text
    assert text.count("<img ") == 1 + 2 * len(names)
    assert "could not be drawn" not in text


def test_differential_and_enrichment_are_shown_where_they_were_run(small_all, full_report, pbmc_report):
    text = full_report.read_text(encoding="utf-8")
    assert '<section id="differential">' in text and 'alt="Differential activity"' in text
    names = lv.get.summary(small_all)["module"].tolist()
    assert text.count("<h3>Differential activity</h3>") == len(names)
    for name in names:
        best = lv.get.enrichment(small_all, module=name)["gene_set"].iloc[0]
        assert f"Best set: <b>{best}</b>" in text
    assert "<h3>Gene-set enrichment</h3>" in text
    assert "disease" in text and "control" in text  # the split activity panels' condition and the test's
    plain = pbmc_report.read_text(encoding="utf-8")
    assert "Differential activity" not in plain and "Gene-set enrichment" not in plain


def test_text_from_adata_is_escaped(small_lava, tmp_path):
    adata = small_lava.copy()
    slot = adata.uns["lava"]
    genes = slot["module_genes"].copy()
    old = str(genes["gene"].iloc[0])
    new = '<img src=x onerror="alert(1)">&GENE'
    genes["gene"] = genes["gene"].astype(str).replace(old, new)
    pairs = slot["modules"].copy()
    for column in ("gene_a", "gene_b"):
        pairs[column] = pairs[column].astype(str).replace(old, new)
    slot["module_genes"], slot["modules"] = genes, pairs
    path = lv.io.write_report(adata, tmp_path / "r.html", title="<script>alert('title')</script>")
    text = path.read_text(encoding="utf-8")
    assert new not in text and "<script>alert" not in text
    assert html.escape(new) in text and html.escape("<script>alert('title')</script>") in text
    assert len(re.findall(r"<script\b", text)) == 1  # the report's own


def test_a_run_without_modules_still_gets_its_report(pbmc_lava, tmp_path):
    adata = pbmc_lava.copy()
    lv.tl.modules(adata, min_support=10_000)
    text = lv.io.write_report(adata, tmp_path / "none.html").read_text(encoding="utf-8")
    assert "LAVA found no modules" in text and "0 modules" in text
    assert 'alt="Localities"' in text and '<section id="parameters">' in text
    assert 'class="module"' not in text


def test_bad_input_says_what_to_do(pbmc, pbmc_lava, tmp_path):
    with pytest.raises(KeyError, match=r"run lava_sc\.tl\.modules"):
        lv.io.write_report(pbmc, tmp_path / "r.html")
    with pytest.raises(KeyError, match="not found in adata.obs"):
        lv.io.write_report(pbmc_lava, tmp_path / "r.html", groupby="no_such_column")
    with pytest.raises(KeyError, match="not found in adata.obsm"):
        lv.io.write_report(pbmc_lava, tmp_path / "r.html", basis="X_tsne")
    with pytest.raises(IsADirectoryError, match="is a folder"):
        lv.io.write_report(pbmc_lava, tmp_path)
    with pytest.raises(TypeError, match="`path` must be a file path"):
        lv.io.write_report(pbmc_lava, 3)
    assert list(tmp_path.iterdir()) == []


def test_written_atomically_and_the_notebooks_figures_stay_open(small_lava, tmp_path):
    path = tmp_path / "report.html"
    path.write_text("old")
    mine = plt.figure()
    before = set(plt.get_fignums())
    try:
        assert lv.io.write_report(small_lava, path) == path
        assert set(plt.get_fignums()) == before  # its own figures are closed, the user's stay
    finally:
        plt.close(mine)
    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]  # no temporary file left


def test_lava_sc_run_writes_the_report(small, tmp_path, capsys):
    source = tmp_path / "in.h5ad"
    small.write_h5ad(source)
    report = tmp_path / "pub" / "report.html"
    status = main(["run", str(source), "--out", str(tmp_path / "out.h5ad"), "--report", str(report), "--quiet"])
    assert status == 0
    assert f"  {report}" in capsys.readouterr().out  # in the list of written files
    text = report.read_text(encoding="utf-8")
    assert "<title>LAVA on in.h5ad</title>" in text and 'id="module-1"' in text


# ----------------------------------------------------------------------------------------------------------------------
# in a real browser

#: appended to a copy of the report: sorts the module table by clicking headers, and writes what it saw
SORT_PROBE = """<script>
window.addEventListener("load", function () {
  var table = document.getElementById("module-table");
  var heads = Array.prototype.slice.call(table.tHead.rows[0].cells);
  function column(name) { return heads.map(function (h) { return h.textContent; }).indexOf(name); }
  function order(name) {
    var i = column(name);
    return Array.prototype.map.call(table.tBodies[0].rows, function (r) { return r.cells[i].textContent; });
  }
  var seen = {};
  ["n_genes", "module"].forEach(function (name) {
    var th = heads[column(name)];
    th.click(); seen[name + "_up"] = order(name); seen[name + "_up_aria"] = th.getAttribute("aria-sort");
    th.click(); seen[name + "_down"] = order(name); seen[name + "_down_aria"] = th.getAttribute("aria-sort");
  });
  var out = document.createElement("pre"); out.id = "sort-probe"; out.textContent = JSON.stringify(seen);
  document.body.appendChild(out);
});
</script>"""


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("LAVA_REQUIRE_BROWSER"):
            pytest.fail("LAVA_REQUIRE_BROWSER is set but chromium is not installed (apt-get install chromium)")
        pytest.skip("chromium not found (apt-get install chromium); set LAVA_REQUIRE_BROWSER=1 to require it")
    return found


def browse(page, *flags: str, profile) -> subprocess.CompletedProcess:
    command = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        *flags,
        page.resolve().as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=BROWSER_TIMEOUT_S, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]
    assert not console, f"the page wrote to the console (a script error?): {console}"
    return done


@pytest.mark.parametrize("which", ["pbmc_report", "full_report"])
def test_in_chromium_the_script_runs_every_image_loads_and_the_table_sorts(which, request, tmp_path):
    report = request.getfixturevalue(which)
    text = report.read_text(encoding="utf-8")
    probed = tmp_path / "probed.html"
    probed.write_text(text.replace("</body>", SORT_PROBE + "\n</body>"), encoding="utf-8")
    dom = browse(probed, "--dump-dom", profile=tmp_path / "profile").stdout
    body = re.search(r"<body[^>]*>", dom).group(0)
    n_images = text.count("<img ")
    assert 'data-ready="1"' in body  # the report's script ran to its end
    assert f'data-images="{n_images}"' in body and f'data-images-loaded="{n_images}"' in body  # naturalWidth > 0
    seen = json.loads(html.unescape(re.search(r'<pre id="sort-probe">(.*?)</pre>', dom, re.S).group(1)))
    genes = [int(n) for n in seen["n_genes_up"]]
    assert genes == sorted(genes) and [int(n) for n in seen["n_genes_down"]] == sorted(genes, reverse=True)
    assert (seen["n_genes_up_aria"], seen["n_genes_down_aria"]) == ("ascending", "descending")
    natural = sorted(seen["module_up"], key=lambda m: int(m[1:]))  # M2 before M10
    assert seen["module_up"] == natural and seen["module_down"] == natural[::-1]


def test_in_chromium_the_page_is_drawn(pbmc_report, tmp_path):
    shot = tmp_path / "report.png"
    browse(pbmc_report, f"--screenshot={shot}", "--window-size=1280,2000", profile=tmp_path / "profile")
    pixels = plt.imread(shot)[..., :3]
    assert pixels.shape[:2] == (2000, 1280)
    assert pixels.std() > 0.1  # not blank
    assert (pixels.min(axis=2) < 0.9).mean() > 0.05  # text, tables and figures, not a white page
    assert (np.ptp(pixels, axis=2) > 0.3).mean() > 0.01  # colour: the embedded figures were painted
