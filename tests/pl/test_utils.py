"""Tests for the shared plotting helpers in :mod:`lava_sc.pl._utils`."""

from __future__ import annotations

from pathlib import Path

import pytest

from lava_sc.pl import _utils


def test_select_modules(pbmc_lava):
    names = _utils.available_modules(pbmc_lava, "lava")
    assert names[0] == "M1"
    assert _utils.select_modules(pbmc_lava, "lava", None) == names
    assert _utils.select_modules(pbmc_lava, "lava", "M2") == ["M2"]
    assert _utils.select_modules(pbmc_lava, "lava", ["M2", "M1", "M2"]) == ["M2", "M1"]
    with pytest.raises(KeyError, match="available modules"):
        _utils.select_modules(pbmc_lava, "lava", ["M1", "nope"])


def test_save_path(tmp_path):
    assert _utils.save_path(None, "x") is None
    assert _utils.save_path(False, "x") is None
    assert _utils.save_path(tmp_path / "a", "x") == tmp_path / "a.png"
    assert _utils.save_path(str(tmp_path / "a.pdf"), "x") == tmp_path / "a.pdf"
    assert _utils.save_path(True, "lava_x").name == "lava_x.png"
    assert isinstance(_utils.save_path(True, "lava_x"), Path)
    with pytest.raises(TypeError, match="file path"):
        _utils.save_path(3, "x")


def test_basis_label():
    assert _utils.basis_label("X_umap") == "UMAP"
    assert _utils.basis_label("X_pca") == "PC"
    assert _utils.basis_label("spatial") == "spatial"
