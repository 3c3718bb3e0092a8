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


def _resolve(explicit, env_var: str, default: Path) -> Path:
    if explicit is not None:
        return Path(explicit).expanduser()
    env = os.environ.get(env_var)
    return Path(env).expanduser() if env else default


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """Explicit argument, then $BNLIB_DATA_DIR, then the per-user cache."""
    return _resolve(data_dir, DATA_DIR_ENV, user_cache_root() / "data")


def resolve_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """Explicit argument, then $BNLIB_CACHE_DIR, then the per-user cache."""
    return _resolve(cache_dir, CACHE_DIR_ENV, user_cache_root() / "artifacts")
