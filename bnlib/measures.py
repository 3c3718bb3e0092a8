"""Every measure of this collection, in one table: its name, how it reads, which way is better, whether it votes on
claim 3, where it is written, and the function that computes it.

The measuring pipeline (`bnlib.results`), the statistics, the report and the figures all read `MEASURES`. Adding a
measure is one entry here and one function (in `bnlib.metrics` when it is a new kind of computation).

Stages say when a measure is taken:
- ``model``: once per model, from training (accuracy, the exclusion flag);
- ``layer``: per model and hidden layer, in the per-model table cached next to the weights (sparsity, silhouette,
  kNN: the silhouette and kNN share one pass over the pairwise distances, so each is computed once);
- ``views``: per model and layer, in the views table (notebook 04), which also needs held-out test images;
- ``trees``, ``translation``, ``margins``, ``fragmentation``: per model and layer, read off the lens tables of
  notebooks 07 to 10 (`LensRows`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Callable

import torch

from . import codes
from . import metrics as M

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class LayerData:
    """One layer's representations of the measured samples (and, for the views, of the probe's test images)."""

    acts: torch.Tensor
    labels: torch.Tensor
    params: object  # the ExperimentParams the measures read their knobs from
    device: torch.device
    test_acts: torch.Tensor | None = None
    test_labels: torch.Tensor | None = None

    @cached_property
    def silhouette_and_knn(self) -> tuple[float, float]:
        return M.silhouette_and_knn(self.acts, self.labels, self.params.knn_k, self.params.silhouette_metric,
                                    device=self.device)

    @cached_property
    def probe_view(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The probe's (train, test) features: the full representation up to `probe_max_features`, else pooled."""
        if self.acts[0].numel() > self.params.probe_max_features:
            return M.spatial_mean_pool(self.acts), M.spatial_mean_pool(self.test_acts)
        return self.acts, self.test_acts


@dataclass
class LensRows:
    """One model's and layer's rows of a lens table: its tree curve (notebook 07), translation map (08), margin
    quartiles (09) or regions per triplet (10)."""

    rows: "pd.DataFrame"
    params: object


@dataclass(frozen=True)
class Measure:
    name: str
    label: str  # in prose and tables
    axis: str  # on a figure's axis
    stage: str  # "model", "layer", "views", or a lens: "trees", "translation", "margins", "fragmentation"
    tables: tuple[str, ...]  # the measured CSVs (bnlib.tables.TABLES) that hold it
    compute: Callable[[LayerData | LensRows], float | None] | None = None  # None: not computed under these parameters
    better: str = "higher"  # "higher", "lower", or "" for a descriptive measure
    votes: bool = False  # a clustering view: it votes on claim 3
    compared: bool = True  # compared BN vs no BN per layer in the report
    dynamics: bool = False  # also measured at every snapshot along training (notebook 06)


def _sparsity(fn):
    def compute(x: LayerData) -> float:
        value = fn(x.acts, x.params.sparsity_threshold)
        return value.mean().item() if isinstance(value, torch.Tensor) else value
    return compute


def _pooled_silhouette(x: LayerData) -> float | None:
    if not x.params.silhouette_pooled:
        return None
    return M.silhouette_score(M.spatial_mean_pool(x.acts), x.labels, x.params.silhouette_metric, device=x.device)


def _linear_probe(x: LayerData) -> float:
    train, test = x.probe_view
    return M.linear_probe_accuracy(train, x.labels, test, x.test_labels, C=x.params.probe_C)


def _tree_at_budget(column: str):
    def compute(x: LensRows) -> float:
        return float(x.rows.loc[x.rows.depth == x.params.tree_depth, column].iloc[0])
    return compute


def _tree_depth_to_target(x: LensRows) -> float:
    """The shallowest prefix whose test fidelity reaches `tree_fidelity_target`; `tree_max_depth` + 1 when no depth
    up to it does. A censored value, scored as deeper than any reached one: left out, it compared BN's layers that
    reach the target with the few no-BN survivors that do (the notebook counts them)."""
    reached = x.rows[x.rows.fidelity >= x.params.tree_fidelity_target].depth
    return float(reached.min()) if len(reached) else float(x.params.tree_max_depth + 1)


def _mean_shifted(metric: str):
    """The mean of a translation map over every shift but (0, 0); None for a layer that has no such map."""
    def compute(x: LensRows) -> float | None:
        r = x.rows
        part = r[(r.metric == metric) & ((r.dx != 0) | (r.dy != 0))]
        return float(part.value.mean()) if len(part) else None
    return compute


