"""Training dynamics (notebook 06): every measure at each kept snapshot of training, and the snapshots themselves.

A model keeps its weights at the points of training `snapshots` names (bnlib.train); `snapshot_points` lists them
as (optimizer step, epoch), and `snapshot_model` loads one back, re-training the model when a snapshot is damaged.
"""

from __future__ import annotations

import time
import warnings

import pandas as pd
import torch

from . import measures
from .cache import Artifact, model_for
from .checked import CacheWarning
from .data import load_dataset
from .files import console_line
from .hooks import capture_all
from .images import ImageData
from .measures import LayerData
from .measuring import artifact_of, cached_name, numerics, portable_sums
from .params import ExperimentParams
from .samples import probe_set, snapshot_set
from .tables import TABLES
from .train import TrainedModel, evaluate, get_or_train, resolve_device

COLUMNS = list(TABLES["dynamics"].columns)


def dynamics_table(params: ExperimentParams, models: list[TrainedModel]) -> pd.DataFrame:
    """Every usable model at each of its snapshots (and the end of training): test accuracy and every measure
    with `dynamics` set in bnlib.measures, per layer, long-form (COLUMNS). Without `snapshots`, the end
    of training only."""
    reps, probe = snapshot_set(params), probe_set(params)
    test = load_dataset(params.dataset, "test", params.data_dir)
    frames = []
    usable_models = [m for m in models if not m.excluded]
    for i, trained in enumerate(usable_models, start=1):
        t0 = time.perf_counter()
        with portable_sums(params):
            table, measured_now = _model_dynamics(trained, reps, probe, test, params)
        frames.append(table)
        if measured_now:
            console_line(f"  dynamics [{i}/{len(usable_models)}] {trained.name}: {table.step.nunique()} snapshots "
                         f"({time.perf_counter() - t0:.0f}s)")
    # an empty frame in the concat would make every column object-typed, and the CSV would lose its float format
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)


def _model_dynamics(trained: TrainedModel, reps: ImageData, probe: ImageData, test: ImageData,
                    params: ExperimentParams) -> tuple[pd.DataFrame, bool]:
    name = cached_name(params, "dynamics")
    artifact = artifact_of(trained, params)
    cached = artifact.read_table(name, COLUMNS) if artifact is not None else None
    if cached is not None:
        return cached, False
    cfg, device = trained.config, resolve_device(params.device)
    rows = []
    for step, epoch in snapshot_points(trained, params):
        model = snapshot_model(trained, artifact, step, params, device)
        with numerics(params):
            _, accuracy = evaluate(model, test, device, bf16=cfg.bf16, channels_last=cfg.channels_last,
                                   cpu_bf16=cfg.cpu_bf16)
        rows.append((cfg.dataset, cfg.arch, cfg.norm, cfg.seed, epoch, step, "model", 0, "test_accuracy", accuracy))
        with numerics(params):  # every layer in one pass a set: the snapshot set is small enough to hold
            captured = [capture_all(model, d.images, d.normalise, params.hidden_layers(), device=device,
                                    batch_size=params.capture_batch) for d in (reps, probe)]
        for index, layer in enumerate(params.hidden_layers(), start=1):
            acts, test_acts = (c.pop(layer) for c in captured)
            data = LayerData(acts.float(), reps.labels, params, device, test_acts.float(), probe.labels)
            for metric in measures.names(dynamics=True):
                value = measures.MEASURES[metric].compute(data)
                if value is not None:
                    rows.append((cfg.dataset, cfg.arch, cfg.norm, cfg.seed, epoch, step, layer, index, metric,
                                 float(value)))
            del acts, test_acts, data
    df = pd.DataFrame(rows, columns=COLUMNS)
    if artifact is not None:
        artifact.write_table(name, df)
    return df, True


def snapshot_points(trained: TrainedModel, params: ExperimentParams) -> list[tuple[int, float]]:
    """(optimizer step, epoch) of each of the model's snapshots, the end of training last; the end only without
    `snapshots`."""
    per_epoch = params.steps_per_epoch()
    steps = trained.config.snapshot_steps(per_epoch) or [trained.config.epochs * per_epoch]
    return [(step, step / per_epoch) for step in steps]


def snapshot_model(trained: TrainedModel, artifact: Artifact | None, step: int, params: ExperimentParams, device):
    """The model with the weights kept after `step` optimizer steps; the final weights for the last step when no
    snapshots are kept. A missing or damaged snapshot re-trains the model, which re-makes it."""
    cfg = trained.config
    if not cfg.snapshots:
        return trained.model.to(device).eval()
    state = artifact.load_snapshot(step) if artifact is not None else None
    if state is None:
        if artifact is None:
            raise ValueError(f"{trained.name} was trained without a cache: its snapshots were not kept")
        warnings.warn(f"{trained.name}: snapshot after step {step} is missing or damaged; re-training the model "
                      f"to re-make it", CacheWarning, stacklevel=3)
        artifact.meta_path.unlink(missing_ok=True)
        get_or_train(cfg, params.data_dir, params.cache_dir)
        state = artifact.load_snapshot(step)
    model = model_for(cfg)
    model.load_state_dict(state)
    model = model.to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model.eval()
