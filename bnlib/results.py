"""From trained models to tidy numbers, cached next to each model artifact.

`experiment_results(params)` returns one long-form DataFrame with the columns
``dataset, arch, norm, seed, layer, layer_index, metric, value``. Per hidden
layer it holds the sparsity and silhouette metrics; per model (layer
``"model"``, layer_index 0) it holds train and test accuracy and whether the
run diverged. Each model's rows are cached under its artifact directory, keyed
by the capture and metric parameters, so the next notebook reads them back.
"""

from __future__ import annotations

import io
import math
import os
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .cache import Artifact, CacheWarning, model_for
from .config import PORTABLE_NUMERICS
from . import measures
from . import metrics as M
from .data import ImageData, dataset_sizes, load_dataset, stratified_indices
from .files import console, console_line, spec_key, write_csv
from .hooks import capture_all, capture_layer
from .measures import LayerData
from .params import ExperimentParams
from .paths import resolve_cache_dir
from .train import (TrainedModel, artifact_dir, evaluate, get_or_train, load_train_test, portable_cpu,
                    resolve_device)

COLUMNS = ["dataset", "arch", "norm", "seed", "layer", "layer_index", "metric", "value"]
# What each cached table depends on: the keys of its spec (bnlib.files.spec_key), and a format that changes when
# the code computing it does. Format 3 of the per-model table adds kNN accuracy, taken in the silhouette's pass.
CACHED_TABLES = {
    "metrics": (3, ("dataset", "n_represent", "represent_seed", "layers", "capture_dtype", "sparsity_threshold",
                    "silhouette_metric", "silhouette_pooled", "knn_k")),
    "views": (2, ("dataset", "n_represent", "represent_seed", "layers", "capture_dtype", "probe_C",
                  "probe_test_samples", "probe_max_features")),
    "umap": (1, ("dataset", "n_represent", "represent_seed", "umap_samples", "umap_seed", "umap_n_neighbors",
                 "umap_min_dist", "umap_pca_dims")),
    "cka": (1, ("dataset", "n_represent", "represent_seed", "layers")),
    "dynamics": (2, ("dataset", "n_represent", "snapshot_represent", "represent_seed", "layers", "capture_dtype",
                     "sparsity_threshold", "silhouette_metric", "silhouette_pooled", "knn_k", "probe_C",
                     "probe_test_samples", "probe_max_features")),
    "trees": (1, ("dataset", "n_represent", "represent_seed", "layers", "probe_test_samples", "tree_code_pool",
                  "tree_max_depth")),
    "translation": (1, ("dataset", "represent_seed", "layers", "shift_images", "shift_max", "shift_step",
                        "shift_fill")),
    "margins": (1, ("dataset", "n_represent", "represent_seed", "layers", "margin_samples", "margin_pca_dims",
                    "deepfool_steps", "deepfool_overshoot")),
    "fragmentation": (2, ("dataset", "n_represent", "represent_seed", "layers", "probe_test_samples",
                          "fragment_resolution", "fragment_triplets", "fragment_layers")),
    "fragment_dynamics": (1, ("dataset", "n_represent", "represent_seed", "probe_test_samples",
                              "fragment_resolution", "fragment_triplets", "fragment_snapshot_triplets")),
}



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


def representation_set(params: ExperimentParams) -> ImageData:
    """The samples whose representations are measured: a fixed stratified draw from the training split.

    The same samples for every model, so BN and no-BN are compared on identical inputs.
    """
    train = load_dataset(params.dataset, "train", params.data_dir)
    return train.subset(stratified_indices(train.labels, params.n_represent, params.represent_seed))


def table_key(params: ExperimentParams, table: str, **extra) -> str:
    """The cache key of `table` (CACHED_TABLES) under `params`, plus whatever `extra` it depends on."""
    version, keys = CACHED_TABLES[table]
    return spec_key({k: getattr(params, k) for k in keys} | {"format": version} | _portable_spec(params) | extra)


def cached_table_names(params: ExperimentParams) -> list[str]:
    """The per-model tables a profile measures and caches in each artifact's results/ folder."""
    return [f"{table}-{table_key(params, table)}.csv" for table in ("metrics", "views")]


def _portable_spec(params: ExperimentParams) -> dict:
    """cpu_portable changes the captured numbers: part of a result's key when on (absent when off, as before)."""
    return {"cpu_portable": True, "portable_numerics": PORTABLE_NUMERICS} if params.cpu_portable else {}


def _numerics(params: ExperimentParams):
    return portable_cpu(params.cpu_portable and resolve_device(params.device).type == "cpu")


