"""The model grid on a local Ray cluster (2 CPUs) gives exactly the sequential numbers, even when a worker dies."""

import threading
import time

import pandas as pd
import pytest

from bnlib import params, results
from bnlib.cache import Artifact

ray = pytest.importorskip("ray", reason="Ray is the optional extra: pip install -e '.[ray]'")
psutil = pytest.importorskip("psutil")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local_ray():
    from bnlib.distributed import start_ray

    start_ray(num_cpus=2, object_store_memory=200 * 2**20)
    yield
    ray.shutdown()


def smoke(cache) -> params.ExperimentParams:
    # 600 measured samples: the silhouette's BLAS products are large enough to run multi-threaded
    return params.resolve("smoke", cache_dir=str(cache), n_represent=600,
                          notebooks=["00_models", "04_clustering_views"])


@pytest.fixture(scope="module")
def sequential(tmp_path_factory):
    """The smoke grid trained and measured one model after another in this process: the reference."""
    P = smoke(tmp_path_factory.mktemp("sequential"))
    models = results.train_all(P, log=lambda s: None)
    return P, results.experiment_results(P, models, log=lambda s: None), results.clustering_views(P, models)


def grid_numbers(P):
    models = results.train_all(P, log=lambda s: None)
    assert all(m.from_cache for m in models), "every model should have come back from a Ray task"
    return results.experiment_results(P, models, log=lambda s: None), results.clustering_views(P, models)


def assert_identical(P_ray, P_seq, got, want):
    for g, w in zip(got, want):
        pd.testing.assert_frame_equal(g.reset_index(drop=True), w.reset_index(drop=True), check_exact=True)
    for config in P_seq.train_configs():  # and the weights themselves, bit for bit
        assert Artifact(config, P_ray.cache_dir).weights_sha256() == Artifact(config, P_seq.cache_dir).weights_sha256()


def test_ray_grid_is_bit_identical_to_sequential(local_ray, sequential, tmp_path):
    from bnlib.distributed import run_grid

    P_seq, *want = sequential
    P = smoke(tmp_path / "ray")
    lines = []
    counts = run_grid(P, log=lines.append)
    assert counts == {"cached": 0, "trained": 4, "failed": 0}, lines
    assert_identical(P, P_seq, grid_numbers(P), want)
    assert run_grid(P, log=lines.append) == {"cached": 4, "trained": 0, "failed": 0}  # a re-run resumes from the cache


def test_a_killed_worker_is_retried_and_nothing_changes(local_ray, sequential, tmp_path):
    from bnlib.distributed import run_grid

    P_seq, *want = sequential
    P = smoke(tmp_path / "ray-kill")
    killed = []

    def kill_one_training_worker():
        deadline = time.time() + 120
        while time.time() < deadline and not killed:
            for proc in psutil.process_iter(["cmdline"]):
                if "ray::_train_and_measure" in " ".join(proc.info["cmdline"] or []):
                    proc.kill()  # SIGKILL: the worker dies mid-task, as on a lost node
                    killed.append(proc.pid)
                    return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_one_training_worker)
    killer.start()
    counts = run_grid(P, log=lambda s: None)
    killer.join()
    assert killed, "no training worker was seen to kill"
    assert counts == {"cached": 0, "trained": 4, "failed": 0}
    assert_identical(P, P_seq, grid_numbers(P), want)


def test_ray_missing_stops_with_the_install_command(monkeypatch):
    import builtins

    from bnlib import distributed

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray":
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(SystemExit, match=r"pip install -e '\.\[ray\]'"):
        distributed.require_ray()
