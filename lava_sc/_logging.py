"""scanpy's logger (its verbosity, format and timing), imported on first use.

Importing scanpy takes about a second; deferring it keeps ``import lava_sc`` and ``lava-sc --help``
fast. ``info`` and ``warning`` take and return what ``scanpy.logging`` does.
"""

from __future__ import annotations


def info(msg: str, **kwargs):
    from scanpy import logging

    return logging.info(msg, **kwargs)


def warning(msg: str, **kwargs):
    from scanpy import logging

    return logging.warning(msg, **kwargs)