def _artifact(trained: TrainedModel, params: ExperimentParams) -> Artifact | None:
    return Artifact(trained.config, params.cache_dir) if trained.path is not None else None


def _cached_table(trained: TrainedModel, params: ExperimentParams, name: str):
    """(artifact, the verified cached table `name` or None); the artifact is None for an uncached model."""
    artifact = _artifact(trained, params)
    return artifact, (artifact.read_table(name, COLUMNS) if artifact is not None else None)


def _capture_finite(trained: TrainedModel, artifact: Artifact | None, layer: str, datasets, params: ExperimentParams,
                    device) -> list[torch.Tensor] | None:
    """`layer`'s activations on each of `datasets`, or None after marking the run diverged if any is non-finite."""
    dtype = torch.float16 if params.capture_dtype == "float16" else torch.float32
    with _numerics(params):
        acts = [capture_layer(trained.model, d.images, d.normalise, layer, device=device,
                              batch_size=params.capture_batch, dtype=dtype) for d in datasets]
    if not all(bool(torch.isfinite(a).all()) for a in acts):
        _exclude(trained, artifact, f"non-finite activations in {layer}")
        return None
    return acts


@contextmanager
def _portable_sums(params: ExperimentParams):
    """With `cpu_portable`, the measures run on one thread (torch's and BLAS's): torch, OpenBLAS and scikit-learn sum
    in another order with another thread count (between 1 and 2 threads the silhouette moved by 1e-10 and a probe
    accuracy by 0.001), and a portable run must give the same numbers on any thread count, e.g. in a one-CPU Ray
    task. Default runs keep every thread."""
    if not params.cpu_portable:
        yield
        return
    from threadpoolctl import threadpool_limits

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1):
            yield
    finally:
        torch.set_num_threads(threads)


def measure_model(trained: TrainedModel, reps: ImageData, params: ExperimentParams) -> pd.DataFrame:
    with _portable_sums(params):
        return _measure_model(trained, reps, params)


def _measure_model(trained: TrainedModel, reps: ImageData, params: ExperimentParams) -> pd.DataFrame:
    """The tidy rows of one model: its accuracies, and every "layer" measure (bnlib.measures) of each hidden layer.
    Read from the verified cache when present.

    A run that is not usable (diverged or failed) gets its accuracy rows only.
    A layer whose activations are non-finite makes the run "diverged" on the
    spot, with the layer named as the reason.
    """
    name = cached_table_names(params)[0]
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
            captured = _capture_finite(trained, artifact, layer, (reps,), params, device)
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
    df = pd.DataFrame(rows + layer_rows, columns=COLUMNS)
    if artifact is not None:
        artifact.write_table(name, df)
    return df


def _exclude(trained: TrainedModel, artifact: Artifact | None, reason: str) -> None:
    if artifact is not None:
        artifact.mark_unusable(trained, "diverged", reason)
    else:
        trained.status, trained.reason = "diverged", reason


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


# ------------------------------------------------------------------ the measured tables of a profile
# Measuring (training, capture, the measures) ends in these tables, one CSV each in figures/<profile>/; every
# notebook's analysis, figure and verdict starts from them. A notebook asks `measured(P, ...)` for what it needs:
# measured now (from the model cache, training what is missing) and written, or with `from_csvs` read back only.
MEASURED_TABLES = {
    "accuracy": "per model: train and test accuracy, and whether the run is excluded (diverged = 1)",
    "training": "per model and epoch: the training curves (training_time.csv beside it: wall clock, not compared)",
    "sparsity": "per model and layer: channel and element sparsity, dead channels",
    "silhouette": "per model and layer: the silhouette, full and spatial-mean-pooled",
    "ablation": "per model and layer: the measures the norm ablation compares, and the exclusion flag",
    "views": "per model and layer: every clustering view (notebook 04), with the per-model rows",
    "cka": "per layer and pair of models: linear CKA",
    "umap": "per sample of one seed: the 2-D UMAP coordinates of each norm and layer",
    "dynamics": "per model, snapshot and layer: test accuracy and the measures along training (notebook 06)",
    "trees": "per model, layer and depth: test fidelity and accuracy of the decision tree's prefix (notebook 07)",
    "tree_summary": "per model and layer: the tree measures at the depth budget, read off trees (notebook 07)",
    "translation": "per model, layer and shift: mean cosine similarity to the unshifted image, and the prediction "
                   "agreement (notebook 08)",
    "invariance": "per model and layer: the translation maps' means over every shift but (0, 0) (notebook 08)",
    "margins": "per model and layer: quartiles and mean of the margins, hidden (raw, normalised) and input (DeepFool, "
               "full and in the top principal directions) (notebook 09)",
    "margin_summary": "per model and layer: the median margins the comparisons read (notebook 09)",
    "fragmentation": "per model, space and triplet: the class regions on the plane through the triplet (notebook 10)",
    "fragmentation_summary": "per model and space: mean regions over all, within-class and across-class triplets "
                             "(notebook 10)",
    "planes": "the example planes of notebook 10: the class at every grid point, for one BN and one no-BN model",
    "fragmentation_dynamics": "per model, snapshot and triplet: the class regions of an input-space plane along "
                              "training, on the first `fragment_snapshot_triplets` triplets of each kind (notebook 11)",
}


