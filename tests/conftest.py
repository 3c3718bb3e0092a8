import os
import re
import shutil
from pathlib import Path

import pytest

from bnlib import runner
from bnlib.paths import REPO_ROOT

SHARED_DATA = (REPO_ROOT.parent / "shared" / "data").resolve()
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def threads_env(n: int) -> dict[str, str]:
    """The environment that gives a child process `n` threads in torch, MKL and OpenBLAS alike."""
    return {k: str(n) for k in THREAD_VARS}


def pytest_configure(config):
    """Under pytest-xdist each of N workers runs torch, BLAS and the notebook kernels it starts on cores/N threads:
    two workers of two threads each on two cores spin-wait on one another. A test that needs a thread count sets it
    for its own child process (threads_env); a thread count the user sets wins."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        import torch
        from threadpoolctl import threadpool_limits

        threads = max(1, (os.cpu_count() or 1) // workers)
        for key in THREAD_VARS:
            os.environ.setdefault(key, str(threads))
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
        threadpool_limits(int(os.environ["OPENBLAS_NUM_THREADS"]))


# The session-wide builds, each with the fixtures that read it: the tests of one build run on one worker.
SHARED_GROUPS = {"smoke_run": {"smoke_run", "smoke_cache"}, "portable_grid": {"portable_grid"}}


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own hook, which reads the group into each test's id
def pytest_collection_modifyitems(items):
    """Under pytest-xdist (`make test`: `--dist loadgroup`), every test of one shared build runs on one worker, which
    builds it and then uses it, while the other worker runs the rest instead of waiting on the lock."""
    for item in items:
        for group, fixtures in SHARED_GROUPS.items():
            if fixtures & set(getattr(item, "fixturenames", ())):
                item.add_marker(pytest.mark.xdist_group(group))
                break


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


def built_once(tmp_path_factory, name: str, build) -> Path:
    """`build(folder)` once per test session, shared by every pytest-xdist worker: the first to ask builds it under a
    file lock, the others wait and reuse it. A build that failed half-way is started again, not reused."""
    from filelock import FileLock

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):  # each worker has its own basetemp under the run's common one
        root = root.parent
    folder, done = root / name, root / f"{name}.done"
    with FileLock(str(root / f"{name}.lock")):
        if not done.is_file():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            build(folder)
            done.touch()
    return folder


def _smoke_run(folder: Path) -> None:
    nbdir, cache, out = (folder / sub for sub in ("notebooks", "cache", "figures"))
    nbdir.mkdir()
    for src in runner.NOTEBOOK_DIR.glob("*.py"):  # each notebook's own profile becomes smoke
        text = re.sub(r'^profile = "[a-z0-9-]+"', 'profile = "smoke"', src.read_text(), flags=re.M)
        (nbdir / src.name).write_text(text)
    shutil.copy(runner.NOTEBOOK_DIR / "jupytext.toml", nbdir / "jupytext.toml")
    mp = pytest.MonkeyPatch()
    mp.setattr(runner, "NOTEBOOK_DIR", nbdir)
    try:
        for name in runner.NOTEBOOKS:
            runner.run_notebook(name, "smoke", {"cache_dir": str(cache), "output_dir": str(out)}, log=lambda s: None)
    finally:
        mp.undo()


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """The suite's one trained grid: every notebook on the smoke profile (2 seeds x {BN, no BN} of cnn4), through
    the runner's pairing path, made once for the whole session. Returns (figures, notebooks, cache), to read only:
    a test that changes the cache takes `smoke_cache` (a copy) instead."""
    folder = built_once(tmp_path_factory, "smoke-run", _smoke_run)
    return folder / "figures", folder / "notebooks", folder / "cache"


@pytest.fixture
def smoke_cache(smoke_run, tmp_path) -> Path:
    """A private copy of the smoke run's cache (every model and measured table of the smoke profile), to change."""
    copy = tmp_path / "smoke-cache"
    shutil.copytree(smoke_run[2], copy)
    return copy


@pytest.fixture(scope="session")
def portable_grid(tmp_path_factory) -> Path:
    """The cache of the portable smoke grid (tests/portable_reference.py), trained and measured once for the session
    in a fresh process with two threads: the reference of tests/test_portable.py and tests/test_ray.py."""
    import portable_reference

    return built_once(tmp_path_factory, "portable-grid", portable_reference.build)
