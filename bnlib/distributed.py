"""Train and measure a profile's model grid as Ray tasks: `python -m bnlib.runner --profile P --ray [ADDRESS]`.

Each missing model (one `TrainConfig`) is one Ray task that trains it and
measures it into a private temporary cache on the worker, then returns the
artifact's files (safetensors weights, meta.json, result CSVs with their
checksums) as bytes. The driver writes them into its own cache with the same
atomic writes, and verifies every checksum as it loads them. Workers need no
shared filesystem: the images travel through Ray's object store. The
notebooks then run as usual and find every model in the cache.

Ray runs locally with no setup (no address) or joins a cluster (`auto`,
`ray://host:10001`). A task a worker dies in is retried (`max_retries`); a
task that raises is retried too, and one that still fails is reported without
losing the others. A diverged or failed-to-learn model is a result like any
other.

Threads follow the CPUs a task asks for (`ray_cpus`; "auto" is 1 for cnn4,
whose small convolutions use more cores poorly, and every CPU of the largest
node for VGG-16): torch, OpenMP and BLAS run exactly that many threads, so no
node is oversubscribed. On CPU the runner turns on `cpu_portable` for Ray runs
(ATen convolutions on AVX2, MKL's COMPATIBLE path, OpenBLAS on Haswell), whose bits depend
on neither the thread count nor the CPU: a Ray grid equals a sequential `cpu_portable`
run bit for bit. Turned off, the numbers differ from a sequential run in the
last bits, which training amplifies (README: Reproducibility).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import warnings

import torch
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from .cache import Artifact
from .config import PORTABLE_ENV, TrainConfig
from .custom_data import record, remember
from .final_measures import measure_model, model_views
from .params import ExperimentParams
from .samples import probe_set, representation_set
from .train import get_or_train, load_train_test, resolve_device

INSTALL_HINT = "Ray is an optional extra: pip install -e '.[ray]'  (or: make env EXTRAS=ray)"
MAX_RETRIES = 3  # a killed worker or a raised exception gets this many more tries


def require_ray():
    try:
        import ray
    except ImportError:
        raise SystemExit(f"--ray needs Ray, which is not installed. {INSTALL_HINT}") from None
    return ray


def _train_and_measure(config_json: dict, params_json: dict, data, reps, probe, threads: int,
                       views: bool, dataset_record: dict | None = None) -> tuple[str, dict[str, bytes]]:
    """One Ray task: train `config` into a private cache, measure it; return (its node, its artifact's files)."""
    import ray


    torch.set_num_threads(threads)
    if dataset_record is not None:  # your own data: the images come through Ray, its record with them

        remember(dataset_record)
    config = TrainConfig.model_validate(config_json)
    with tempfile.TemporaryDirectory(prefix="bnlib-ray-") as cache:
        params = ExperimentParams.model_validate(params_json | {"cache_dir": cache, "progress": False})
        with threadpool_limits(threads):  # BLAS and OpenMP pools too, whatever the worker started with
            trained = get_or_train(config, cache_dir=cache, data=data)
            measure_model(trained, reps, params)
            if views:
                model_views(trained, reps, probe, params)
        return ray.get_runtime_context().get_node_id(), Artifact(config, cache).export_files()


def start_ray(address: str | None = None, **kwargs) -> None:
    """`ray.init` without the output a user cannot act on: no dashboard, no metrics agent, errors only."""
    ray = require_ray()
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    # Ray's C++ core logs a "metrics exporter agent" error when no dashboard runs: not the user's to act on.
    # Task failures still reach the driver as Python exceptions.
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    with warnings.catch_warnings():
        # a notice about a future default for GPU visibility; today's (a task without a GPU share sees none) is kept
        warnings.filterwarnings("ignore", message="Tip: In future versions of Ray", category=FutureWarning)
        ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level="ERROR",
                 configure_logging=True, **kwargs)


def task_cpus(params: ExperimentParams, node_cpus: list[float]) -> float:
    """The CPUs one model's task asks for: `ray_cpus`, or for "auto" 1 for cnn4 and a whole node for VGG-16."""
    if params.ray_cpus != "auto":
        return params.ray_cpus
    return 1.0 if params.arch == "cnn4" else float(max(1, int(max(node_cpus, default=1))))


