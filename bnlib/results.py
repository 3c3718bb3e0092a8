"""From trained models to tidy numbers, cached next to each model artifact.

`experiment_results(params)` returns one long-form DataFrame with the columns
``dataset, arch, norm, seed, layer, layer_index, metric, value``. Per hidden
layer it holds the sparsity and silhouette metrics; per model (layer
``"model"``, layer_index 0) it holds train and test accuracy and whether the
run diverged. Each model's rows are cached under its artifact directory, keyed
by the capture and metric parameters, so the next notebook reads them back.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .data import DATASET_TITLES, ImageData, load_dataset, stratified_indices
from .hooks import iter_representations
from .io import atomic_path
from .metrics import channel_sparsity, dead_channels, element_sparsity, silhouette_score, spatial_mean_pool
from .params import ExperimentParams
from .paths import resolve_cache_dir
from .train import TrainedModel, artifact_dir, get_or_train, load_train_test, resolve_device

COLUMNS = ["dataset", "arch", "norm", "seed", "layer", "layer_index", "metric", "value"]
LAYER_METRICS = ("channel_sparsity", "element_sparsity", "dead_channels", "silhouette", "silhouette_pooled")
MODEL_METRICS = ("train_accuracy", "test_accuracy", "diverged")
RESULTS_FORMAT = 1

# Wall-clock seconds spent per stage in this process, for the "where did the time go" tables.
TIMINGS: dict[str, float] = defaultdict(float)


def train_all(params: ExperimentParams, log=print) -> list[TrainedModel]:
    """Every (norm, seed) model of the experiment, from the cache or trained now."""
    models, data = [], None
    for config in params.train_configs():
        t0 = time.perf_counter()
        if data is None and not _all_cached(params):
            data = load_train_test(config, params.data_dir)
        trained = get_or_train(config, params.data_dir, params.cache_dir, progress=params.progress or None, data=data)
        TIMINGS["train"] += time.perf_counter() - t0
        where = "cache" if trained.from_cache else f"trained in {time.perf_counter() - t0:.0f}s"
        state = f"DIVERGED at epoch {trained.diverged_epoch}" if trained.diverged else \
            f"train acc {trained.train_accuracy:.4f}, test acc {trained.test_accuracy:.4f}"
        log(f"{trained.name}: {state} ({where})")
        models.append(trained)
    return models


def _all_cached(params: ExperimentParams) -> bool:
    return all((artifact_dir(c, params.cache_dir) / "meta.json").is_file() for c in params.train_configs())


def representation_set(params: ExperimentParams) -> ImageData:
    """The samples whose representations are measured: a fixed stratified draw from the training split.

    The same samples for every model, so BN and no-BN are compared on identical inputs.
    """
    train = load_dataset(params.dataset, "train", params.data_dir)
    return train.subset(stratified_indices(train.labels, params.n_represent, params.represent_seed))


def _measure_key(params: ExperimentParams) -> str:
    keys = ("dataset", "n_represent", "represent_seed", "layers", "capture_dtype", "sparsity_threshold",
            "silhouette_metric", "silhouette_pooled")
    spec = {k: getattr(params, k) for k in keys} | {"format": RESULTS_FORMAT}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def measure_model(trained: TrainedModel, reps: ImageData, params: ExperimentParams) -> pd.DataFrame:
    """The tidy rows of one model: every layer metric, plus accuracies. Read from cache when present."""
    cache = trained.path / "results" / f"metrics-{_measure_key(params)}.csv" if trained.path else None
    if cache is not None and cache.is_file():
        try:
            df = pd.read_csv(cache)
            if list(df.columns) == COLUMNS:
                return df
        except (pd.errors.ParserError, pd.errors.EmptyDataError, OSError):
            pass  # unreadable cache: recompute below
    cfg = trained.config
    rows = []

    def add(layer, index, metric, value):
        rows.append((cfg.dataset, cfg.arch, cfg.norm, cfg.seed, layer, index, metric, float(value)))

    add("model", 0, "train_accuracy", trained.train_accuracy)
    add("model", 0, "test_accuracy", trained.test_accuracy)
    add("model", 0, "diverged", float(trained.diverged))
    device = resolve_device(params.device)
    dtype = torch.float16 if params.capture_dtype == "float16" else torch.float32
    labels = reps.labels
    if not trained.diverged:  # a diverged model's activations are NaN: no metrics to report
        layers = params.hidden_layers()
        for index, (layer, acts) in enumerate(iter_representations(
                trained.model, reps.images, reps.normalise, layers, device=device,
                batch_size=params.capture_batch, dtype=dtype), start=1):
            t0 = time.perf_counter()
            thr = params.sparsity_threshold
            add(layer, index, "channel_sparsity", channel_sparsity(acts, thr).mean().item())
            add(layer, index, "element_sparsity", element_sparsity(acts, thr).mean().item())
            add(layer, index, "dead_channels", dead_channels(acts, thr))
            add(layer, index, "silhouette", silhouette_score(acts, labels, params.silhouette_metric, device=device))
            if params.silhouette_pooled:
                add(layer, index, "silhouette_pooled",
                    silhouette_score(spatial_mean_pool(acts), labels, params.silhouette_metric, device=device))
            TIMINGS["metrics"] += time.perf_counter() - t0
            del acts
    df = pd.DataFrame(rows, columns=COLUMNS)
    if cache is not None:
        with atomic_path(cache) as tmp:
            df.to_csv(tmp, index=False)
    return df


def experiment_results(params: ExperimentParams, models: list[TrainedModel] | None = None,
                       log=print) -> pd.DataFrame:
    """The tidy results of every model in the experiment."""
    models = train_all(params, log=log) if models is None else models
    reps = None
    frames = []
    for trained in models:
        t0 = time.perf_counter()
        cached_before = TIMINGS["metrics"]
        if reps is None:
            reps = representation_set(params)
        frames.append(measure_model(trained, reps, params))
        TIMINGS["capture"] += time.perf_counter() - t0 - (TIMINGS["metrics"] - cached_before)
    return pd.concat(frames, ignore_index=True)


def history_table(models: list[TrainedModel]) -> pd.DataFrame:
    """Per-epoch training curves of every model, long-form."""
    rows = [{"dataset": m.config.dataset, "arch": m.config.arch, "norm": m.config.norm,
             "seed": m.config.seed, **h} for m in models for h in m.history]
    return pd.DataFrame(rows)


# ------------------------------------------------------------------ UMAP
def umap_embedding(trained: TrainedModel, reps: ImageData, layer: str, params: ExperimentParams) -> np.ndarray:
    """2-D UMAP of one layer's representations (first `umap_samples` of the set), cached as .npy."""
    spec = {k: getattr(params, k) for k in ("dataset", "n_represent", "represent_seed", "umap_samples",
                                            "umap_seed", "umap_n_neighbors", "umap_min_dist", "umap_pca_dims")}
    key = hashlib.sha256(json.dumps(spec | {"layer": layer}, sort_keys=True).encode()).hexdigest()[:16]
    cache = trained.path / "results" / f"umap-{layer}-{key}.npy" if trained.path else None
    if cache is not None and cache.is_file():
        try:
            return np.load(cache, allow_pickle=False)
        except (ValueError, OSError):
            pass
    t0 = time.perf_counter()
    sample = reps.subset(stratified_indices(reps.labels, params.umap_samples, params.umap_seed))
    (_, acts), = iter_representations(trained.model, sample.images, sample.normalise, [layer],
                                      device=resolve_device(params.device), batch_size=params.capture_batch)
    X = acts.flatten(1).double().cpu().numpy()
    if 0 < params.umap_pca_dims < min(X.shape):
        from sklearn.decomposition import PCA
        X = PCA(n_components=params.umap_pca_dims, random_state=params.umap_seed).fit_transform(X)
    os.environ.setdefault("NUMBA_CACHE_DIR", str(resolve_cache_dir(params.cache_dir) / "numba"))
    import umap

    reducer = umap.UMAP(n_neighbors=params.umap_n_neighbors, min_dist=params.umap_min_dist,
                        random_state=params.umap_seed, n_jobs=1)
    embedding = reducer.fit_transform(X).astype(np.float32)
    TIMINGS["umap"] += time.perf_counter() - t0
    if cache is not None:
        with atomic_path(cache) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, embedding)
    return embedding


