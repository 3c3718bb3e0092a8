"""The final models' measures (notebooks 00-04): the per-model table, the clustering views, CKA and UMAP.

Each model's rows are cached next to its weights (bnlib.measuring.table_key), so the next notebook reads them back.
The per-model table holds, per hidden layer, every "layer" measure of bnlib.measures (sparsity, silhouette, kNN), and
per model (layer "model", layer_index 0) its train and test accuracy and whether the run is excluded.
"""

from __future__ import annotations

import io
import os
import time
import warnings

import numpy as np
import pandas as pd
import torch
from sklearn.decomposition import PCA

from . import measures
from . import metrics as M
from .checked import read_checked, write_checked
from .files import console_line
from .hooks import capture_layer
from .images import ImageData
from .measures import LayerData
from .measuring import artifact_of, cached_name, capture_finite, exclude, numerics, portable_sums, table_key, train_all
from .params import ExperimentParams
from .paths import resolve_cache_dir
from .samples import probe_set, representation_set, umap_indices
from .tables import COLUMNS, PER_MODEL, TABLES
from .train import TrainedModel, resolve_device


def _cached_table(trained: TrainedModel, params: ExperimentParams, name: str):
    """(artifact, the verified cached table `name` or None); the artifact is None for an uncached model."""
    artifact = artifact_of(trained, params)
    return artifact, (artifact.read_table(name, list(COLUMNS)) if artifact is not None else None)


def measure_model(trained: TrainedModel, reps: ImageData, params: ExperimentParams) -> pd.DataFrame:
    with portable_sums(params):
        return _measure_model(trained, reps, params)


def _measure_model(trained: TrainedModel, reps: ImageData, params: ExperimentParams) -> pd.DataFrame:
    """The tidy rows of one model: its accuracies, and every "layer" measure (bnlib.measures) of each hidden layer.
    Read from the verified cache when present.

    A run that is not usable (diverged or failed) gets its accuracy rows only.
    A layer whose activations are non-finite makes the run "diverged" on the
    spot, with the layer named as the reason.
    """
    name = cached_name(params, PER_MODEL.name)
    artifact, cached = _cached_table(trained, params, name)
    if cached is not None:
        return cached
    cfg = trained.config
    rows = []

    def add(layer, index, metric, value):
        rows.append((cfg.dataset, cfg.arch, cfg.norm, cfg.seed, layer, index, metric, float(value)))

    device = resolve_device(params.device)
    if not trained.excluded:  # an excluded model's activations mean nothing: no metrics to report
        for index, layer in enumerate(params.hidden_layers(), start=1):
            captured = capture_finite(trained, artifact, layer, (reps,), params, device)
            if captured is None:
                rows.clear()
                break
            (acts,) = captured
            for metric, value in measures.measure_layer("layer", LayerData(acts, reps.labels, params, device)).items():
                add(layer, index, metric, value)
            del acts
    layer_rows, rows = rows, []  # the model's own rows come first, with its status as measuring left it
    add("model", 0, "train_accuracy", trained.train_accuracy)
    add("model", 0, "test_accuracy", trained.test_accuracy)
    add("model", 0, measures.EXCLUDED, trained.excluded)
    df = pd.DataFrame(rows + layer_rows, columns=list(COLUMNS))
    if artifact is not None:
        artifact.write_table(name, df)
    return df


def experiment_results(params: ExperimentParams, models: list[TrainedModel] | None = None,
                       log=print) -> pd.DataFrame:
    """The tidy results of every model in the experiment."""
    models = train_all(params, log=log) if models is None else models
    reps = None
    frames = []
    for trained in models:
        if reps is None:
            reps = representation_set(params)
        frames.append(measure_model(trained, reps, params))
    return pd.concat(frames, ignore_index=True)


TIMING_COLUMNS = ("train_seconds", "seconds", "machine")  # wall clock and where: never in a reproducible table


def history_table(models: list[TrainedModel], timings: bool = False) -> pd.DataFrame:
    """Per-epoch training curves of every model, long-form; with `timings`, the wall-clock seconds instead."""
    keep = (lambda k: k == "epoch" or k in TIMING_COLUMNS) if timings else (lambda k: k not in TIMING_COLUMNS)
    rows = [{"dataset": m.config.dataset, "arch": m.config.arch, "norm": m.config.norm, "seed": m.config.seed,
             "status": m.status, **{k: v for k, v in h.items() if keep(k)}} for m in models for h in m.history]
    return pd.DataFrame(rows)