DRIFT_NOTE = ("ray: cpu_portable is off, so each task's numbers depend on its thread count and CPU: expect them to "
              "differ from a sequential run in the last bits, which training amplifies (up to 0.008 in a smoke "
              "model's metrics across thread counts and instruction sets; README: Reproducibility)")


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run_grid(params: ExperimentParams, address: str | None = None, log=_log) -> dict[str, int]:
    """Train and measure every model of `params` that the cache lacks, on Ray. Returns counts by outcome.

    Each task asks Ray for `params.ray_cpus` CPUs and `params.ray_gpus` GPUs (a
    fraction lets several small models share one GPU). `address` None starts a
    local Ray; "auto" or "ray://host:port" joins a running cluster.
    """
    ray = require_ray()


    missing = [c for c in params.train_configs() if not Artifact(c, params.cache_dir).is_complete()]
    counts = {"cached": len(params.train_configs()) - len(missing), "trained": 0, "failed": 0, "nodes": 0}
    nodes: dict[str, int] = {}
    if not missing:
        log(f"ray: all {counts['cached']} models are in the cache; nothing to run")
        return counts
    t0 = time.perf_counter()
    started_here = not ray.is_initialized()
    if started_here:
        start_ray(address)
    try:
        resources = ray.cluster_resources()
        log(f"ray: {len(missing)} models to train on {int(resources.get('CPU', 0))} CPUs, "
            f"{resources.get('GPU', 0):g} GPUs ({address or 'local'}); {counts['cached']} already cached")

        cpus = task_cpus(params, [n["Resources"].get("CPU", 0) for n in ray.nodes() if n.get("Alive")])
        threads = max(1, int(cpus))
        if not params.cpu_portable and resolve_device(params.device).type == "cpu":
            log(DRIFT_NOTE)
        log(f"ray: each task asks for {cpus:g} CPU(s) and {params.ray_gpus:g} GPU(s) and runs {threads} thread(s)")
        env = {k: str(threads) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
        runtime_env = {"env_vars": env | (PORTABLE_ENV if params.cpu_portable else {})}
        task = ray.remote(_train_and_measure).options(num_cpus=cpus, num_gpus=params.ray_gpus,
                                                       max_retries=MAX_RETRIES, retry_exceptions=True,
                                                       runtime_env=runtime_env)
        data = ray.put(load_train_test(missing[0], params.data_dir))
        reps = ray.put(representation_set(params))
        views = "04_clustering_views" in params.notebook_list()
        probe = ray.put(probe_set(params)) if views else None
        params_json = params.model_dump(mode="json")

        dataset_record = record(params.dataset) if params.dataset.startswith("custom-") else None
        pending = {task.remote(c.model_dump(mode="json"), params_json, data, reps, probe, threads, views,
                               dataset_record): c for c in missing}
        # a bar on a terminal; in a log, one line per finished model instead
        bar = tqdm(total=len(missing), desc="models (ray)", unit="model", file=sys.stderr,
                   disable=not sys.stderr.isatty())
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            config = pending.pop(done[0])
            try:
                node, files = ray.get(done[0])
                trained = Artifact(config, params.cache_dir).import_files(files)
                nodes[node] = nodes.get(node, 0) + 1
            except Exception as exc:  # one model's failure must not lose the others'
                counts["failed"] += 1
                log(f"ray: {config.arch}/{config.norm}/seed{config.seed} FAILED after {MAX_RETRIES} retries: {exc}")
            else:
                counts["trained"] += 1
                state = f"EXCLUDED, {trained.status}" if trained.excluded else f"test acc {trained.test_accuracy:.4f}"
                bar.write(f"  {trained.name}: {state}") if not bar.disable else log(f"  {trained.name}: {state}")
            bar.update(1)
        bar.close()
    finally:
        if started_here:
            ray.shutdown()
    log(f"ray: {counts['trained']} trained, {counts['failed']} failed, {counts['cached']} cached "
        f"in {time.perf_counter() - t0:.0f}s, on {len(nodes)} node(s)")
    counts["nodes"] = len(nodes)
    return counts
