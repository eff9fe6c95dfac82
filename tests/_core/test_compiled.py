"""The first numba compilation is announced and kept out of the progress estimates (issue 15)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

import lava_sc._utils as lava_utils


def test_a_machine_without_numbas_cache_has_kernels_to_compile(tmp_path):
    code = (
        "import lava_sc.tl, lava_sc._core.compiled as c; n = c.share_to_compile(); "
        "import lava_sc as lv; a = lv.datasets.simulate_planted(n_cells=500, random_state=0); lv.tl.localities(a); "
        "print(n, c.share_to_compile())"
    )
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    before, after = map(float, out.split())
    assert before == 1.0  # nothing cached in an empty cache folder
    assert 0 < after < before  # what tl.localities compiled is done, the other steps' kernels are not


@pytest.fixture
def info_verbosity():
    """scanpy at 'info', where the bars are shown (its settings cannot be monkeypatched)."""
    import scanpy as sc

    previous = sc.settings.verbosity
    sc.settings.verbosity = 2
    yield
    sc.settings.verbosity = previous


def test_the_announcement_and_a_rate_that_starts_after_the_compilation(monkeypatch, info_verbosity):
    logged = []
    monkeypatch.setattr("lava_sc._core.compiled.share_to_compile", lambda: 1.0)
    monkeypatch.setattr(lava_utils.logg, "info", lambda msg, **kw: logged.append(msg))
    with lava_utils.progress(40, "locality correlations") as bar:
        time.sleep(0.6)  # the first step carries the compilation
        bar.update()
        for _ in range(10):
            time.sleep(0.01)
            bar.update()
        rate = bar.format_dict["rate"]
    assert any("compiling LAVA's numerical kernels" in m and "first run" in m for m in logged)
    assert rate is not None and rate > 50, rate  # about 100 steps/s; a plain bar says 20 (11 steps in 0.7 s)


def test_with_most_kernels_cached_nothing_is_announced(monkeypatch, info_verbosity):
    logged = []
    monkeypatch.setattr("lava_sc._core.compiled.share_to_compile", lambda: 0.2)
    monkeypatch.setattr(lava_utils.logg, "info", lambda msg, **kw: logged.append(msg))
    with lava_utils.progress(40, "locality correlations") as bar:
        bar.update()
    assert not logged
    assert type(bar).__name__ == "tqdm"
