"""The tutorial notebooks execute from top to bottom without a cell error."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

TUTORIALS = Path(__file__).resolve().parents[1] / "tutorials"
NOTEBOOKS = [
    "01_quickstart_pbmc.ipynb",
    "02_kidney_disease_signals.ipynb",
    "03_images_mnist.ipynb",
    "04_planted_simulation.ipynb",
]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_tutorial_executes(name, tmp_path):
    # run a copy, so the saved outputs in tutorials/ are not touched; the working directory is
    # tutorials/ as for a reader who opens the notebook there
    copy = tmp_path / name
    shutil.copyfile(TUTORIALS / name, copy)
    nb = nbformat.read(copy, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(TUTORIALS)}})
    client.execute()  # raises CellExecutionError, naming the cell, on the first error
    errors = [
        (i, out.get("ename"), out.get("evalue"))
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if out.get("output_type") == "error"
    ]
    assert not errors, f"{name}: cells with errors {errors}"
    assert all(c.get("execution_count") for c in nb.cells if c.cell_type == "code" and c.source.strip())
