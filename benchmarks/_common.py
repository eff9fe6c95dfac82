"""Shared helpers of the benchmark harness: paths, the clock, command-line lists, machine description,
worker subprocesses, memory, atomic JSON / text writes, README sections, gene-set matching, formatting."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import json
import os
import platform
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
README = HERE / "README.md"
ENTRY_POINT = "python -m benchmarks.run"
GIB = 1024**3


def now() -> str:
    """The wall-clock time of day, ISO 8601 with the local UTC offset, to the second."""
    return dt.datetime.now().astimezone().isoformat(timespec="seconds")


def command_line(argv: list[str] | None = None) -> str:
    """The command that reproduces this run (``argv``: the harness's arguments, default ``sys.argv[1:]``)."""
    return " ".join([ENTRY_POINT, *(sys.argv[1:] if argv is None else argv)])


def ints(text: str) -> list[int]:
    """``"6000,2e4"`` -> ``[6000, 20000]``."""
    return [int(float(x)) for x in text.split(",") if x.strip()]


def floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def names(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def fill_defaults(args, full: dict, quick: dict) -> None:
    """Options left unset (None) take their value from ``quick`` with ``--quick``, else from ``full``."""
    for name, value in (quick if args.quick else full).items():
        if getattr(args, name, None) is None:
            setattr(args, name, value)


@contextlib.contextmanager
def quiet():
    """Swallow what the wrapped calls print (Hotspot's progress output)."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


# --------------------------------------------------------------------------------------------- memory


def peak_rss_bytes() -> int:
    """Peak resident set size of this process (``ru_maxrss``; kilobytes on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def current_rss_bytes(pid: int | None = None) -> int:
    """Resident set size now (from /proc; 0 where unavailable)."""
    try:
        with open(f"/proc/{pid or os.getpid()}/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def tree_rss_bytes(pid: int) -> int:
    """RSS of a process and all its descendants (psutil when installed, else the process alone)."""
    try:
        import psutil
    except ImportError:
        return current_rss_bytes(pid)
    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


# -------------------------------------------------------------------------------------------- machine


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def total_memory_gib() -> float | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) * 1024 / GIB, 1)
    except OSError:
        pass
    return None


def blas_info() -> dict:
    """numpy's BLAS as numpy.show_config reports it, and every BLAS/OpenMP pool threadpoolctl sees."""
    import numpy as np

    info: dict = {}
    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg.get("Build Dependencies", {}).get("blas", {})
        info["numpy_blas"] = {k: blas.get(k) for k in ("name", "version", "openblas configuration") if k in blas}
        simd = cfg.get("SIMD Extensions", {})
        info["numpy_simd_found"] = simd.get("found")
    except Exception as exc:  # noqa: BLE001 - show_config's layout differs between numpy versions
        info["numpy_blas"] = f"unavailable ({exc})"
    try:
        import scipy.linalg  # noqa: F401 - loads scipy's own BLAS so threadpoolctl lists it too
        from threadpoolctl import threadpool_info

        info["threadpools"] = [
            {k: p.get(k) for k in ("user_api", "internal_api", "version", "num_threads", "architecture", "prefix")}
            for p in threadpool_info()
        ]
    except ImportError:
        info["threadpools"] = "threadpoolctl not installed"
    return info


def package_versions() -> dict:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for name in ("lava_sc", "numpy", "scipy", "numba", "anndata", "scanpy", "scikit-learn", "hotspotsc", "pynndescent"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_revision() -> str | None:
    try:
        rev = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no", "lava_sc"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if rev.returncode != 0:
        return None
    return rev.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def code_revision() -> str | None:
    """``git_revision()``, and for a dirty tree a digest of the *content* of ``lava_sc/`` (tracked and
    untracked files), so runs on different uncommitted states are told apart and runs on the same code
    share a digest even when HEAD moved in between (``930b890+dirty:3f2a9c01be``)."""
    rev = git_revision()
    if not rev or not rev.endswith("+dirty"):
        return rev
    try:
        files = subprocess.run(
            ["git", "-C", str(ROOT), "ls-files", "--cached", "--others", "--exclude-standard", "--", "lava_sc"],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return rev
    h = hashlib.sha1()
    for name in sorted(set(files)):
        h.update(name.encode() + b"\0")
        try:
            h.update((ROOT / name).read_bytes())
        except OSError:  # deleted in the work tree
            h.update(b"<missing>")
    return f"{rev}:{h.hexdigest()[:10]}"


def machine_info() -> dict:
    return {
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gib": total_memory_gib(),
        "platform": platform.platform(),
        "load_average": load_average(),
        "blas": blas_info(),
        "versions": package_versions(),
        "lava_sc_revision": git_revision(),
    }


# -------------------------------------------------------------------------------------------- workers


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path`` and rename it over ``path``: a reader (or a run
    stopped half-way) sees the old file or the new one, never a part."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_json_atomic(path: Path, payload: dict | list) -> None:
    write_text_atomic(path, json.dumps(payload, indent=1, default=_json_default))


def rewrite_section(readme: Path, text: str, start: str, end: str) -> None:
    """Replace the part of ``readme`` between the markers ``start`` and ``end`` with ``text`` (or append
    the marked section when the markers are missing, creating the file with a ``# Benchmarks`` title);
    nothing else in the file changes. Written to a temporary file and renamed over the README."""
    readme = Path(readme)
    old = readme.read_text() if readme.exists() else "# Benchmarks\n"
    block = f"{start}\n{text}{end}"
    if start in old and end in old and old.index(start) < old.index(end):
        new = old[: old.index(start)] + block + old[old.index(end) + len(end) :]
    else:
        new = old.rstrip("\n") + "\n\n" + block + "\n"
    write_text_atomic(readme, new)


def _json_default(obj):
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def run_worker(
    kind: str,
    params: dict,
    *,
    timeout: float | None,
    setup_timeout: float | None = None,
    verbose: bool = True,
) -> dict:
    """Run ``python -m benchmarks._workers kind`` in a fresh process (in the repository root) and return
    its result dictionary.

    The worker rewrites its result file after every stage, so a run that is stopped still says how far
    it got. ``timeout`` limits the *measured* part (from the moment the worker records ``timed_start``);
    ``setup_timeout`` limits everything before it (imports, warm-up, data generation). On a timeout the
    worker's process group is killed and the result gets ``status = "timeout"`` and ``timeout_after_s``
    (seconds of measured work done when it was stopped: a lower bound on the full time).
    """
    with tempfile.TemporaryDirectory(prefix=f"lava_bench_{kind}_") as tmp:
        result_path = Path(tmp) / "result.json"
        log_path = Path(tmp) / "worker.log"
        cmd = [sys.executable, "-m", f"{__package__}._workers", kind, "--params", json.dumps(params)]
        cmd += ["--result", str(result_path)]
        env = dict(os.environ)
        env.setdefault("PYTHONWARNINGS", "ignore")
        started = time.time()
        load_before = load_average()
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env, cwd=ROOT
            )
            status, killed_at, sampled_peak = None, None, 0
            while True:
                try:
                    proc.wait(timeout=0.5)
                    break
                except subprocess.TimeoutExpired:
                    pass
                sampled_peak = max(sampled_peak, tree_rss_bytes(proc.pid))
                partial = _read(result_path)
                now = time.time()
                timed_start = partial.get("timed_start_unix") if partial else None
                if timed_start is not None and timeout is not None and now - timed_start > timeout:
                    status, killed_at = "timeout", now
                elif timed_start is None and setup_timeout is not None and now - started > setup_timeout:
                    status, killed_at = "setup_timeout", now
                if status:
                    _kill_group(proc)
                    break
        result = _read(result_path) or {}
        result.setdefault("params", params)
        result["wall_s"] = round(time.time() - started, 2)
        result["load_average_before"] = load_before
        result["load_average_after"] = load_average()
        result["sampled_peak_rss_gib"] = round(sampled_peak / GIB, 3)
        if status == "timeout":
            result["status"] = "timeout"
            result["timeout_after_s"] = round(killed_at - result["timed_start_unix"], 1)
        elif status == "setup_timeout":
            result["status"] = "setup_timeout"
            result["timeout_after_s"] = round(killed_at - started, 1)
        elif proc.returncode != 0 or result.get("status") != "done":
            result["status"] = "error"
            result["returncode"] = proc.returncode
            result["log_tail"] = log_path.read_text(errors="replace")[-3000:]
        if verbose:
            print(f"  [{kind}] {summarise(result)}", flush=True)
        return result


def _kill_group(proc: subprocess.Popen) -> None:
    """Stop the worker and the processes it started (its own session, so nothing else is touched)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=5)
            return
        except subprocess.TimeoutExpired:
            continue


def _read(path: Path) -> dict | None:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def summarise(result: dict) -> str:
    status = result.get("status")
    p = result.get("params", {})
    label = ", ".join(f"{k}={v}" for k, v in p.items() if k in ("n_cells", "n_genes"))
    if status in ("timeout", "setup_timeout"):
        where = result.get("phase") or result.get("stage")
        return f"{label}: {status} after {result.get('timeout_after_s')} s (in {where!r})"
    if status != "done":
        return f"{label}: {status} (rc={result.get('returncode')}) {result.get('log_tail', '')[-800:]}"
    parts = []
    for name in ("lava", "hotspot"):
        if isinstance(result.get(name), dict) and "timed_s" in result[name]:
            parts.append(f"{name} {result[name]['timed_s']:.1f} s")
    if "timed_s" in result:
        parts.append(f"{result['timed_s']:.1f} s")
    if "ratio" in result:
        parts.append(f"time/floor {result['ratio']:.2f}")
    parts.append(f"peak RSS {result.get('peak_rss_gib', float('nan')):.2f} GiB, wall {result.get('wall_s')} s")
    return f"{label}: " + ", ".join(parts)


# ------------------------------------------------------------------------------------------- matching


def jaccard(a, b) -> float:
    """Jaccard index of two gene sets (genes compared as strings; 0 for two empty sets)."""
    a, b = set(map(str, a)), set(map(str, b))
    return len(a & b) / len(a | b) if a | b else 0.0


def best_match(genes, modules: dict) -> tuple[str | None, float]:
    """The module of ``modules`` (name -> genes) with the largest Jaccard index with ``genes``, and that
    index; the first such module on ties, ``(None, 0.0)`` when no module shares a gene. Not one-to-one:
    several gene sets may pick the same module (one-to-one matching:
    :func:`lava_sc._core.stability.match_modules`)."""
    best, name = 0.0, None
    for m, module_genes in modules.items():
        j = jaccard(genes, module_genes)
        if j > best:
            best, name = j, m
    return name, best


def best_match_jaccard(planted: dict, found: dict) -> dict:
    """For every planted module, the best Jaccard index of its genes with any found module."""
    per_module = {}
    for name, genes in planted.items():
        match, best = best_match(genes, found)
        per_module[name] = {"jaccard": round(best, 3), "match": match}
    values = [v["jaccard"] for v in per_module.values()]
    return {
        "per_module": per_module,
        "mean_jaccard": round(sum(values) / max(len(values), 1), 3),
        "n_recovered": sum(v >= 0.5 for v in values),
        "n_planted": len(values),
        "n_found": len(found),
    }


# ------------------------------------------------------------------------------------------- summaries


def mean(values) -> float | None:
    """Mean of the values that are not None (None when there are none)."""
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


def sd(values) -> float | None:
    """Sample standard deviation of the values that are not None (None for fewer than two)."""
    vals = [v for v in values if v is not None]
    if len(vals) < 2:
        return None
    m = sum(vals) / len(vals)
    return (sum((v - m) ** 2 for v in vals) / (len(vals) - 1)) ** 0.5


def fmt(x, digits=2, spread=None) -> str:
    """``x`` to ``digits`` decimals, ``± spread`` when that is not 0 at those digits, ``n/a`` for None."""
    if x is None:
        return "n/a"
    text = f"{x:.{digits}f}"
    if spread is not None and round(spread, digits) > 0:
        text += f" ± {spread:.{digits}f}"
    return text