def _median_margin(kind: str):
    """The median margin of `kind` (bnlib.lens_tables.margin_table) at this layer; None where the layer has none."""
    def compute(x: LensRows) -> float | None:
        part = x.rows[x.rows.kind == kind]
        return float(part["median"].iloc[0]) if len(part) else None
    return compute


def _mean_regions(kind: str | None = None):
    """The mean class regions over this space's triplets (of one `kind`: within or across a class)."""
    def compute(x: LensRows) -> float:
        part = x.rows if kind is None else x.rows[x.rows.kind == kind]
        return float(part.regions.mean())
    return compute


# The one exclusion concept: a run whose training status is not "complete" (bnlib.cache.USABLE): it diverged (a
# non-finite loss, weights or activations) or failed (it ended at chance). Its flag row is 1, and every statistic
# and figure leaves all its rows out (bnlib.stats.usable).
EXCLUDED = "excluded"
_ACC, _SIL = ("accuracy", "ablation", "views"), ("silhouette", "ablation", "views")
# In this order: the order of the rows of every table and of the report's comparisons.
MEASURES: dict[str, Measure] = {m.name: m for m in [
    Measure("train_accuracy", "train accuracy", "train accuracy", "model", ("accuracy", "views"), compared=False),
    Measure("test_accuracy", "test accuracy", "test accuracy", "model", _ACC, compared=False),
    # 1 for a run left out of every statistic (TrainedModel.excluded): it diverged or it failed (module docstring)
    Measure(EXCLUDED, "excluded (diverged or failed)", "excluded", "model", _ACC, better="", compared=False),
    Measure("channel_sparsity", "channel sparsity", "average channel sparsity", "layer", ("sparsity", "ablation"),
            _sparsity(M.channel_sparsity), better="", dynamics=True),
    Measure("element_sparsity", "element sparsity", "element sparsity", "layer", ("sparsity", "ablation"),
            _sparsity(M.element_sparsity), better="", dynamics=True),
    Measure("dead_channels", "dead channels", "dead channels (fraction)", "layer", ("sparsity",),
            _sparsity(M.dead_channels), better=""),
    Measure("silhouette", "silhouette", "silhouette score", "layer", _SIL,
            lambda x: x.silhouette_and_knn[0], votes=True, dynamics=True),
    Measure("silhouette_pooled", "silhouette (pooled)", "silhouette score (spatial-mean pooled)", "layer",
            ("silhouette", "ablation"), _pooled_silhouette, votes=True, dynamics=True),
    Measure("knn_accuracy", "kNN accuracy", "kNN accuracy (leave-one-out)", "layer", ("views",),
            lambda x: x.silhouette_and_knn[1], votes=True, dynamics=True),
    Measure("linear_probe", "linear probe", "linear probe test accuracy", "views", ("views",), _linear_probe,
            votes=True, dynamics=True),
    # which width the probe saw: the full representation, or the pooled one past probe_max_features
    Measure("probe_features", "probe features", "probe features", "views", ("views",),
            lambda x: x.probe_view[0][0].numel(), better="", compared=False),
    Measure("davies_bouldin", "Davies–Bouldin", "Davies–Bouldin (lower: better)", "views", ("views",),
            lambda x: M.davies_bouldin(x.acts, x.labels), better="lower", votes=True),
    Measure("calinski_harabasz", "Calinski–Harabasz", "Calinski–Harabasz", "views", ("views",),
            lambda x: M.calinski_harabasz(x.acts, x.labels), votes=True),
    # descriptive, not a vote: Calinski-Harabasz x within/between = (N - k) / (k - 1) in every row, one statistic
    Measure("within_between_ratio", "within/between scatter", "within / between scatter (lower: better)", "views",
            ("views",), lambda x: M.within_between_ratio(x.acts, x.labels, device=x.device), better="lower"),
    Measure("code_neighbour_agreement", "code neighbour agreement", "nearest binary code: same class", "views",
            ("views",), lambda x: codes.code_neighbour_agreement(x.acts, x.labels, device=x.device), votes=True),
    # descriptive, not votes: purity is trivially 1 when every code is unique
    Measure("code_purity", "code purity", "class purity of identical codes", "views", ("views",),
            lambda x: codes.code_purity(x.acts, x.labels), better=""),
    Measure("distinct_codes", "distinct codes", "distinct binary codes", "views", ("views",),
            lambda x: codes.distinct_codes(x.acts), better=""),
    # notebook 07: how well a decision tree over a layer's binary code explains the network's prediction
    Measure("tree_fidelity", "tree fidelity", "tree fidelity at the depth budget (test)", "trees", ("tree_summary",),
            _tree_at_budget("fidelity")),
    Measure("tree_accuracy", "tree accuracy", "tree accuracy at the depth budget (test)", "trees", ("tree_summary",),
            _tree_at_budget("accuracy")),
    Measure("tree_depth_to_target", "depth to target fidelity", "depth for the target fidelity (lower: simpler)",
            "trees", ("tree_summary",), _tree_depth_to_target, better="lower"),
    Measure("tree_leaves", "tree leaves", "leaves at the depth budget", "trees", ("tree_summary",),
            _tree_at_budget("leaves"), better=""),
    Measure("tree_codes", "distinct pooled codes", "distinct pooled binary codes", "trees", ("tree_summary",),
            lambda x: float(x.rows.codes.iloc[0]), better=""),
    # notebook 08: how much of a layer's representation survives a shift of the input (higher: more invariant)
    Measure("shift_cosine", "translation invariance", "mean cosine similarity under shifts", "translation",
            ("invariance",), _mean_shifted("cosine")),
    Measure("shift_cosine_pooled", "translation invariance (pooled)", "mean cosine under shifts, pooled",
            "translation", ("invariance",), _mean_shifted("cosine_pooled")),
    Measure("shift_agreement", "prediction agreement under shifts", "same prediction after a shift", "translation",
            ("invariance",), _mean_shifted("agreement")),
    # notebook 09: how far correctly classified samples lie from the decision boundary (higher: farther). The raw
    # hidden margin is in the layer's own units, which BatchNorm rescales: descriptive, the normalised one compares
    Measure("margin_hidden", "hidden margin (raw)", "median hidden margin (layer units)", "margins",
            ("margin_summary",), _median_margin("raw"), better=""),
    Measure("margin_hidden_normalised", "hidden margin (normalised)", "median hidden margin / layer scale",
            "margins", ("margin_summary",), _median_margin("normalised")),
    Measure("margin_input", "input margin", "median input margin (DeepFool)", "margins", ("margin_summary",),
            _median_margin("deepfool")),
    Measure("margin_input_pca", "constrained input margin", "median input margin, top principal directions",
            "margins", ("margin_summary",), _median_margin("deepfool_pca")),
    # notebook 10: class regions on the plane through three samples (lower: less fragmented). Claim 8 reads the
    # within- and across-class means; "all" is their mean (as many triplets of each kind), so it is descriptive
    Measure("fragmentation", "fragmentation", "class regions on a plane (all triplets)", "fragmentation",
            ("fragmentation_summary",), _mean_regions(), better="lower"),
    Measure("fragmentation_within", "fragmentation (within a class)", "class regions, within-class triplets",
            "fragmentation", ("fragmentation_summary",), _mean_regions("within"), better="lower"),
    Measure("fragmentation_across", "fragmentation (across classes)", "class regions, across-class triplets",
            "fragmentation", ("fragmentation_summary",), _mean_regions("across"), better="lower"),
]}


def names(stage: str | None = None, table: str | None = None, votes: bool | None = None,
          compared: bool | None = None, dynamics: bool | None = None) -> list[str]:
    """The measure names that match every filter given, in table order."""
    return [m.name for m in MEASURES.values()
            if (stage is None or m.stage == stage) and (table is None or table in m.tables)
            and (votes is None or m.votes == votes) and (compared is None or m.compared == compared)
            and (dynamics is None or m.dynamics == dynamics)]


def label(name: str) -> str:
    return MEASURES[name].label if name in MEASURES else name.replace("_", " ")


def axis(name: str) -> str:
    return MEASURES[name].axis if name in MEASURES else name.replace("_", " ")


def lower_is_better(name: str) -> bool:
    return name in MEASURES and MEASURES[name].better == "lower"


def measure_layer(stage: str, data: LayerData | LensRows) -> dict[str, float]:
    """{name: value} of every measure of `stage` on one layer, in table order; a skipped measure is left out."""
    out = {}
    for name in names(stage=stage):
        value = MEASURES[name].compute(data)
        if value is not None:
            out[name] = value
    return out
