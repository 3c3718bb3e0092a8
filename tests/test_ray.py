"""Ray scale-out on a local two-node cluster (a head and a worker node, 1 CPU each, on this machine).

The grid equals a sequential `cpu_portable` run bit for bit, although each task runs one thread and the
reference two; tasks land on both nodes and return their artifacts without a shared filesystem; a worker
killed mid-training is retried.
"""

import threading
import time

import pandas as pd
import pytest

from bnlib import final_measures, measuring, params
from bnlib.cache import Artifact

import portable_reference

ray = pytest.importorskip("ray", reason="Ray is the optional extra: pip install -e '.[ray]'")
psutil = pytest.importorskip("psutil")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def two_nodes():
    """A head node and one worker node, each a separate raylet with 1 CPU: Ray's documented local test cluster."""
    from ray.cluster_utils import Cluster

    from bnlib.distributed import start_ray

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "object_store_memory": 150 * 2**20})
    cluster.add_node(num_cpus=1, object_store_memory=150 * 2**20)
    cluster.wait_for_nodes()
    start_ray(cluster.address)
    yield cluster
    ray.shutdown()
    cluster.shutdown()


# The portable smoke grid of tests/portable_reference.py: 400 measured samples of two layers, BLAS products large
# enough that a second thread would change their sums
smoke = portable_reference.params


@pytest.fixture(scope="module")
def sequential(portable_grid):
    """The smoke grid trained and measured one model after another with two threads: the reference."""
    P = smoke(portable_grid)
    return P, *grid_numbers(P)


def grid_numbers(P):
    models = measuring.train_all(P, log=lambda s: None)
    assert all(m.from_cache for m in models), "every model should be in the cache already"
    return final_measures.experiment_results(P, models, log=lambda s: None), final_measures.clustering_views(P, models)


def assert_identical(P_ray, P_seq, got, want):
    for g, w in zip(got, want):
        pd.testing.assert_frame_equal(g.reset_index(drop=True), w.reset_index(drop=True), check_exact=True)
    for config in P_seq.train_configs():  # and the weights themselves, bit for bit
        assert Artifact(config, P_ray.cache_dir).weights_sha256() == Artifact(config, P_seq.cache_dir).weights_sha256()


def test_a_two_node_grid_is_bit_identical_to_sequential_portable(two_nodes, sequential, tmp_path):
    from bnlib.distributed import run_grid

    P_seq, *want = sequential
    P = smoke(tmp_path / "ray")
    lines = []
    counts = run_grid(P, log=lines.append)
    assert counts == {"cached": 0, "trained": 4, "failed": 0, "nodes": 2}, lines  # the worker node ran some
    assert any("runs 1 thread(s)" in line for line in lines), lines
    assert_identical(P, P_seq, grid_numbers(P), want)
    again = run_grid(P, log=lines.append)  # a re-run resumes from the cache
    assert again == {"cached": 4, "trained": 0, "failed": 0, "nodes": 0}


def test_a_killed_worker_is_retried_and_nothing_changes(two_nodes, sequential, tmp_path):
    from bnlib.distributed import run_grid

    P_seq, *want = sequential
    P = smoke(tmp_path / "ray-kill", notebooks=["00_models"])  # no views: the retry path is the same, and faster
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
    assert counts["trained"] == 4 and counts["failed"] == 0
    models = measuring.train_all(P, log=lambda s: None)
    assert all(m.from_cache for m in models)
    assert_identical(P, P_seq, [final_measures.experiment_results(P, models, log=lambda s: None)], want[:1])


def test_threads_follow_the_cpus_a_task_asks_for():
    from bnlib.distributed import task_cpus

    assert task_cpus(params.resolve("smoke"), [16.0, 8.0]) == 1  # cnn4: one thread a model
    assert task_cpus(params.resolve("cifar10-cpu"), [16.0, 8.0]) == 16  # VGG-16: the largest node
    assert task_cpus(params.resolve("smoke", ray_cpus=4), [16.0]) == 4
    with pytest.raises(Exception, match="ray_cpus"):
        params.resolve("smoke", ray_cpus=0)


def test_ray_runs_turn_on_portable_numerics_unless_told_not_to(capsys):
    from bnlib.runner import ray_overrides

    assert ray_overrides("smoke", {"device": "cpu"})["cpu_portable"] is True
    assert "cpu_portable on" in capsys.readouterr().err
    assert ray_overrides("smoke", {"device": "cpu", "cpu_portable": False})["cpu_portable"] is False


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
