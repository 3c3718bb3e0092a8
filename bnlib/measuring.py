"""From a profile to its measured tables: `measured(params, *names)`, and what every table's builder shares.

A notebook asks `measured(P, "sparsity", ...)` for the tables it needs (bnlib.tables): measured now (the models
from the cache, training what is missing) and written to figures/<profile>/, or, with `from_csvs`, read back only.
Each model's rows of a table are cached next to its weights under a key of the profile's keys the table depends
on (`table_key`), so the next notebook, or the next run, reads them back.
"""

from __future__ import annotations

import importlib
import time
from contextlib import contextmanager

import pandas as pd
import torch
from threadpoolctl import threadpool_limits

from . import measures
from .cache import Artifact
from .config import PORTABLE_NUMERICS
from .files import console, console_line, spec_key, write_csv
from .hooks import capture_layer
from .params import ExperimentParams
from .tables import CACHES, PER_MODEL, TABLES, check_names, read_measured, written_with
from .train import TrainedModel, artifact_dir, get_or_train, load_train_test, portable_cpu, resolve_device


# ------------------------------------------------------------------ the models
def train_all(params: ExperimentParams, log=print) -> list[TrainedModel]:
    """Every (norm, seed) model of the experiment, from the cache or trained now.

    Under the runner, one progress line per model goes to the terminal (or log) as well.
    """
    models, data = [], None
    configs = params.train_configs()
    for i, config in enumerate(configs, start=1):
        t0 = time.perf_counter()
        if data is None and not _all_cached(params):
            data = load_train_test(config, params.data_dir)
        trained = get_or_train(config, params.data_dir, params.cache_dir, progress=params.progress or None, data=data)
        where = "cache" if trained.from_cache else f"trained in {time.perf_counter() - t0:.0f}s"
        state = f"EXCLUDED, {trained.status}: {trained.reason}" if trained.excluded else \
            f"train acc {trained.train_accuracy:.4f}, test acc {trained.test_accuracy:.4f}"
        log(f"{trained.name}: {state} ({where})")
        if not trained.from_cache:
            console_line(f"  [{i}/{len(configs)}] {trained.name}: {state} ({where})")
        models.append(trained)
    return models


def _all_cached(params: ExperimentParams) -> bool:
    return all((artifact_dir(c, params.cache_dir) / "meta.json").is_file() for c in params.train_configs())


# ------------------------------------------------------------------ cache keys
def table_key(params: ExperimentParams, cache: str, **extra) -> str:
    """The cache key of the cached table `cache` (bnlib.tables.CACHES) under `params`, plus whatever `extra` it
    depends on."""
    spec = CACHES[cache]
    return spec_key({k: getattr(params, k) for k in spec.keys} | {"format": spec.format} | _portable_spec(params)
                    | extra)


def cached_name(params: ExperimentParams, cache: str) -> str:
    """The file name of a model's cached copy of `cache` in its artifact's results/ folder."""
    return f"{cache}-{table_key(params, cache)}.csv"


def cached_table_names(params: ExperimentParams) -> list[str]:
    """The per-model tables every model is measured into (the final measures and the views)."""
    return [cached_name(params, PER_MODEL.name), cached_name(params, "views")]


def _portable_spec(params: ExperimentParams) -> dict:
    """cpu_portable changes the captured numbers: part of a result's key when on (absent when off, as before)."""
    return {"cpu_portable": True, "portable_numerics": PORTABLE_NUMERICS} if params.cpu_portable else {}


# ------------------------------------------------------------------ numerics and threads
def numerics(params: ExperimentParams):
    """The CPU kernels a forward pass runs under: `cpu_portable`'s (bnlib.train.portable_cpu) when it is on."""
    return portable_cpu(params.cpu_portable and resolve_device(params.device).type == "cpu")


@contextmanager
def portable_sums(params: ExperimentParams):
    """With `cpu_portable`, the measures run on one thread (torch's and BLAS's): torch, OpenBLAS and scikit-learn sum
    in another order with another thread count (between 1 and 2 threads the silhouette moved by 1e-10 and a probe
    accuracy by 0.001), and a portable run must give the same numbers on any thread count, e.g. in a one-CPU Ray
    task. Default runs keep every thread."""
    if not params.cpu_portable:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1):
            yield
    finally:
        torch.set_num_threads(threads)