def training_table(params: ExperimentParams, models: list[TrainedModel]) -> pd.DataFrame:
    """The training curves of every model (training.csv)."""
    return history_table(models)


def training_time_table(params: ExperimentParams, models: list[TrainedModel], source: str, training) -> pd.DataFrame:
    """The wall-clock seconds of every model's epochs, written beside training.csv and never read back."""
    return history_table(models, timings=True)


# ------------------------------------------------------------------ more views of clustering (notebook 04)
def model_views(trained: TrainedModel, reps: ImageData, probe: ImageData, params: ExperimentParams) -> pd.DataFrame:
    with portable_sums(params):
        return _model_views(trained, reps, probe, params)


def _model_views(trained: TrainedModel, reps: ImageData, probe: ImageData, params: ExperimentParams) -> pd.DataFrame:
    """The tidy rows of every "views" measure (bnlib.measures) of one model, cached next to its weights.

    The linear probe sees the full flattened representation when it has at most
    `probe_max_features` features, else the spatial-mean-pooled one; the row
    "probe_features" says which. An excluded model has no rows.
    """
    name = cached_name(params, "views")
    artifact, cached = _cached_table(trained, params, name)
    if cached is not None:
        return cached
    cfg, rows = trained.config, []
    device = resolve_device(params.device)
    if not trained.excluded:
        for index, layer in enumerate(params.hidden_layers(), start=1):
            captured = capture_finite(trained, artifact, layer, (reps, probe), params, device)
            if captured is None:
                rows.clear()
                break
            acts, test_acts = captured
            views = measures.measure_layer("views", LayerData(acts.float(), reps.labels, params, device,
                                                              test_acts.float(), probe.labels))
            rows += [(cfg.dataset, cfg.arch, cfg.norm, cfg.seed, layer, index, k, float(v)) for k, v in views.items()]
            del acts, test_acts
    df = pd.DataFrame(rows, columns=list(COLUMNS))
    if artifact is not None:
        artifact.write_table(name, df)
    return df


def clustering_views(params: ExperimentParams, models: list[TrainedModel]) -> pd.DataFrame:
    """Every view of claim 3 (`measures.names(table="views")`) of every usable model, with each model's accuracy
    and exclusion rows, long-form. The silhouette and kNN rows come from the per-model table, measured once."""
    reps, probe = representation_set(params), probe_set(params)
    order = {name: i for i, name in enumerate(measures.MEASURES)}
    frames = []
    for i, trained in enumerate(models, start=1):
        t0 = time.perf_counter()
        per_model = measure_model(trained, reps, params)
        measured_now = trained.path is None or not (trained.path / "results" / cached_name(params, "views")).is_file()
        views = model_views(trained, reps, probe, params)
        shared = per_model[per_model.metric.isin(measures.names(table="views"))
                           & ((per_model.layer == "model") | per_model.layer.isin(set(views.layer)))]
        # an empty frame (an excluded model has no views) in the concat would make every column object-typed
        both = pd.concat([shared, views], ignore_index=True) if len(views) else shared.reset_index(drop=True)
        frames.append(both.iloc[sorted(range(len(both)), key=lambda r: (both.layer_index.iat[r],
                                                                        order[both.metric.iat[r]]))])
        if measured_now:
            console_line(f"  views [{i}/{len(models)}] {trained.name} ({time.perf_counter() - t0:.0f}s)")
    return pd.concat(frames, ignore_index=True)


def cka_table(params: ExperimentParams, models: list[TrainedModel], a: str = "batch", b: str = "none") -> pd.DataFrame:
    with portable_sums(params):
        return _cka_table(params, models, a, b)