def read_measured(folder, name: str) -> pd.DataFrame:
    """The measured table `name` from `folder`/<name>.csv, or an error that says how to make it."""
    from .files import read_csv

    if name not in MEASURED_TABLES:
        raise KeyError(f"no measured table {name!r}; there are: {', '.join(MEASURED_TABLES)}")
    path = Path(folder) / f"{name}.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: measure it with `make figures PROFILE=<profile>` (from_csvs "
                                f"reads a folder a measuring run has written)")
    return read_csv(path)


def long_form(*frames: pd.DataFrame) -> pd.DataFrame:
    """Measured long-form tables as one: views.csv repeats the accuracy and silhouette rows, kept once."""
    return pd.concat(frames, ignore_index=True).drop_duplicates(
        subset=["dataset", "arch", "norm", "seed", "layer", "metric"], keep="first", ignore_index=True)


def measured(params: ExperimentParams, *names: str):
    """The measured tables `names` of the experiment, as read back from their CSVs (one frame, or a tuple).

    Unless `params.from_csvs` names a folder to read them from, they are measured first (the models from the
    cache, or trained now) and written to `params.figures_dir()`. A notebook's numbers are therefore always the
    CSVs' numbers, whichever way it ran: `make refresh` re-renders every committed notebook from them alone.
    """
    unknown = [n for n in names if n not in MEASURED_TABLES]
    if unknown:
        raise KeyError(f"no measured table {unknown}; there are: {', '.join(MEASURED_TABLES)}")
    folder = params.figures_dir()
    if params.from_csvs is not None:
        folder = params.csv_dir()
    else:
        for name, table in _measure(params, names).items():
            write_csv(table, folder / f"{name}.csv")
    tables = tuple(read_measured(folder, n) for n in names)
    return tables[0] if len(tables) == 1 else tables


def _measure(params: ExperimentParams, names) -> dict[str, pd.DataFrame]:
    log = console_line if console() is not None else print  # under the runner: the terminal, not the notebook
    models = train_all(params, log=log)
    out, per_model = {}, None
    if {"accuracy", "sparsity", "silhouette", "ablation"} & set(names):
        per_model = experiment_results(params, models)
    for name in names:
        if name in ("accuracy", "sparsity", "silhouette", "ablation"):  # which measures: bnlib.measures
            out[name] = per_model[per_model.metric.isin(measures.names(table=name))]
        elif name == "training":
            out[name] = history_table(models)
            out["training_time"] = history_table(models, timings=True)  # written, never read back: wall clock
        elif name == "views":
            out[name] = clustering_views(params, models)
        elif name == "cka":
            out[name] = cka_table(params, models)
        elif name == "umap":
            out[name] = umap_table(params, models)
        elif name == "dynamics":
            out[name] = dynamics_table(params, models)
        elif name in ("trees", "tree_summary") and "trees" not in out:  # one measuring run makes both tables
            out["trees"] = tree_curves(params, models)
            out["tree_summary"] = lens_summary("trees", out["trees"], params)
        elif name in ("translation", "invariance") and "invariance" not in out:
            out["translation"] = translation_table(params, models)
            out["invariance"] = lens_summary("translation", out["translation"], params)
        elif name in ("margins", "margin_summary") and "margin_summary" not in out:
            out["margins"] = margin_table(params, models)
            out["margin_summary"] = lens_summary("margins", out["margins"], params)
        elif name in ("fragmentation", "fragmentation_summary") and "fragmentation_summary" not in out:
            out["fragmentation"] = fragmentation_table(params, models)
            out["fragmentation_summary"] = lens_summary("fragmentation", out["fragmentation"], params)
        elif name == "fragmentation_dynamics":
            out[name] = fragmentation_dynamics_table(params, models)
        elif name == "planes":
            out[name] = plane_table(params, models)
    return out


# ------------------------------------------------------------------ more views of clustering (notebook 04)
def probe_set(params: ExperimentParams) -> ImageData:
    """Held-out test images whose representations score the linear probe: a fixed stratified draw."""
    test = load_dataset(params.dataset, "test", params.data_dir)
    return test.subset(stratified_indices(test.labels, params.probe_test_samples, params.represent_seed))


