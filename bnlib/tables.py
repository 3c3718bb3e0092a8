"""The measured tables: one `Table` record each, the one place their names, columns and cache keys are written.

Measuring (training, capture, the measures, the lenses) ends in these tables, one CSV each in
figures/<profile>/; every notebook's analysis, figure and verdict starts from them. `bnlib.measuring.measured`
builds them, `make refresh` reads them back, the estimate costs them, the claims read them and the cache keys each
model's copy by its `Cache` spec. This module imports no torch: the report, refresh and check read CSVs through it
without importing training.

Adding a measured table is one `Table` entry here and its builder, a function of (params, models) in a measuring
module (`build`, "module:function" inside bnlib).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .files import read_csv

# The long form of every per-layer measure: one row per model, layer and metric (layer "model": the model's own).
COLUMNS = ("dataset", "arch", "norm", "seed", "layer", "layer_index", "metric", "value")
MODEL = ("dataset", "arch", "norm", "seed")  # the columns that name a model


@dataclass(frozen=True)
class Cache:
    """How each model's copy of a table is cached in its artifact's results/ folder (bnlib.cache): the keys of the
    profile it depends on (bnlib.files.spec_key), and a format that changes when the code computing it does."""

    name: str
    format: int
    keys: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    name: str
    description: str
    notebook: str  # the notebook that measures it first (a key of params.NOTEBOOKS)
    build: str  # "module:function" in bnlib: function(params, models) -> the table; with `source`: see there
    columns: tuple[str, ...] | None = COLUMNS  # None: the columns vary (the training history's keys)
    cache: Cache | None = None  # each model's rows, cached next to its weights
    summary: str | None = None  # the table derived from this one in the same run (what the comparisons read)
    # measured and written whenever `source` is, after it: built as function(params, models, source, its table)
    source: str | None = None
    by_measure: bool = False  # the builder's rows whose metric bnlib.measures puts in this table
    figure: bool = False  # the figure of its notebook is named after it (figures/<profile>/<name>.png)
    headline: bool = False  # one of the long-form tables claims 1-3 read (bnlib.claims.load)
    reproducible: bool = True  # False: wall clock, written beside `source`, never compared or read back


# The per-model table: sparsity, silhouette and kNN of each hidden layer, and each model's accuracy rows.
# Format 3 adds kNN accuracy, taken in the silhouette's pass.
PER_MODEL = Cache("metrics", 3, ("dataset", "n_represent", "represent_seed", "layers", "capture_dtype",
                                 "sparsity_threshold", "silhouette_metric", "silhouette_pooled", "knn_k"))
_MODEL_ROWS = "final_measures:experiment_results"
_SUMMARY = "lens_tables:lens_summary"
_REPRESENT = ("dataset", "n_represent", "represent_seed")

TABLES = {t.name: t for t in [
    Table("accuracy", "per model: train and test accuracy, and whether the run is excluded (diverged = 1)",
          "00_models", _MODEL_ROWS, cache=PER_MODEL, by_measure=True, headline=True),
    Table("training", "per model and epoch: the training curves (training_time.csv beside it: wall clock, not "
          "compared)", "00_models", "final_measures:training_table", columns=None, figure=True),
    Table("training_time", "per model and epoch: the wall-clock seconds of training, and the machine",
          "00_models", "final_measures:training_time_table", columns=None, source="training", reproducible=False),
    Table("sparsity", "per model and layer: channel and element sparsity, dead channels", "01_sparsity",
          _MODEL_ROWS, cache=PER_MODEL, by_measure=True, figure=True, headline=True),
    Table("silhouette", "per model and layer: the silhouette, full and spatial-mean-pooled", "02_silhouette",
          _MODEL_ROWS, cache=PER_MODEL, by_measure=True, figure=True, headline=True),
    Table("umap", "per sample of one seed: the 2-D UMAP coordinates of each norm and layer", "03_umap",
          "final_measures:umap_table", figure=True,
          columns=("dataset", "arch", "norm", "seed", "layer", "sample", "label", "class", "umap_x", "umap_y"),
          cache=Cache("umap", 1, (*_REPRESENT, "umap_samples", "umap_seed", "umap_n_neighbors", "umap_min_dist",
                                  "umap_pca_dims"))),
    Table("views", "per model and layer: every clustering view (notebook 04), with the per-model rows",
          "04_clustering_views", "final_measures:clustering_views", figure=True, headline=True,
          cache=Cache("views", 2, (*_REPRESENT, "layers", "capture_dtype", "probe_C", "probe_test_samples",
                                   "probe_max_features"))),
    Table("cka", "per layer and pair of models: linear CKA", "04_clustering_views", "final_measures:cka_table",
          columns=("layer_index", "layer", "pair", "seed_1", "seed_2", "cka"),
          cache=Cache("cka", 1, (*_REPRESENT, "layers"))),
    Table("ablation", "per model and layer: the measures the norm ablation compares, and the exclusion flag",
          "05_norm_ablation", _MODEL_ROWS, cache=PER_MODEL, by_measure=True, figure=True),
    Table("dynamics", "per model, snapshot and layer: test accuracy and the measures along training (notebook 06)",
          "06_training_dynamics", "dynamics:dynamics_table", figure=True,
          columns=("dataset", "arch", "norm", "seed", "epoch", "step", "layer", "layer_index", "metric", "value"),
          cache=Cache("dynamics", 2, ("dataset", "n_represent", "snapshot_represent", "represent_seed", "layers",
                                      "capture_dtype", "sparsity_threshold", "silhouette_metric",
                                      "silhouette_pooled", "knn_k", "probe_C", "probe_test_samples",
                                      "probe_max_features"))),
    Table("trees", "per model, layer and depth: test fidelity and accuracy of the decision tree's prefix "
          "(notebook 07)", "07_decision_trees", "lens_tables:tree_curves", figure=True, summary="tree_summary",
          columns=("dataset", "arch", "norm", "seed", "layer", "layer_index", "depth", "fidelity", "accuracy",
                   "leaves", "codes"),
          cache=Cache("trees", 1, (*_REPRESENT, "layers", "probe_test_samples", "tree_code_pool",
                                   "tree_max_depth"))),
    Table("tree_summary", "per model and layer: the tree measures at the depth budget, read off trees (notebook 07)",
          "07_decision_trees", _SUMMARY, source="trees"),
    Table("translation", "per model, layer and shift: mean cosine similarity to the unshifted image, and the "
          "prediction agreement (notebook 08)", "08_translation", "lens_tables:translation_table", figure=True,
          summary="invariance",
          columns=("dataset", "arch", "norm", "seed", "layer", "layer_index", "dx", "dy", "metric", "value"),
          cache=Cache("translation", 1, ("dataset", "represent_seed", "layers", "shift_images", "shift_max",
                                         "shift_step", "shift_fill"))),
    Table("invariance", "per model and layer: the translation maps' means over every shift but (0, 0) "
          "(notebook 08)", "08_translation", _SUMMARY, source="translation"),
    Table("margins", "per model and layer: quartiles and mean of the margins, hidden (raw, normalised) and input "
          "(DeepFool, full and in the top principal directions) (notebook 09)", "09_margins",
          "lens_tables:margin_table", figure=True, summary="margin_summary",
          columns=("dataset", "arch", "norm", "seed", "layer", "layer_index", "kind", "samples", "unflipped", "q25",
                   "median", "q75", "mean"),
          cache=Cache("margins", 1, (*_REPRESENT, "layers", "margin_samples", "margin_pca_dims", "deepfool_steps",
                                     "deepfool_overshoot"))),
    Table("margin_summary", "per model and layer: the median margins the comparisons read (notebook 09)",
          "09_margins", _SUMMARY, source="margins"),
    Table("fragmentation", "per model, space and triplet: the class regions on the plane through the triplet "
          "(notebook 10)", "10_fragmentation", "lens_tables:fragmentation_table", figure=True,
          summary="fragmentation_summary",
          columns=("dataset", "arch", "norm", "seed", "layer", "layer_index", "source", "kind", "triplet",
                   "regions"),
          cache=Cache("fragmentation", 2, (*_REPRESENT, "layers", "probe_test_samples", "fragment_resolution",
                                           "fragment_triplets", "fragment_layers"))),
    Table("fragmentation_summary", "per model and space: mean regions over all, within-class and across-class "
          "triplets (notebook 10)", "10_fragmentation", _SUMMARY, source="fragmentation"),
    Table("planes", "the example planes of notebook 10: the class at every grid point, for one BN and one no-BN "
          "model", "10_fragmentation", "lens_tables:plane_table",
          columns=("dataset", "arch", "norm", "seed", "layer", "layer_index", "x", "y", "label", "anchor")),
    Table("fragmentation_dynamics", "per model, snapshot and triplet: the class regions of an input-space plane "
          "along training, on the first `fragment_snapshot_triplets` triplets of each kind (notebook 11)",
          "11_fragmentation_dynamics", "lens_tables:fragmentation_dynamics_table", figure=True,
          columns=("dataset", "arch", "norm", "seed", "epoch", "step", "source", "kind", "triplet", "regions"),
          cache=Cache("fragmentation_dynamics", 1, (*_REPRESENT, "probe_test_samples", "fragment_resolution",
                                                    "fragment_triplets", "fragment_snapshot_triplets"))),
]}
CACHES = {t.cache.name: t.cache for t in TABLES.values() if t.cache is not None}
HEADLINE = tuple(name for name, t in TABLES.items() if t.headline)  # what claims 1-3 read, in this order


def check_names(names) -> None:
    """Stop at once on a name that is not a measured table, naming it and the valid ones."""
    unknown = [n for n in names if n not in TABLES]
    if unknown:
        raise KeyError(f"no measured table {', '.join(map(repr, unknown))}; there are: {', '.join(TABLES)}")


def written_with(name: str) -> list[str]:
    """The tables one measuring run of `name` writes: its source first, then it, then whatever derives from it."""
    table = TABLES[name]
    first = TABLES[table.source] if table.source else table
    return [first.name] + [t.name for t in TABLES.values() if t.source == first.name]


def figure_of(notebook: str) -> str:
    """The name of `notebook`'s figure: the table it is drawn from."""
    found = [t.name for t in TABLES.values() if t.figure and t.notebook == notebook]
    if len(found) != 1:
        raise KeyError(f"notebook {notebook!r} has {len(found)} figure tables in bnlib.tables.TABLES; it needs one")
    return found[0]


def notebook_of(cache: str) -> str:
    """The notebook that measures the cached table `cache` (a key of CACHES) first."""
    return next(t.notebook for t in TABLES.values() if t.cache is not None and t.cache.name == cache)


def read_measured(folder, name: str) -> pd.DataFrame:
    """The measured table `name` from `folder`/<name>.csv, or an error that says how to make it."""
    check_names([name])
    path = Path(folder) / f"{name}.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: measure it with `make figures PROFILE=<profile>` (from_csvs "
                                f"reads a folder a measuring run has written)")
    return read_csv(path)


def long_form(*frames: pd.DataFrame) -> pd.DataFrame:
    """Measured long-form tables as one: views.csv repeats the accuracy and silhouette rows, kept once."""
    return pd.concat(frames, ignore_index=True).drop_duplicates(
        subset=[*MODEL, "layer", "metric"], keep="first", ignore_index=True)