def _cka_table(params: ExperimentParams, models: list[TrainedModel], a: str = "batch", b: str = "none") -> pd.DataFrame:
    """Linear CKA per layer between models: `a` vs `b` of the same seed, and seed vs seed within each variant.

    Columns: layer_index, layer, pair ("a vs b", "a vs a", "b vs b"), seed_1, seed_2, cka.
    Cached as one CSV in the cache folder, keyed by the measuring parameters and
    the models' weight checksums, with a digest record checked on every read. Gram matrices are N x N float32
    (float64 sums).
    """
    usable_models = [m for m in models if not m.excluded and m.config.norm in (a, b)]
    weights = sorted(artifact_of(m, params).weights_sha256() if m.path is not None else m.name for m in usable_models)
    key = table_key(params, "cka", weights=weights, a=a, b=b)
    path = resolve_cache_dir(params.cache_dir) / "cka" / f"cka-{key}.csv"
    cached = read_checked(path)
    if cached is not None:
        return pd.read_csv(io.BytesIO(cached))
    reps = representation_set(params)
    device = resolve_device(params.device)
    rows = []
    for index, layer in enumerate(params.hidden_layers(), start=1):
        t0 = time.perf_counter()
        grams = {}
        for m in usable_models:
            with numerics(params):
                acts = capture_layer(m.model, reps.images, reps.normalise, layer, device=device,
                                     batch_size=params.capture_batch)
            grams[(m.config.norm, m.config.seed)] = M.centered_gram(acts, dtype=torch.float32)
            del acts
        keys = sorted(grams)
        for i, k1 in enumerate(keys):
            for k2 in keys[i + 1:]:
                same_seed, same_norm = k1[1] == k2[1], k1[0] == k2[0]
                if same_norm or same_seed:
                    pair = f"{k1[0]} vs {k2[0]}" if same_norm else f"{a} vs {b}"
                    s1, s2 = (k1[1], k2[1])
                    rows.append({"layer_index": index, "layer": layer, "pair": pair, "seed_1": s1, "seed_2": s2,
                                 "cka": M.cka_from_grams(grams[k1], grams[k2])})
        del grams
        console_line(f"  CKA {layer} ({time.perf_counter() - t0:.0f}s)")
    df = pd.DataFrame(rows, columns=list(TABLES["cka"].columns))
    write_checked(path, df.to_csv(index=False).encode())
    return df




# ------------------------------------------------------------------ UMAP
def umap_embedding(trained: TrainedModel, reps: ImageData, layer: str, params: ExperimentParams) -> np.ndarray | None:
    """2-D UMAP of one layer's representations (`umap_samples` of the set), cached as .npy.

    None when the activations are non-finite: the run is then marked diverged.
    """
    artifact, name = artifact_of(trained, params), f"umap-{layer}-{table_key(params, 'umap', layer=layer)}.npy"
    if artifact is not None:
        cached = artifact.read_array(name)
        if cached is not None:
            return cached
    sample = reps.subset(umap_indices(params, reps))
    with numerics(params):
        acts = capture_layer(trained.model, sample.images, sample.normalise, layer,
                             device=resolve_device(params.device), batch_size=params.capture_batch)
    X = acts.flatten(1).double().cpu().numpy()
    if not np.isfinite(X).all():
        exclude(trained, artifact, f"non-finite activations in {layer}")
        return None
    if 0 < params.umap_pca_dims < min(X.shape):
        X = PCA(n_components=params.umap_pca_dims, random_state=params.umap_seed).fit_transform(X)
    # umap compiles with numba on import, and numba reads its cache folder then: imported here, after setting it
    os.environ.setdefault("NUMBA_CACHE_DIR", str(resolve_cache_dir(params.cache_dir) / "numba"))
    with warnings.catch_warnings():  # umap imports tqdm.auto, which asks for ipywidgets: nothing to act on here
        warnings.filterwarnings("ignore", message="IProgress not found")
        import umap

    reducer = umap.UMAP(n_neighbors=params.umap_n_neighbors, min_dist=params.umap_min_dist,
                        random_state=params.umap_seed, n_jobs=1)
    embedding = reducer.fit_transform(X).astype(np.float32)
    if artifact is not None:
        artifact.write_array(name, embedding)
    return embedding


def umap_table(params: ExperimentParams, models: list[TrainedModel]) -> pd.DataFrame:
    """Long-form UMAP coordinates for the chosen seed, every norm and each `umap_layers` layer."""
    reps = representation_set(params)
    sample = umap_indices(params, reps)
    labels = reps.labels[sample].numpy()
    frames = []
    for trained in models:
        if trained.config.seed != params.umap_model_seed or trained.excluded:
            continue
        for layer in params.umap_layers:
            emb = umap_embedding(trained, reps, layer, params)
            if emb is None:
                frames = [f for f in frames if not (f.norm == trained.config.norm).all()]
                break
            frames.append(pd.DataFrame({"dataset": params.dataset, "arch": params.arch, "norm": trained.config.norm,
                                        "seed": trained.config.seed, "layer": layer, "sample": np.arange(len(emb)),
                                        "label": labels, "class": [reps.classes[i] for i in labels],
                                        "umap_x": emb[:, 0], "umap_y": emb[:, 1]}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(TABLES["umap"].columns))