def model_views(trained: TrainedModel, reps: ImageData, probe: ImageData, params: ExperimentParams) -> pd.DataFrame:
    with _portable_sums(params):
        return _model_views(trained, reps, probe, params)


def _model_views(trained: TrainedModel, reps: ImageData, probe: ImageData, params: ExperimentParams) -> pd.DataFrame:
    """The tidy rows of every "views" measure (bnlib.measures) of one model, cached next to its weights.

    The linear probe sees the full flattened representation when it has at most
    `probe_max_features` features, else the spatial-mean-pooled one; the row
    "probe_features" says which. An excluded model has no rows.
    """
    name = cached_table_names(params)[1]
    artifact, cached = _cached_table(trained, params, name)
    if cached is not None:
        return cached
    cfg, rows = trained.config, []
    device = resolve_device(params.device)
    if not trained.excluded:
        for index, layer in enumerate(params.hidden_layers(), start=1):
            captured = _capture_finite(trained, artifact, layer, (reps, probe), params, device)
            if captured is None:
                rows.clear()
                break
            acts, test_acts = captured
            views = measures.measure_layer("views", LayerData(acts.float(), reps.labels, params, device,
                                                              test_acts.float(), probe.labels))
            rows += [(cfg.dataset, cfg.arch, cfg.norm, cfg.seed, layer, index, k, float(v)) for k, v in views.items()]
            del acts, test_acts
    df = pd.DataFrame(rows, columns=COLUMNS)
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
        measured_now = trained.path is None or not (trained.path / "results" / cached_table_names(params)[1]).is_file()
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
    with _portable_sums(params):
        return _cka_table(params, models, a, b)


def _cka_table(params: ExperimentParams, models: list[TrainedModel], a: str = "batch", b: str = "none") -> pd.DataFrame:
    """Linear CKA per layer between models: `a` vs `b` of the same seed, and seed vs seed within each variant.

    Columns: layer_index, layer, pair ("a vs b", "a vs a", "b vs b"), seed_1, seed_2, cka.
    Cached as one CSV in the cache folder, keyed by the measuring parameters and
    the models' weight checksums, with a digest record checked on every read. Gram matrices are N x N float32
    (float64 sums).
    """
    from .cache import read_checked, write_checked

    usable_models = [m for m in models if not m.excluded and m.config.norm in (a, b)]
    weights = sorted(_artifact(m, params).weights_sha256() if m.path is not None else m.name for m in usable_models)
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
            with _numerics(params):
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
    df = pd.DataFrame(rows, columns=["layer_index", "layer", "pair", "seed_1", "seed_2", "cka"])
    write_checked(path, df.to_csv(index=False).encode())
    return df


# ------------------------------------------------------------------ UMAP
def umap_embedding(trained: TrainedModel, reps: ImageData, layer: str, params: ExperimentParams) -> np.ndarray | None:
    """2-D UMAP of one layer's representations (`umap_samples` of the set), cached as .npy.

    None when the activations are non-finite: the run is then marked diverged.
    """
    artifact, name = _artifact(trained, params), f"umap-{layer}-{table_key(params, 'umap', layer=layer)}.npy"
    if artifact is not None:
        cached = artifact.read_array(name)
        if cached is not None:
            return cached
    sample = reps.subset(stratified_indices(reps.labels, params.umap_samples, params.umap_seed))
    with _numerics(params):
        acts = capture_layer(trained.model, sample.images, sample.normalise, layer,
                             device=resolve_device(params.device), batch_size=params.capture_batch)
    X = acts.flatten(1).double().cpu().numpy()
    if not np.isfinite(X).all():
        _exclude(trained, artifact, f"non-finite activations in {layer}")
        return None
    if 0 < params.umap_pca_dims < min(X.shape):
        from sklearn.decomposition import PCA
        X = PCA(n_components=params.umap_pca_dims, random_state=params.umap_seed).fit_transform(X)
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
    sample = stratified_indices(reps.labels, params.umap_samples, params.umap_seed)
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
    columns = ["dataset", "arch", "norm", "seed", "layer", "sample", "label", "class", "umap_x", "umap_y"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


# ------------------------------------------------------------------ training dynamics (notebook 06)
DYNAMICS_COLUMNS = ["dataset", "arch", "norm", "seed", "epoch", "step", "layer", "layer_index", "metric", "value"]


def snapshot_set(params: ExperimentParams) -> ImageData:
    """The samples measured at each snapshot: a stratified draw of `snapshot_represent` from the measured set."""
    reps = representation_set(params)
    n = params.snapshot_represent or params.n_represent
    return reps if n >= len(reps.labels) else reps.subset(stratified_indices(reps.labels, n, params.represent_seed))


def steps_per_epoch(params: ExperimentParams) -> int:
    n_train = dataset_sizes(params.dataset)[0]
    return math.ceil(min(params.train_subset or n_train, n_train) / params.batch_size)


def dynamics_table(params: ExperimentParams, models: list[TrainedModel]) -> pd.DataFrame:
    """Every usable model at each of its snapshots (and the end of training): test accuracy and every measure
    with `dynamics` set in bnlib.measures, per layer, long-form (DYNAMICS_COLUMNS). Without `snapshots`, the end
    of training only."""
    reps, probe = snapshot_set(params), probe_set(params)
    test = load_dataset(params.dataset, "test", params.data_dir)
    frames = []
    usable_models = [m for m in models if not m.excluded]
    for i, trained in enumerate(usable_models, start=1):
        t0 = time.perf_counter()
        with _portable_sums(params):
            table, measured_now = _model_dynamics(trained, reps, probe, test, params)
        frames.append(table)
        if measured_now:
            console_line(f"  dynamics [{i}/{len(usable_models)}] {trained.name}: {table.step.nunique()} snapshots "
                         f"({time.perf_counter() - t0:.0f}s)")
    # an empty frame in the concat would make every column object-typed, and the CSV would lose its float format
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=DYNAMICS_COLUMNS)


