"""Tests for :func:`lava_sc.pl.module_pixels`."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection, QuadMesh
from matplotlib.image import AxesImage

import lava_sc as lv

from .conftest import is_png


def _mesh(ax: Axes) -> QuadMesh:
    (mesh,) = [c for c in ax.collections if isinstance(c, QuadMesh)]
    return mesh


def test_one_panel_per_module(digits_lava):
    names = list(lv.get.activity(digits_lava).columns)
    axes = lv.pl.module_pixels(digits_lava, show=False)
    assert isinstance(axes, list) and len(axes) == len(names)
    assert [ax.get_title().split(":")[0] for ax in axes] == names
    assert isinstance(lv.pl.module_pixels(digits_lava, "M1", show=False), Axes)
    assert len(lv.pl.module_pixels(digits_lava, ["M1", "M2"], show=False)) == 2


def test_scores_on_the_pixel_grid(digits_lava):
    genes = lv.get.module_genes(digits_lava)
    genes = genes[genes["module"] == "M1"]
    ax = lv.pl.module_pixels(digits_lava, "M1", show=False)
    grid = np.ma.filled(_mesh(ax).get_array(), np.nan).reshape(8, 8)
    for gene, score in zip(genes["gene"], genes["score"], strict=True):
        _, r, c = gene.split("_")
        assert grid[int(r), int(c)] == pytest.approx(score)
    assert np.isfinite(grid).sum() == len(genes)


def test_edges_and_background(digits_lava):
    pairs = lv.get.modules(digits_lava)
    n_pairs = int((pairs["module"] == "M2").sum())
    ax = lv.pl.module_pixels(digits_lava, "M2", background="mean", show=False)
    (lines,) = [c for c in ax.collections if isinstance(c, LineCollection) and not isinstance(c, QuadMesh)]
    assert len(lines.get_segments()) == n_pairs
    (image,) = [im for im in ax.get_images() if isinstance(im, AxesImage)]
    mean = np.asarray(digits_lava.X).mean(axis=0).reshape(8, 8)
    np.testing.assert_allclose(np.asarray(image.get_array()), mean, rtol=1e-6)
    ax = lv.pl.module_pixels(digits_lava, "M2", edges=False, show=False)
    assert not [c for c in ax.collections if isinstance(c, LineCollection) and not isinstance(c, QuadMesh)]
    assert ax.get_images() == []
    custom = np.arange(64.0)
    ax = lv.pl.module_pixels(digits_lava, "M2", background=custom, show=False)
    np.testing.assert_array_equal(np.asarray(ax.get_images()[0].get_array()), custom.reshape(8, 8))


def test_explicit_shape(digits_lava):
    ax = lv.pl.module_pixels(digits_lava, "M1", shape=(4, 16), show=False)
    assert np.asarray(_mesh(ax).get_array()).size == 64
    assert ax.get_xlim() == (-0.5, 15.5)


def test_save(digits_lava, tmp_path):
    path = tmp_path / "pix.png"
    lv.pl.module_pixels(digits_lava, ["M1", "M2", "M3"], ncols=2, background=True, show=False, save=path)
    assert path.stat().st_size > 1000 and is_png(path)


def test_errors(digits_lava):
    with pytest.raises(ValueError, match=r"not a square number.*shape=\(rows, cols\)"):
        lv.pl.module_pixels(digits_lava[:, :60].copy(), "M1", show=False)
    with pytest.raises(ValueError, match="holds 63 pixels"):
        lv.pl.module_pixels(digits_lava, "M1", shape=(9, 7), show=False)
    with pytest.raises(ValueError, match="pair of integers"):
        lv.pl.module_pixels(digits_lava, "M1", shape=8, show=False)
    with pytest.raises(ValueError, match="background"):
        lv.pl.module_pixels(digits_lava, "M1", background=np.zeros(10), show=False)
    with pytest.raises(KeyError, match="available modules"):
        lv.pl.module_pixels(digits_lava, "M42", show=False)
    from matplotlib import pyplot as plt

    _, ax = plt.subplots()
    with pytest.raises(ValueError, match="single module"):
        lv.pl.module_pixels(digits_lava, ax=ax)
    assert lv.pl.module_pixels(digits_lava, "M1", ax=ax) is ax


def test_missing_results(digits_lava):
    bare = digits_lava.copy()
    del bare.uns["lava"]
    with pytest.raises(KeyError, match=r"run lava_sc\.tl\.modules"):
        lv.pl.module_pixels(bare, show=False)


def test_shape_from_uns_image_shape(digits_lava):
    # uns["image_shape"] (as written by lava_sc.datasets.digits / mnist) takes precedence over the
    # square-root guess, which would give 8 x 8 for these 64 pixels
    adata = digits_lava.copy()
    adata.uns["image_shape"] = np.array([4, 16])
    ax = lv.pl.module_pixels(adata, "M1", show=False)
    assert ax.get_xlim() == (-0.5, 15.5) and ax.get_ylim() == (3.5, -0.5)
    # an explicit shape still wins
    ax = lv.pl.module_pixels(adata, "M1", shape=(8, 8), show=False)
    assert ax.get_xlim() == (-0.5, 7.5)
    # the datasets loaders record the shape
    assert list(lv.datasets.digits(embed=False).uns["image_shape"]) == [8, 8]
    # a recorded shape that no longer fits the variables (pixels were subset) names the problem
    with pytest.raises(ValueError, match=r"image_shape.*shape=\(rows, cols\)"):
        lv.pl.module_pixels(adata[:, :60].copy(), "M1", show=False)
