import os
from pathlib import Path

import pytest

from bnlib.paths import REPO_ROOT

SHARED_DATA = (REPO_ROOT.parent / "shared" / "data").resolve()


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own artifact cache; nothing touches the user's."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("BNLIB_CACHE_DIR", str(cache))
    monkeypatch.setenv("NUMBA_CACHE_DIR", os.environ.get("NUMBA_CACHE_DIR", str(tmp_path / "numba")))
    return cache


@pytest.fixture
def shared_data() -> Path:
    if not (SHARED_DATA / "mnist").is_dir():
        pytest.skip(f"needs the shared datasets at {SHARED_DATA}")
    return SHARED_DATA