def _model_dynamics(trained: TrainedModel, reps: ImageData, probe: ImageData, test: ImageData,
                    params: ExperimentParams) -> tuple[pd.DataFrame, bool]:
    name = f"dynamics-{table_key(params, 'dynamics')}.csv"
    artifact = _artifact(trained, params)
    cached = artifact.read_table(name, DYNAMICS_COLUMNS) if artifact is not None else None
    if cached is not None:
        return cached, False
    cfg, device = trained.config, resolve_device(params.device)
    rows = []
    for step, epoch in snapshot_points(trained, params):
        model = _snapshot_model(trained, artifact, step, params, device)
        with _numerics(params):
            _, accuracy = evaluate(model, test, device, bf16=cfg.bf16, channels_last=cfg.channels_last,
                                   cpu_bf16=cfg.cpu_bf16)
        rows.append((cfg.dataset, cfg.arch, cfg.norm, cfg.seed, epoch, step, "model", 0, "test_accuracy", accuracy))
        with _numerics(params):  # every layer in one pass a set: the snapshot set is small enough to hold
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
    df = pd.DataFrame(rows, columns=DYNAMICS_COLUMNS)
    if artifact is not None:
        artifact.write_table(name, df)
    return df, True


def snapshot_points(trained: TrainedModel, params: ExperimentParams) -> list[tuple[int, float]]:
    """(optimizer step, epoch) of each of the model's snapshots, the end of training last; the end only without
    `snapshots`."""
    per_epoch = steps_per_epoch(params)
    steps = trained.config.snapshot_steps(per_epoch) or [trained.config.epochs * per_epoch]
    return [(step, step / per_epoch) for step in steps]


def _snapshot_model(trained: TrainedModel, artifact: Artifact | None, step: int, params: ExperimentParams, device):
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


# ------------------------------------------------------------------ the lenses of notebooks 07 and 08
TREE_COLUMNS = ["dataset", "arch", "norm", "seed", "layer", "layer_index", "depth", "fidelity", "accuracy", "leaves",
                "codes"]
TRANSLATION_COLUMNS = ["dataset", "arch", "norm", "seed", "layer", "layer_index", "dx", "dy", "metric", "value"]


def _lens_table(params: ExperimentParams, models: list[TrainedModel], table: str, columns: list[str],
                measure_one) -> pd.DataFrame:
    """Every usable model's rows of the lens `table` (CACHED_TABLES), read from its artifact or measured now by
    `measure_one(trained, device)` and written there."""
    name = f"{table}-{table_key(params, table)}.csv"
    usable_models = [m for m in models if not m.excluded]
    frames = []
    for i, trained in enumerate(usable_models, start=1):
        artifact = _artifact(trained, params)
        cached = artifact.read_table(name, columns) if artifact is not None else None
        if cached is None:
            t0 = time.perf_counter()
            with _portable_sums(params), _numerics(params):
                cached = pd.DataFrame(measure_one(trained, resolve_device(params.device)), columns=columns)
            if artifact is not None:
                artifact.write_table(name, cached)
            console_line(f"  {table} [{i}/{len(usable_models)}] {trained.name} ({time.perf_counter() - t0:.0f}s)")
        frames.append(cached)
    # an empty frame in the concat would make every column object-typed, and the CSV would lose its float format
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def lens_summary(stage: str, table: pd.DataFrame, params: ExperimentParams) -> pd.DataFrame:
    """Every measure of `stage` ("trees" or "translation", bnlib.measures) per model and layer of a lens table,
    long-form (COLUMNS): what the comparisons read."""
    rows = []
    keys = ["dataset", "arch", "norm", "seed", "layer_index", "layer"]
    for (dataset, arch, norm, seed, index, layer), g in table.groupby(keys, sort=False):
        for metric, value in measures.measure_layer(stage, measures.LensRows(g, params)).items():
            rows.append((dataset, arch, norm, seed, layer, index, metric, value))
    return pd.DataFrame(rows, columns=COLUMNS).astype({"value": float})