def umap_table(params: ExperimentParams, models: list[TrainedModel]) -> pd.DataFrame:
    """Long-form UMAP coordinates for the chosen seed, every norm and each `umap_layers` layer."""
    reps = representation_set(params)
    sample = stratified_indices(reps.labels, params.umap_samples, params.umap_seed)
    labels = reps.labels[sample].numpy()
    frames = []
    for trained in models:
        if trained.config.seed != params.umap_model_seed or trained.diverged:
            continue
        for layer in params.umap_layers:
            emb = umap_embedding(trained, reps, layer, params)
            frames.append(pd.DataFrame({"dataset": params.dataset, "arch": params.arch, "norm": trained.config.norm,
                                        "seed": trained.config.seed, "layer": layer, "sample": np.arange(len(emb)),
                                        "label": labels, "class": [reps.classes[i] for i in labels],
                                        "umap_x": emb[:, 0], "umap_y": emb[:, 1]}))
    return pd.concat(frames, ignore_index=True)


def timing_table() -> pd.DataFrame:
    return pd.DataFrame(sorted(TIMINGS.items()), columns=["stage", "seconds"])


def dataset_title(params: ExperimentParams) -> str:
    return DATASET_TITLES[params.dataset]


def describe_accuracy(df: pd.DataFrame) -> str:
    """Mean ± std over seeds of train and test accuracy per variant, and any divergence."""
    acc = df[df.layer == "model"].pivot_table(index=["norm", "seed"], columns="metric", values="value")
    lines = []
    for norm, g in acc.groupby("norm"):
        diverged = int(g["diverged"].sum())
        ok = g[g["diverged"] == 0]
        lines.append(f"{norm:>5}: test accuracy {ok.test_accuracy.mean():.4f} ± {ok.test_accuracy.std():.4f}, "
                     f"train accuracy {ok.train_accuracy.mean():.4f} ± {ok.train_accuracy.std():.4f} "
                     f"over {len(ok)} seed(s)" + (f"; {diverged} run(s) diverged" if diverged else ""))
    return "\n".join(lines)


def embedding_silhouettes(embedding: pd.DataFrame) -> pd.DataFrame:
    """Silhouette (classes as clusters) of each 2-D UMAP panel."""
    rows = []
    for (norm, layer), g in embedding.groupby(["norm", "layer"], sort=False):
        xy = torch.from_numpy(g[["umap_x", "umap_y"]].to_numpy())
        rows.append({"norm": norm, "layer": layer, "umap_silhouette": silhouette_score(xy, g["label"].to_numpy())})
    return pd.DataFrame(rows)


def describe_embedding_silhouettes(scores: pd.DataFrame) -> str:
    wide = scores.pivot(index="layer", columns="norm", values="umap_silhouette")
    lines = ["Silhouette of the 2-D UMAP embedding (classes as clusters), one seed:"]
    for layer, r in wide.reindex(list(dict.fromkeys(scores.layer))).iterrows():
        parts = ", ".join(f"{n} {r[n]:.3f}" for n in wide.columns)
        better = "BN" if r.get("batch", float("nan")) > r.get("none", float("nan")) else "no BN"
        lines.append(f"  {layer:>6}: {parts} -> {better} separates the classes more in this picture")
    return "\n".join(lines)