# ------------------------------------------------------------------ one model's artifact
def artifact_of(trained: TrainedModel, params: ExperimentParams) -> Artifact | None:
    """The cache artifact of `trained`, or None for a model trained without a cache."""
    return Artifact(trained.config, params.cache_dir) if trained.path is not None else None


def exclude(trained: TrainedModel, artifact: Artifact | None, reason: str) -> None:
    """Mark the run "diverged" for `reason`, in its artifact when it has one: no statistic uses it from here on."""
    if artifact is not None:
        artifact.mark_unusable(trained, "diverged", reason)
    else:
        trained.status, trained.reason = "diverged", reason


def capture_finite(trained: TrainedModel, artifact: Artifact | None, layer: str, datasets, params: ExperimentParams,
                   device) -> list[torch.Tensor] | None:
    """`layer`'s activations on each of `datasets`, or None after marking the run diverged if any is non-finite."""
    dtype = torch.float16 if params.capture_dtype == "float16" else torch.float32
    with numerics(params):
        acts = [capture_layer(trained.model, d.images, d.normalise, layer, device=device,
                              batch_size=params.capture_batch, dtype=dtype) for d in datasets]
    if not all(bool(torch.isfinite(a).all()) for a in acts):
        exclude(trained, artifact, f"non-finite activations in {layer}")
        return None
    return acts


def per_model_table(params: ExperimentParams, models: list[TrainedModel], table: str, measure_one) -> pd.DataFrame:
    """Every usable model's rows of `table` (bnlib.tables.TABLES, with a cache), read from its artifact or measured
    now by `measure_one(trained, device)` (rows in the table's columns) and written there, one progress line each."""
    spec, columns = TABLES[table].cache, list(TABLES[table].columns)
    name = cached_name(params, spec.name)
    usable_models = [m for m in models if not m.excluded]
    frames = []
    for i, trained in enumerate(usable_models, start=1):
        artifact = artifact_of(trained, params)
        cached = artifact.read_table(name, columns) if artifact is not None else None
        if cached is None:
            t0 = time.perf_counter()
            with portable_sums(params), numerics(params):
                cached = pd.DataFrame(measure_one(trained, resolve_device(params.device)), columns=columns)
            if artifact is not None:
                artifact.write_table(name, cached)
            console_line(f"  {table} [{i}/{len(usable_models)}] {trained.name} ({time.perf_counter() - t0:.0f}s)")
        frames.append(cached)
    # an empty frame in the concat would make every column object-typed, and the CSV would lose its float format
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


# ------------------------------------------------------------------ the measured tables
def measured(params: ExperimentParams, *names: str):
    """The measured tables `names` of the experiment, as read back from their CSVs (one frame, or a tuple).

    Unless `params.from_csvs` names a folder to read them from, they are measured first (the models from the
    cache, or trained now) and written to `params.figures_dir()`. A notebook's numbers are therefore always the
    CSVs' numbers, whichever way it ran: `make refresh` re-renders every committed notebook from them alone.
    """
    check_names(names)
    folder = params.figures_dir()
    if params.from_csvs is not None:
        folder = params.csv_dir()
    else:
        for name, table in measure(params, names).items():
            write_csv(table, folder / f"{name}.csv")
    tables = tuple(read_measured(folder, n) for n in names)
    return tables[0] if len(tables) == 1 else tables


def builder(table: str):
    """The function that builds `table` (its `build`, "module:function" inside bnlib)."""
    module, function = TABLES[table].build.split(":")
    return getattr(importlib.import_module(f"{__package__}.{module}"), function)


def measure(params: ExperimentParams, names) -> dict[str, pd.DataFrame]:
    """{name: table} for `names` and the tables written with each (bnlib.tables.written_with), measured now."""
    log = console_line if console() is not None else print  # under the runner: the terminal, not the notebook
    models = train_all(params, log=log)
    wanted = list(dict.fromkeys(n for name in names for n in written_with(name)))
    out, built = {}, {}  # built: each builder's table, once per run (one per-model table serves four CSVs)
    for name in wanted:
        table = TABLES[name]
        if table.source is not None:
            frame = builder(name)(params, models, table.source, out[table.source])
        else:
            if table.build not in built:
                built[table.build] = builder(name)(params, models)
            frame = built[table.build]
        out[name] = frame[frame.metric.isin(measures.names(table=name))] if table.by_measure else frame
    return out