def tree_curves(params: ExperimentParams, models: list[TrainedModel]) -> pd.DataFrame:
    """Per usable model, layer and depth 1..tree_max_depth: the test fidelity (to the network's prediction) and
    accuracy (to the label) of the depth-d prefix of a decision tree over the layer's binary codes (bnlib.lenses),
    its leaves, and the number of distinct codes among the measured samples."""
    from .lenses import forward_layers, pooled_codes, tree_curve

    reps, probe = representation_set(params), probe_set(params)
    layers = params.hidden_layers()

    def measure_one(trained: TrainedModel, device):
        cfg, rows = trained.config, []
        codes, predicted = {}, {}
        for part, data in (("train", reps), ("test", probe)):
            codes[part], predicted[part] = forward_layers(
                trained.model, data.images, data.normalise, layers, device=device, batch_size=params.capture_batch,
                transform=lambda t: pooled_codes(t, params.tree_code_pool))
        for index, layer in enumerate(layers, start=1):
            train, test = codes["train"][layer].numpy(), codes["test"][layer].numpy()
            fidelity = tree_curve(train, predicted["train"].numpy(), test, predicted["test"].numpy(),
                                  params.tree_max_depth, seed=params.represent_seed)
            accuracy = tree_curve(train, reps.labels.numpy(), test, probe.labels.numpy(), params.tree_max_depth,
                                  seed=params.represent_seed)
            distinct = len(np.unique(np.packbits(train, axis=1), axis=0))
            rows += [(cfg.dataset, cfg.arch, cfg.norm, cfg.seed, layer, index, int(d), f, a, int(n), distinct)
                     for d, f, a, n in zip(fidelity["depth"], fidelity["score"], accuracy["score"],
                                           fidelity["leaves"])]
        return rows

    return _lens_table(params, models, "trees", TREE_COLUMNS, measure_one)


def shift_set(params: ExperimentParams) -> ImageData:
    """The test images of the translation maps: a fixed stratified draw of `shift_images`."""
    test = load_dataset(params.dataset, "test", params.data_dir)
    return test.subset(stratified_indices(test.labels, params.shift_images, params.represent_seed))


def translation_table(params: ExperimentParams, models: list[TrainedModel]) -> pd.DataFrame:
    """Per usable model, layer and shift (dx, dy) of the grid: the mean cosine similarity between the
    representations of each image and of its shifted copy, full and spatial-mean pooled, and at the output
    (layer "output") the fraction of unchanged predictions (bnlib.lenses)."""
    from .lenses import OUTPUT, forward_layers, shift_grid, translation_maps

    images, layers = shift_set(params), params.hidden_layers()
    shifts = shift_grid(params.shift_radius(), params.shift_step)
    index_of = {layer: i for i, layer in enumerate(layers + [OUTPUT], start=1)}

    def measure_one(trained: TrainedModel, device):
        cfg = trained.config

        def represent(batch):
            return forward_layers(trained.model, batch, images.normalise, layers, device=device,
                                  batch_size=params.capture_batch)

        maps = translation_maps(represent, images.images, shifts, params.shift_fill, params.capture_batch)
        return [(cfg.dataset, cfg.arch, cfg.norm, cfg.seed, layer, index_of[layer], dx, dy, metric, float(v))
                for (layer, metric), values in sorted(maps.items(), key=lambda kv: index_of[kv[0][0]])
                for (dx, dy), v in zip(shifts, values)]

    return _lens_table(params, models, "translation", TRANSLATION_COLUMNS, measure_one)


# ------------------------------------------------------------------ the lenses of notebooks 09 and 10
MARGIN_COLUMNS = ["dataset", "arch", "norm", "seed", "layer", "layer_index", "kind", "samples", "unflipped", "q25",
                  "median", "q75", "mean"]
FRAGMENT_COLUMNS = ["dataset", "arch", "norm", "seed", "layer", "layer_index", "source", "kind", "triplet",
                    "regions"]
