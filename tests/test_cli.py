"""The ``lava-sc`` command line."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import anndata as ad
import pandas as pd
import pytest
import scanpy as sc

import lava_sc
from lava_sc import cli
from lava_sc.cli import main

DEMO_FILES = [
    "pbmc68k_lava.h5ad",
    "modules.csv",
    "module_genes.csv",
    "activity.csv",
    "activity.png",
    "localities.png",
    "network_M1.png",
]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """One ``lava-sc demo`` run shared by the tests: (exit status, output folder, stdout, stderr)."""
    out = tmp_path_factory.mktemp("demo")
    capture = pytest.MonkeyPatch()

    stdout, stderr = io.StringIO(), io.StringIO()
    capture.setattr(sys, "stdout", stdout)
    capture.setattr(sys, "stderr", stderr)
    try:
        status = main(["demo", "--out", str(out), "--quiet"])
    finally:
        capture.undo()
    return status, out, stdout.getvalue(), stderr.getvalue()


@pytest.fixture(scope="module")
def small_h5ad(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("input") / "pbmc.h5ad"
    sc.datasets.pbmc68k_reduced().write_h5ad(path)
    return path


def test_demo_writes_every_file(demo):
    status, out, stdout, stderr = demo
    assert status == 0, stderr
    for name in DEMO_FILES:
        path = out / name
        assert path.is_file(), f"{name} missing; stderr:\n{stderr}"
        assert path.stat().st_size > 0, name
    assert "warning" not in stderr, stderr


def test_demo_h5ad_holds_results(demo):
    _, out, _, _ = demo
    adata = ad.read_h5ad(out / "pbmc68k_lava.h5ad")
    modules = adata.uns["lava"]["modules"]
    assert len(modules) > 0
    assert {"module", "gene_a", "gene_b", "weight", "support"} <= set(modules.columns)
    assert "lava_activity" in adata.obsm


def test_demo_tables(demo):
    _, out, _, _ = demo
    modules = pd.read_csv(out / "modules.csv")
    genes = pd.read_csv(out / "module_genes.csv")
    activity = pd.read_csv(out / "activity.csv", index_col=0)
    assert list(modules.columns) == ["module", "gene_a", "gene_b", "weight", "support"]
    assert list(genes.columns) == ["module", "gene", "score", "sign"]
    assert len(modules) > 0 and len(genes) > 0
    assert activity.shape[0] == 700
    assert list(activity.columns) == sorted(set(modules["module"]), key=lambda m: int(m[1:]))


def test_demo_summary(demo):
    _, out, stdout, _ = demo
    assert "cells                     700" in stdout
    for label in ("genes tested", "localities", "significant associations", "modules"):
        assert label in stdout
    assert "significant (permutation test)" in stdout and "where active" in stdout
    n_modules = pd.read_csv(out / "modules.csv")["module"].nunique()
    module_lines = [line for line in stdout.splitlines() if line.strip().startswith("M") and "%" in line]
    assert len(module_lines) == min(n_modules, 20)
    assert module_lines[0].split()[0] == "M1"
    assert len(stdout.splitlines()) <= 45  # one screen


def test_run_nmf_with_tables_and_figures(small_h5ad, tmp_path, capsys):
    out = tmp_path / "res" / "out.h5ad"
    status = main(
        [
            "run",
            str(small_h5ad),
            "--out",
            str(out),
            "--method",
            "nmf",
            "--rank",
            "5",
            "--n-placements",
            "1",
            "--tables",
            str(tmp_path / "tables"),
            "--figures",
            str(tmp_path / "figures"),
            "--quiet",
        ]
    )
    captured = capsys.readouterr()
    assert status == 0, captured.err
    adata = ad.read_h5ad(out)
    assert adata.uns["lava"]["params"]["modules"]["method"] == "nmf"
    assert adata.uns["lava"]["params"]["modules"]["rank"] == 5
    assert adata.uns["lava"]["params"]["localities"]["n_placements_used"] == 1
    assert "placements" not in captured.out  # the summary names placements only when there are several
    assert len(adata.uns["lava"]["modules"]) > 0
    for name in ("modules.csv", "module_genes.csv", "activity.csv"):
        assert (tmp_path / "tables" / name).stat().st_size > 0
    assert "(nmf)" in captured.out
    assert "M1" in captured.out


def test_run_missing_basis(small_h5ad, tmp_path, capsys):
    status = main(["run", str(small_h5ad), "--out", str(tmp_path / "o.h5ad"), "--basis", "X_tsne", "--quiet"])
    captured = capsys.readouterr()
    assert status == 2
    assert captured.err.startswith("lava-sc: error: --basis: Embedding 'X_tsne' not found in adata.obsm")
    assert "pass --basis" in captured.err and "basis=" not in captured.err
    assert "Traceback" not in captured.err
    assert not (tmp_path / "o.h5ad").exists()


def test_run_missing_file(tmp_path, capsys):
    missing = tmp_path / "nope.h5ad"
    status = main(["run", str(missing), "--out", str(tmp_path / "o.h5ad")])
    captured = capsys.readouterr()
    assert status == 2
    assert captured.err.strip() == f"lava-sc: error: input file {str(missing)!r} not found."


def test_run_not_an_h5ad(tmp_path, capsys):
    bad = tmp_path / "bad.h5ad"
    bad.write_text("not hdf5")
    assert main(["run", str(bad), "--out", str(tmp_path / "o.h5ad")]) == 2
    assert capsys.readouterr().err.startswith("lava-sc: error: cannot read")


def test_run_bad_parameter(small_h5ad, tmp_path, capsys):
    status = main(["run", str(small_h5ad), "--out", str(tmp_path / "o.h5ad"), "--fdr", "2", "--quiet"])
    assert status == 2
    assert "argument --fdr: must be in (0, 1], got 2" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--rank", "0"], "argument --rank: must be an integer >= 1"),
        (["--resolution", "-1"], "argument --resolution: must be a number > 0"),
        (["--n-cells", "1"], "argument --n-cells: must be an integer >= 3"),
        (["--n-placements", "9"], "argument --n-placements: must be 'auto' or an integer from 1 to 5, got 9"),
        (["--n-placements", "many"], "argument --n-placements: must be 'auto' or an integer from 1 to 5"),
        (["--layer", "nope"], "--layer: Layer 'nope' not found"),
        (["--partial-out", "nonexistent"], "--partial-out: 'nonexistent' is neither an obsm key"),
    ],
)
def test_run_checks_every_flag_before_any_work(small_h5ad, tmp_path, capsys, monkeypatch, flags, expected):
    """These failed only after 8-10 s of work on 30k cells, with Python parameter names."""
    import functools

    import lava_sc.tl as tl

    @functools.wraps(tl.localities)  # keeps the signature, which the parser reads its defaults from
    def no_work(*args, **kwargs):
        raise AssertionError("a tool ran before the flags were checked")

    monkeypatch.setattr(tl, "localities", no_work)
    status = main(["run", str(small_h5ad), "--out", str(tmp_path / "o.h5ad"), "--quiet", *flags])
    err = capsys.readouterr().err
    assert status == 2 and expected in err, err
    assert "Traceback" not in err


def test_usage_errors_and_version(capsys):
    assert main([]) == 2
    assert main(["run"]) == 2  # IN.h5ad and --out are required
    assert main(["run", "x.h5ad", "--out", "y.h5ad", "--method", "kmeans"]) == 2
    capsys.readouterr()
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"lava-sc {lava_sc.__version__}"


def test_verbosity_restored(tmp_path):
    before = sc.settings.verbosity
    main(["run", str(tmp_path / "missing.h5ad"), "--out", str(tmp_path / "o.h5ad")])
    assert sc.settings.verbosity == before


def test_missing_plot_functions_are_skipped(demo, tmp_path, monkeypatch, capsys):
    """Figures are optional: a missing or failing plot warns instead of failing the run."""
    _, out, _, _ = demo
    adata = ad.read_h5ad(out / "pbmc68k_lava.h5ad")

    def broken(*args, **kwargs):
        raise ValueError("boom")

    monkeypatch.setattr(lava_sc.pl, "localities", broken, raising=False)
    monkeypatch.delattr(lava_sc.pl, "module_network", raising=False)
    written = cli.write_figures(adata, tmp_path, key="lava")
    err = capsys.readouterr().err
    assert "could not draw localities.png with lava_sc.pl.localities: boom" in err
    assert "lava_sc.pl.module_network is not available" in err
    assert tmp_path / "localities.png" not in written
    assert not (tmp_path / "network_M1.png").exists()


def test_python_dash_m():
    result = subprocess.run([sys.executable, "-m", "lava_sc", "--version"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"lava-sc {lava_sc.__version__}"
