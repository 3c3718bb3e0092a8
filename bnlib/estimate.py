"""How long a profile will take on this machine, measured before the long work starts.

`estimate(params)` times a few real training steps of each variant still to
train (the profile's own batch size, precision and memory format, on synthetic
inputs of the dataset's shape) and the machine's float64 GEMM rate, then counts
the work that is left:

- training: steps per epoch x epochs x the measured seconds a step, plus one
  forward pass of the test set per epoch and of the training set at the end
  (a forward costs about a third of a training step);
- measuring: the pairwise distances of every clustering view, proportional to
  sum over layers of n_represent^2 x the layer's width, at the measured GEMM
  rate, times MEASURE_WORK (the passes the views make over those pairs, fitted
  once on the quick profile), plus the forward passes that capture the layers;
- a fixed cost per notebook (kernel start, imports, figures), and the UMAP panels.

Models already in the cache, and their measured tables, cost nothing.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .data import dataset_sizes, num_classes
from .kernels import machine_class
from .measuring import cached_name, cached_table_names
from .models import INPUT_SHAPES, build_model, hidden_layers
from .params import ExperimentParams
from .samples import TRIPLET_KINDS
from .tables import notebook_of
from .train import _autocast, artifact_dir, make_optimizer, resolve_device

TIMED_STEPS = 2  # after one warm-up step
FORWARD_SHARE = 1 / 3  # a forward pass costs about this share of a training step
# Fitted once, on the quick profile on a 2-core AVX-512 EPYC (benchmarks/README.md: "Time estimates"):
MEASURE_WORK = 9.0  # GEMM-equivalent passes over n^2 x width per layer and model: metrics, views and CKA together
NOTEBOOK_SECONDS = 12.0  # kernel start, imports, plots and saving, per notebook
UMAP_SECONDS_PER_1000_POINTS = 7.0  # one UMAP panel (numba compiled), per 1,000 embedded points
# The same per snapshot of notebook 06, captures included (fitted on quick: 164 s for 8 models x 6 snapshots)
DYNAMICS_WORK = 8.0
# Notebook 07: seconds per million (training sample x code bit x depth) of a model's trees, both targets, with its
# forward passes (fitted on mnist: 5.5 s a model)
TREE_SECONDS_PER_MILLION = 0.017
# Notebook 08: a shifted image's forward pass with every layer's cosines, in forward shares of a training step
# (fitted on mnist: 23 s a model for 100 images x 225 shifts; halved when the cosines began reusing each layer's
# flattened reference and its norm: quick's BN seed 0 25.6 s -> 12.7 s, the same bits, benchmarks/stages.py)
TRANSLATION_WORK = 2.0
# Notebook 09: forward-pass equivalents per margin sample and class (DeepFool, full and constrained, and every hidden
# layer's gradients; fitted on quick and mnist: 16-27 s a model for 200 samples)
MARGIN_WORK = 40.0
# Notebook 10: forward-pass equivalents per grid point of a triplet's plane, over the input and the hidden spaces
# (fitted on quick and mnist: 24-39 s a model for 32 planes of 36 x 36)
FRAGMENT_WORK = 2.0
# Notebook 11 (fragmentation along training): forward-pass equivalents per grid point of an input-space plane, per
# snapshot, loading the snapshot's weights included (fitted on quick, mnist and cifar10-cpu: 23-37 s a model for 6
# snapshots x 8 planes of 36 x 36 on cnn4, 86-102 s for 11 on VGG-16; 1.3-1.95x the forward cost, 1.5 the middle)
FRAGMENT_SNAPSHOT_WORK = 1.5
# The per-model tables (bnlib.tables.CACHES) of notebooks 06-11, each costed on its own below, and the notebook that
# measures it: a table counts only when its notebook is to run
LENS_TABLES = {name: notebook_of(name) for name in ("dynamics", "trees", "translation", "margins", "fragmentation",
                                                    "fragmentation_dynamics")}


@dataclass
class Estimate:
    train_seconds: float
    measure_seconds: float
    fixed_seconds: float
    models_to_train: int
    models_to_measure: int
    precision: str
    machine: str = ""  # what trains: empty for this CPU, else the GPU's name

    @property
    def total(self) -> float:
        return self.train_seconds + self.measure_seconds + self.fixed_seconds

    def describe(self) -> str:
        where = f"on {self.machine}" if self.machine else "on this CPU"
        # The measures are priced from this machine's CPU BLAS rate and CPU-calibrated constants: on a GPU they are
        # an upper bound (issue 46: 1 h 02 min predicted; 00-03 took 406 s on an H200).
        measuring = " (priced for the CPU: an upper bound here)" if self.machine else ""
        return (f"expected: about {format_duration(self.total)} {where} ({self.precision}; {machine_class()}): "
                f"training {self.models_to_train} model(s) {format_duration(self.train_seconds)}, "
                f"measuring {self.models_to_measure} {format_duration(self.measure_seconds)}{measuring}, "
                f"notebooks {format_duration(self.fixed_seconds)}")


def format_duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def _input_shape(params: ExperimentParams) -> tuple[int, ...]:
    return INPUT_SHAPES[params.arch]


def step_seconds(params: ExperimentParams, norm: str) -> float:
    """Seconds of one training step of `norm`'s model at the profile's batch size and precision, on this CPU."""
    config = params.train_config(norm, params.seeds[0])
    device = resolve_device(config.device)
    torch.manual_seed(0)
    model = build_model(config.arch, config.norm, width=config.width).to(device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(config, model)
    batch = min(config.batch_size, config.train_subset or config.batch_size)
    x = torch.randn(batch, *_input_shape(params), device=device)
    if config.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,), device=device)
    timings = []
    for _ in range(1 + TIMED_STEPS):
        t0 = time.perf_counter()
        with _autocast(device, config.bf16, config.cpu_bf16):
            loss = F.cross_entropy(model(x).float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        timings.append(time.perf_counter() - t0)
    return float(np.median(timings[1:])) * config.batch_size / batch


def gemm_rate() -> float:
    """float64 GEMM flop/s of this machine on a silhouette-tile-sized product (numpy's BLAS, as the views use)."""
    a = np.random.default_rng(0).standard_normal((512, 2048))
    a @ a.T
    t0 = time.perf_counter()
    for _ in range(3):
        a @ a.T
    return 3 * 2 * 512 * 2048 * 512 / (time.perf_counter() - t0)


def layer_shapes(params: ExperimentParams) -> dict[str, tuple[int, ...]]:
    """The shape of one sample's representation at each measured hidden layer."""
    model = build_model(params.arch, params.norms[0], width=params.width).eval()
    shapes, wanted = {}, set(params.hidden_layers())
    handles = [module.register_forward_hook(lambda m, i, o, name=name: shapes.__setitem__(name, tuple(o.shape[1:])))
               for name, module in hidden_layers(model).items() if name in wanted]
    with torch.no_grad():
        model(torch.zeros(1, *_input_shape(params)))
    for h in handles:
        h.remove()
    return shapes


def layer_widths(params: ExperimentParams) -> dict[str, int]:
    """The flattened width of each measured hidden layer."""
    return {name: math.prod(shape) for name, shape in layer_shapes(params).items()}


def code_bits(params: ExperimentParams) -> int:
    """The bits of the binary codes of notebook 07, summed over the measured layers (bnlib.lenses.pooled_codes)."""
    pool = params.tree_code_pool
    return sum(s[0] * pool * pool if len(s) == 3 and pool and s[-1] > pool else math.prod(s)
               for s in layer_shapes(params).values())


def _sizes(params: ExperimentParams) -> tuple[int, int]:
    n_train, n_test = dataset_sizes(params.dataset)
    return min(n_train, params.train_subset or n_train), n_test


def _missing(params: ExperimentParams):
    """(configs with no trained model in the cache, configs whose measured tables are not all cached, {table:
    configs without it cached} for the tables of notebooks 06-11)."""
    untrained, unmeasured = [], []
    lens = {table: [] for table in LENS_TABLES}
    for config in params.train_configs():
        folder = artifact_dir(config, params.cache_dir)
        if not (folder / "meta.json").is_file():
            untrained.append(config)
        if not all((folder / "results" / name).is_file() for name in cached_table_names(params)):
            unmeasured.append(config)
        for table, missing in lens.items():
            if not (folder / "results" / cached_name(params, table)).is_file():
                missing.append(config)
    return untrained, unmeasured, lens


def estimate(params: ExperimentParams, notebooks: list[str] | None = None) -> Estimate:
    """The expected wall time of running `notebooks` (default: the profile's) on this machine, now."""
    notebooks = notebooks or params.notebook_list()
    untrained, unmeasured, missing = _missing(params)
    # {table: the configs without it cached}, empty for a table whose notebook is not to run
    lens = {table: configs if LENS_TABLES[table] in notebooks else [] for table, configs in missing.items()}
    n_train, n_test = _sizes(params)
    per_epoch = params.steps_per_epoch()
    steps = per_epoch * params.epochs
    forward_images = n_test * params.epochs + n_train
    forward_lenses = ("translation", "margins", "fragmentation", "fragmentation_dynamics")  # costed in forward passes
    timed = {norm: step_seconds(params, norm)
             for norm in sorted({c.norm for c in untrained + unmeasured + sum((lens[t] for t in forward_lenses), [])})}
    train_seconds = sum(timed[c.norm] * (steps + FORWARD_SHARE * forward_images / params.batch_size)
                        for c in untrained)
    measure_seconds = 0.0
    if unmeasured:
        widths = layer_widths(params)
        pairs = params.n_represent ** 2 * sum(widths.values())
        per_model = MEASURE_WORK * 2 * pairs / gemm_rate()
        # capture: one forward of the measured and probe images per layer (each stops at its layer)
        captured = (params.n_represent + params.probe_test_samples) * len(widths) / 2
        measure_seconds = sum(per_model + FORWARD_SHARE * captured / params.batch_size * timed[c.norm]
                              for c in unmeasured)
    if lens["dynamics"]:
        n = min(params.snapshot_represent or params.n_represent, params.n_represent)
        per_point = DYNAMICS_WORK * 2 * n ** 2 * sum(layer_widths(params).values()) / gemm_rate()
        measure_seconds += sum(per_point * max(1, len(c.snapshot_steps(per_epoch))) for c in lens["dynamics"])
    if lens["trees"]:
        per_model = TREE_SECONDS_PER_MILLION * params.n_represent * code_bits(params) * params.tree_max_depth / 1e6
        measure_seconds += per_model * len(lens["trees"])
    if lens["translation"]:
        side = 2 * (params.shift_radius() // params.shift_step) + 1
        forwards = params.shift_images * (side * side + 1)
        measure_seconds += sum(TRANSLATION_WORK * FORWARD_SHARE * forwards / params.batch_size * timed[c.norm]
                               for c in lens["translation"])
    forwards = {"margins": MARGIN_WORK * params.margin_samples * num_classes(params.dataset),
                "fragmentation": FRAGMENT_WORK * len(TRIPLET_KINDS) * params.fragment_triplets
                * params.fragment_resolution ** 2}
    for table, per_model in forwards.items():
        measure_seconds += sum(FORWARD_SHARE * per_model / params.batch_size * timed[c.norm] for c in lens[table])
    per_snapshot = FRAGMENT_SNAPSHOT_WORK * len(TRIPLET_KINDS) * params.fragment_snapshot_triplets \
        * params.fragment_resolution ** 2
    measure_seconds += sum(FORWARD_SHARE * per_snapshot * max(1, len(c.snapshot_steps(per_epoch))) / params.batch_size
                           * timed[c.norm] for c in lens["fragmentation_dynamics"])
    fixed = NOTEBOOK_SECONDS * len(notebooks)
    if "03_umap" in notebooks and unmeasured:
        fixed += UMAP_SECONDS_PER_1000_POINTS * params.umap_samples / 1000 * len(params.umap_layers) * len(params.norms)
    device = resolve_device(params.device)
    if device.type == "cuda":
        precision, machine = ("bf16 autocast" if params.bf16 else "float32"), torch.cuda.get_device_name(device)
    else:
        precision, machine = ("bf16 autocast" if params.resolved_cpu_bf16() else "float32"), ""
        if params.cpu_bf16 == "auto":
            precision += ", chosen by cpu_bf16: auto"
    return Estimate(train_seconds, measure_seconds, fixed, len(untrained), len(unmeasured), precision, machine)