PLANE_COLUMNS = ["dataset", "arch", "norm", "seed", "layer", "layer_index", "x", "y", "label", "anchor"]
TRIPLET_KINDS = [(source, kind) for source in ("train", "test") for kind in ("within", "across")]


def margin_set(params: ExperimentParams) -> ImageData:
    """The samples whose margins are taken: a fixed stratified draw of `margin_samples` from the measured set (all of
    it when that is smaller)."""
    reps = representation_set(params)
    if params.margin_samples >= len(reps.labels):
        return reps
    return reps.subset(stratified_indices(reps.labels, params.margin_samples, params.represent_seed))


def _quartiles(values: torch.Tensor) -> tuple[int, int, float, float, float, float]:
    """(samples, unflipped, q25, median, q75, mean) of margins; an infinite one (never flipped) is counted apart."""
    v = values.double().numpy()
    finite = v[np.isfinite(v)]
    if not len(finite):
        return len(v), len(v), *([float("nan")] * 4)
    q25, median, q75 = np.quantile(finite, [0.25, 0.5, 0.75])
    return len(v), int((~np.isfinite(v)).sum()), float(q25), float(median), float(q75), float(finite.mean())


def margin_table(params: ExperimentParams, models: list[TrainedModel]) -> pd.DataFrame:
    """Per usable model: the margin distribution (quartiles and mean over the `margin_samples` draw, each model's
    correctly classified ones) at every hidden layer, raw ("raw") and divided by the root of the layer's total
    variance over the draw ("normalised"), and at the input by DeepFool ("deepfool") and DeepFool in the top
    `margin_pca_dims` principal directions of the measured inputs ("deepfool_pca") (bnlib.boundaries)."""
    from .boundaries import INPUT, deepfool, first_order_margins, principal_basis, split_at, total_variance

    sample, reps = margin_set(params), representation_set(params)
    basis = principal_basis(reps.normalise(reps.images), params.margin_pca_dims, seed=params.represent_seed)
    layers, batch = params.hidden_layers(), max(1, params.capture_batch // 5)

    def measure_one(trained: TrainedModel, device):
        cfg, model = trained.config, trained.model.to(device).float().eval()
        x = sample.normalise(sample.images).to(device)
        with torch.no_grad():
            right = torch.cat([model(x[i:i + batch]).argmax(1).cpu() for i in range(0, len(x), batch)]) \
                == sample.labels
        labels, rows = sample.labels[right], []
        key = (cfg.dataset, cfg.arch, cfg.norm, cfg.seed)
        for kind, b in (("deepfool", None), ("deepfool_pca", basis)):
            xr = x[right.to(device)]
            found = torch.cat([deepfool(model, xr[i:i + batch], steps=params.deepfool_steps,
                                        overshoot=params.deepfool_overshoot,
                                        basis=None if b is None else b.to(device)).cpu()
                               for i in range(0, len(xr), batch)])
            rows.append((*key, INPUT, 0, kind, *_quartiles(found)))
        for index, layer in enumerate(layers, start=1):
            stem, head = split_at(model, layer)
            with torch.no_grad():
                h = torch.cat([stem(x[i:i + batch]) for i in range(0, len(x), batch)])
            scale = math.sqrt(total_variance(h.cpu()))
            hr = h[right.to(device)]
            raw = torch.cat([first_order_margins(head, hr[i:i + batch], labels[i:i + batch].to(device)).cpu()
                             for i in range(0, len(hr), batch)])
            rows.append((*key, layer, index, "raw", *_quartiles(raw)))
            rows.append((*key, layer, index, "normalised", *_quartiles(raw / scale)))
        return rows

    return _lens_table(params, models, "margins", MARGIN_COLUMNS, measure_one)


def _triplet_images(params: ExperimentParams) -> dict[tuple[str, str], tuple[ImageData, np.ndarray]]:
    """{(source, kind): (the images, their fixed triplets [fragment_triplets, 3])} for every TRIPLET_KINDS."""
    from .boundaries import draw_triplets

    sets = {"train": representation_set(params), "test": probe_set(params)}
    return {(source, kind): (sets[source], draw_triplets(sets[source].labels.numpy(), params.fragment_triplets, kind,
                                                         seed=params.represent_seed + i))
            for i, (source, kind) in enumerate(TRIPLET_KINDS)}


def _plane_classes(model, data: ImageData, triplet, layer: str, params: ExperimentParams, device):
    """(classes [R, R], the Plane) of the plane through the triplet's representations at `layer`."""
    from .boundaries import plane_grid, predict_classes, split_at

    stem, head = split_at(model, layer)
    with torch.no_grad():
        a, b, c = stem(data.normalise(data.images[list(triplet)]).to(device)).float().cpu()
    plane = plane_grid(a, b, c, params.fragment_resolution)
    return predict_classes(head, plane, tuple(a.shape), params.capture_batch, device), plane


def _triplet_regions(model, triplets: dict, layer: str, params: ExperimentParams, device):
    """(source, kind, triplet number, class regions) of the plane at `layer` through each triplet of `triplets`
    ({(source, kind): (images, drawn triplets)})."""
    from .boundaries import count_regions

    return [(source, kind, t, count_regions(_plane_classes(model, data, triplet, layer, params, device)[0]))
            for (source, kind), (data, drawn) in triplets.items() for t, triplet in enumerate(drawn)]


def fragmentation_table(params: ExperimentParams, models: list[TrainedModel]) -> pd.DataFrame:
    """Per usable model, space (the input, and each of `fragment_layer_list`) and triplet: the class regions of the
    plane through the triplet (bnlib.boundaries), for `fragment_triplets` triplets of each TRIPLET_KINDS."""
    from .boundaries import INPUT

    triplets = _triplet_images(params)
    hidden = params.hidden_layers()
    spaces = [(INPUT, 0)] + [(layer, hidden.index(layer) + 1) for layer in params.fragment_layer_list()]

    def measure_one(trained: TrainedModel, device):
        cfg, model = trained.config, trained.model.to(device).float().eval()
        return [(cfg.dataset, cfg.arch, cfg.norm, cfg.seed, layer, index, *regions)
                for layer, index in spaces for regions in _triplet_regions(model, triplets, layer, params, device)]

    return _lens_table(params, models, "fragmentation", FRAGMENT_COLUMNS, measure_one)


FRAGMENT_DYNAMICS_COLUMNS = ["dataset", "arch", "norm", "seed", "epoch", "step", "source", "kind", "triplet",
                             "regions"]


def fragmentation_dynamics_table(params: ExperimentParams, models: list[TrainedModel]) -> pd.DataFrame:
    """Per usable model and snapshot (bnlib.results.snapshot_points): the class regions of the input-space plane
    through each of the first `fragment_snapshot_triplets` triplets of every TRIPLET_KINDS, the final models'
    triplets (so the last snapshot repeats their numbers)."""
    from .boundaries import INPUT

    n = params.fragment_snapshot_triplets
    triplets = {kind: (data, drawn[:n]) for kind, (data, drawn) in _triplet_images(params).items()}

    def measure_one(trained: TrainedModel, device):
        cfg, artifact, rows = trained.config, _artifact(trained, params), []
        for step, epoch in snapshot_points(trained, params):
            model = _snapshot_model(trained, artifact, step, params, device).float()
            rows += [(cfg.dataset, cfg.arch, cfg.norm, cfg.seed, epoch, step, *regions)
                     for regions in _triplet_regions(model, triplets, INPUT, params, device)]
        return rows

    return _lens_table(params, models, "fragment_dynamics", FRAGMENT_DYNAMICS_COLUMNS, measure_one)


def plane_table(params: ExperimentParams, models: list[TrainedModel], a: str = "batch", b: str = "none"
                ) -> pd.DataFrame:
    """The example planes of notebook 10's figure: for the first usable seed of each variant, the predicted class
    ("label") at every grid point ("anchor" 0) and the three images (anchor 1..3, with their true class) of the
    first across-class triplet of test images, in the input and in the middle one of `fragment_layer_list`."""
    from .boundaries import INPUT

    data, drawn = _triplet_images(params)[("test", "across")]
    triplet = drawn[0]
    fragment = params.fragment_layer_list()
    hidden, device = params.hidden_layers(), resolve_device(params.device)
    layer = fragment[(len(fragment) - 1) // 2]
    rows = []
    for norm in (a, b):
        usable_models = [m for m in models if m.config.norm == norm and not m.excluded]
        if not usable_models:
            continue
        trained = min(usable_models, key=lambda m: m.config.seed)
        cfg, model = trained.config, trained.model.to(device).float().eval()
        for space, index in ((INPUT, 0), (layer, hidden.index(layer) + 1)):
            with _numerics(params):
                classes, plane = _plane_classes(model, data, triplet, space, params, device)
            key = (cfg.dataset, cfg.arch, cfg.norm, cfg.seed, space, index)
            rows += [(*key, x, y, int(k), 0) for (x, y), k in zip(plane.coords().tolist(), classes.ravel())]
            rows += [(*key, float(x), float(y), int(data.labels[i]), n)
                     for n, ((x, y), i) in enumerate(zip(plane.anchors, triplet), start=1)]
    return pd.DataFrame(rows, columns=PLANE_COLUMNS)
