"""Files: atomic writes (a reader never sees a half-written file), digests and the one cache-key recipe, CSV
tables, and the runner's console."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pandas as pd

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `target`; rename it into place on success.

    The temporary file lives in the same directory so the final `os.replace`
    is a same-filesystem rename, which POSIX makes atomic.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the mode a plain open() would
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write_text(target: str | os.PathLike, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text)


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def spec_key(spec, length: int = 16) -> str:
    """The cache key of anything cached: a short sha256 of its spec as canonical JSON (sorted keys). A spec names
    every input its cached thing depends on, so a changed input is a new key, never a stale reuse."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:length]


def atomic_write_bytes(target: str | os.PathLike, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


# Set by the runner for its kernels: progress then goes to the runner's terminal or log, not into the notebook.
RUNNER_ENV = "BNLIB_CHECKOUT"


def console():
    """The stream for progress lines: the kernel's real stderr under the runner (the user's terminal), else None."""
    return sys.__stderr__ if os.environ.get(RUNNER_ENV) else None


def console_line(text: str) -> None:
    stream = console()
    if stream is not None:
        print(text, file=stream, flush=True)


# ------------------------------------------------------------------ the CSV format of every committed table
CSV_FLOAT_FORMAT = "%.6g"  # 6 significant digits: past the seed-to-seed noise of every measure, stable in git


def write_csv(data, target: str | os.PathLike) -> Path:
    """`data` (a DataFrame) as `target`, atomically, floats at CSV_FLOAT_FORMAT."""
    target = Path(target)
    with atomic_path(target) as tmp:
        data.to_csv(tmp, index=False, float_format=CSV_FLOAT_FORMAT)
    return target


def read_csv(path: str | os.PathLike, **kwargs):
    """A table written by `write_csv` (pandas' default parser gives each float the nearest double)."""
    return pd.read_csv(path, **kwargs)
