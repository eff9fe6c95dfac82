import gzip

import numpy as np
import pandas as pd
import pytest

import lava_sc as lv

SETS = {"HALLMARK_A": ["CD3E", "CD3D", "CD2"], "set b": ["MS4A1", "CD79A", "CD79B", "CD3E"]}


@pytest.mark.parametrize("name", ["sets.gmt", "sets.gmt.gz"])
def test_dict_round_trip(tmp_path, name):
    path = tmp_path / name
    lv.io.write_gmt(SETS, path)
    assert lv.io.read_gmt(path) == SETS
    assert lv.io.read_gmt(str(path)) == SETS


def test_written_layout_is_tab_separated(tmp_path):
    path = tmp_path / "sets.gmt"
    lv.io.write_gmt(SETS, path, description="from a test")
    lines = path.read_text().splitlines()
    assert lines[0].split("\t") == ["HALLMARK_A", "from a test", "CD3E", "CD3D", "CD2"]
    assert len(lines) == 2


def test_net_round_trip_ignores_weights(tmp_path):
    net = pd.DataFrame(
        {
            "source": ["M1", "M1", "M2", "M1", "M2"],
            "target": ["g1", "g2", "g3", "g4", "g1"],
            "weight": [1.0, 0.5, 1.0, 0.2, 0.9],
        }
    )
    path = tmp_path / "net.gmt"
    lv.io.write_gmt(net, path)
    assert lv.io.read_gmt(path) == {"M1": ["g1", "g2", "g4"], "M2": ["g3", "g1"]}


def test_numpy_and_set_genes_are_written(tmp_path):
    path = tmp_path / "np.gmt"
    lv.io.write_gmt({"a": np.array(["x", "y"]), "b": ("z", "x")}, path)
    assert lv.io.read_gmt(path) == {"a": ["x", "y"], "b": ["z", "x"]}


def test_read_tolerates_blank_lines_trailing_tabs_and_repeats(tmp_path):
    path = tmp_path / "messy.gmt"
    path.write_text("A\tdesc\tg1\tg2\tg1\t\t\n\n\nB\t\tg3\r\n")
    assert lv.io.read_gmt(path) == {"A": ["g1", "g2"], "B": ["g3"]}


def test_read_gz(tmp_path):
    path = tmp_path / "x.gmt.gz"
    with gzip.open(path, "wt") as fh:
        fh.write("A\td\tg1\tg2\n")
    assert lv.io.read_gmt(path) == {"A": ["g1", "g2"]}


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("A d g1 g2\n", "line 1.*tab"),
        ("A\td\tg1\nB\n", "line 2"),
        ("A\tdesc\n", "lists no genes"),
        ("A\td\tg1\nA\td\tg2\n", "appears twice"),
        ("\n\n", "no gene sets"),
    ],
)
def test_read_malformed(tmp_path, text, match):
    path = tmp_path / "bad.gmt"
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        lv.io.read_gmt(path)


def test_read_missing_file_and_bad_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        lv.io.read_gmt(tmp_path / "nope.gmt")
    with pytest.raises(TypeError, match="file path"):
        lv.io.read_gmt(3)


@pytest.mark.parametrize(
    ("gene_sets", "error", "match"),
    [
        (["g1", "g2"], TypeError, "dict name -> genes"),
        ({}, ValueError, "empty"),
        ({1: ["g1"]}, TypeError, "must be a string"),
        ({"A": ["g1", 2]}, TypeError, "must be a string"),
        ({"A": "g1"}, TypeError, "single string"),
        ({"A": []}, ValueError, "no genes"),
        ({"A\tB": ["g1"]}, ValueError, "without tabs"),
        (pd.DataFrame({"set": ["A"], "gene": ["g1"]}), KeyError, "source"),
        (pd.DataFrame({"source": ["A", None], "target": ["g1", "g2"]}), ValueError, "missing values"),
    ],
)
def test_write_bad_input(tmp_path, gene_sets, error, match):
    with pytest.raises(error, match=match):
        lv.io.write_gmt(gene_sets, tmp_path / "x.gmt")


def test_write_rejects_bad_description_and_path(tmp_path):
    with pytest.raises(TypeError, match="description"):
        lv.io.write_gmt(SETS, tmp_path / "x.gmt", description="a\tb")
    with pytest.raises(TypeError, match="file path"):
        lv.io.write_gmt(SETS, None)
    with pytest.raises(TypeError, match="dict name -> genes"):  # a path is not a collection of sets here
        lv.io.write_gmt("other.gmt", tmp_path / "x.gmt")
