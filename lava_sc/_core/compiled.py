"""Whether LAVA's numba kernels still have to be compiled in this process (first run on a machine).

The kernels are compiled with ``cache=True``: the first run on a machine compiles them (tens of
seconds on two cores) and later runs load them from numba's on-disk cache in a second or two. A
progress bar whose first step includes that compilation would predict minutes for a job of
seconds, so :func:`lava_sc._utils.progress` announces the compilation and keeps it out of the ETA.
"""

from __future__ import annotations

import sys

from numba.core.registry import CPUDispatcher


def share_to_compile() -> float:
    """The share of the loaded ``lava_sc._core`` kernels that are neither compiled in this process nor
    in numba's on-disk cache (a stale cache, after an upgrade, counts as none): 1 on a machine's first
    run, near 0 once a run has cached what it uses. Kernels a run never needs (the dense path when X
    is sparse, say) stay uncompiled, so only a majority means a compilation is under way."""
    kernels = [
        kernel
        for name, module in list(sys.modules.items())
        if name.startswith("lava_sc._core.") and module is not None
        for kernel in vars(module).values()
        if isinstance(kernel, CPUDispatcher)
    ]
    if not kernels:
        return 0.0
    return sum(not kernel.signatures and not _on_disk(kernel) for kernel in kernels) / len(kernels)


def _on_disk(kernel: CPUDispatcher) -> bool:
    cache = getattr(kernel, "_cache", None)
    try:
        return bool(cache._cache_file._load_index())  # {} when absent or stale (numba checks the source stamp)
    except Exception:  # numba's private layout changed, or no cache: do not claim a compilation
        return True
