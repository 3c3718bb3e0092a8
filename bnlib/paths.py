"""Where things live: the repo, the data directory and the artifact cache.

Paths are resolved from this package, never from the working directory, so a
notebook behaves the same in JupyterLab (cwd = notebooks/) and under papermill
(cwd = wherever the caller stands).
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PARAMS_DIR = REPO_ROOT / "params"
FIGURES_DIR = REPO_ROOT / "figures"

DATA_DIR_ENV = "BNLIB_DATA_DIR"
CACHE_DIR_ENV = "BNLIB_CACHE_DIR"


def user_cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "bnlib"


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """Explicit argument, then $BNLIB_DATA_DIR, then the per-user cache."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser()
    return user_cache_root() / "data"


def resolve_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """Explicit argument, then $BNLIB_CACHE_DIR, then the per-user cache."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get(CACHE_DIR_ENV)
    if env:
        return Path(env).expanduser()
    return user_cache_root() / "artifacts"
