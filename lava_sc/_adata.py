"""The one access layer between the tools and an AnnData: what they read from it and what a re-run clears.

Tools read ``validate -> fetch (here) -> lava_sc._core -> write``; nothing in ``_core`` sees an AnnData.
"""

from __future__ import annotations

from ._keys import INVALIDATES, Keys


def invalidate(adata, key: str, step: str) -> None:
    """Remove what a new run of ``step`` makes stale under ``key`` (:data:`lava_sc._keys.INVALIDATES`)."""
    rule = INVALIDATES[step]
    keys = Keys(key)
    for name in rule["obsm"]:
        adata.obsm.pop(getattr(keys, f"obsm_{name}"), None)
    if rule["uns"] == ("*",):
        adata.uns[key] = {}
        return
    slot = adata.uns.setdefault(key, {})
    for name in rule["uns"]:
        slot.pop(name, None)
    params = slot.get(Keys.params)
    if params is not None:
        slot[Keys.params] = {stage: p for stage, p in params.items() if stage not in rule["params"]}
