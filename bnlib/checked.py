"""Checked files: every cache file is written with a digest record beside it and verified on every read.

A file that fails its check is removed with a CacheWarning, and its caller rebuilds it: nothing damaged is ever
used. The model artifacts (bnlib.cache), the decoded datasets (bnlib.data, bnlib.custom_data) and the tables of
many models (CKA) all go through here.
"""

from __future__ import annotations

import hashlib
import io
import json
import warnings
from pathlib import Path

import torch

from .files import atomic_write_bytes, atomic_write_text


class CacheWarning(UserWarning):
    """A cache file failed its integrity check and is being rebuilt."""


def corrupt(path: Path, why: str, *extra: Path) -> None:
    warnings.warn(f"cache file {path} is damaged ({why}); removed, it will be rebuilt", CacheWarning, stacklevel=3)
    for p in (path, *extra):
        p.unlink(missing_ok=True)


def read_checked(path: Path) -> bytes | None:
    """A cache file that belongs to no single artifact (e.g. a CKA table of many models), verified against the
    digest record `write_checked` left beside it; None, with a CacheWarning and both removed, when they disagree."""
    record = path.with_name(f"{path.name}.sha256")
    if not path.is_file():
        return None
    try:
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != json.loads(record.read_text())["sha256"]:
            raise ValueError("content does not match its recorded sha256")
        return data
    except Exception as exc:
        corrupt(path, str(exc) if not isinstance(exc, FileNotFoundError) else "no digest record", record)
        return None


def write_checked(path: Path, data: bytes) -> None:
    atomic_write_bytes(path, data)
    atomic_write_text(path.with_name(f"{path.name}.sha256"),
                      json.dumps({"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}))


def load_checked_tensors(path: Path) -> dict | None:
    """Tensors saved by `save_checked_tensors` (e.g. a decoded dataset), verified like every cache file; None when
    missing or damaged (then removed, to be rebuilt)."""
    data = read_checked(path)
    return None if data is None else torch.load(io.BytesIO(data), weights_only=True)


def save_checked_tensors(path: Path, tensors: dict) -> None:
    buf = io.BytesIO()
    torch.save(tensors, buf)
    write_checked(path, buf.getvalue())
