import os
import re
import shutil
from pathlib import Path

import pytest

from bnlib import runner
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


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """Every notebook on the smoke profile, through the runner's pairing path (default profile = smoke)."""
    nbdir = tmp_path_factory.mktemp("notebooks")
    for src in runner.NOTEBOOK_DIR.glob("*.py"):  # each notebook's own profile becomes smoke
        text = re.sub(r'^profile = "[a-z0-9-]+"', 'profile = "smoke"', src.read_text(), flags=re.M)
        (nbdir / src.name).write_text(text)
    shutil.copy(runner.NOTEBOOK_DIR / "jupytext.toml", nbdir / "jupytext.toml")
    cache = tmp_path_factory.mktemp("cache")
    out = tmp_path_factory.mktemp("figures")
    mp = pytest.MonkeyPatch()
    mp.setattr(runner, "NOTEBOOK_DIR", nbdir)
    try:
        for name in runner.NOTEBOOKS:
            runner.run_notebook(name, "smoke", {"cache_dir": str(cache), "output_dir": str(out)}, log=lambda s: None)
    finally:
        mp.undo()
    return out, nbdir, cache
