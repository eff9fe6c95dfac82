"""The layout the code promises (CONTRIBUTING.md): kernels know nothing of AnnData, nothing imports upward."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "lava_sc"
CORE_FORBIDDEN = ("anndata", "scanpy", "lava_sc.tl", "lava_sc.pl", "lava_sc.get", "lava_sc.explain", "lava_sc._adata")


def module_level_imports(path: Path) -> list[str]:
    """Absolute names of the modules ``path`` imports at module level (relative imports resolved)."""
    tree = ast.parse(path.read_text())
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    names = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                names.append(".".join(base + ([node.module] if node.module else [])))
            else:
                names.append(node.module)
    return names


@pytest.mark.parametrize("path", sorted((PACKAGE / "_core").glob("*.py")), ids=lambda p: p.name)
def test_kernels_know_nothing_of_anndata_or_the_tools(path):
    bad = [n for n in module_level_imports(path) if n.startswith(CORE_FORBIDDEN)]
    assert not bad, f"{path.name} imports {bad}; lava_sc/_core must stay free of AnnData and of the tools"


@pytest.mark.parametrize("name", ["_adata.py", "_params.py", "_keys.py", "_validate.py"])
def test_the_access_layer_does_not_import_the_tools_at_module_level(name):
    bad = [
        n
        for n in module_level_imports(PACKAGE / name)
        if n.startswith(("lava_sc.tl", "lava_sc.pl", "lava_sc.get", "lava_sc.explain"))
    ]
    assert not bad, f"{name} imports {bad} at module level"


def test_explainers_live_in_explain_and_stay_importable_from_tl():
    import lava_sc as lv

    for name in lv.explain.__all__:
        assert getattr(lv.tl, name) is getattr(lv.explain, name)
        assert getattr(lv.explain, name).__module__.startswith("lava_sc.explain.")
