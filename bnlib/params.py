"""Experiment parameters: one validated object per notebook run.

A profile (`params/<profile>.yaml`) gives its keys: params/quick.yaml documents every one, and any other profile
`extends` a profile and names only what differs. A notebook's `parameters`
cell names the profile; papermill (`-f file.yaml`, `-p key value`) or an edit
in JupyterLab overrides single keys. An unknown key, a wrong type or an
out-of-range value stops the run in the notebook's first cells, naming the key.
"""

from __future__ import annotations

import math
import os
import types
from pathlib import Path
from typing import Any, Literal

import torch
import yaml
from pydantic import Field, field_validator, model_validator

from .config import ConfigError, LearningRate, Norm, TrainConfig, TrainingKeys, steps_per_epoch, validated
from .custom_data import DataSource, record, register
from .data import dataset_sizes, input_shape
from .files import RUNNER_ENV, spec_key
from .kernels import native_bf16
from .models import INPUT_SHAPES, hidden_layer_names
from .paths import FIGURES_DIR, PARAMS_DIR, REPO_ROOT

# Set by the runner for the kernels it starts: the checkout whose bnlib and params/ the run must use.
CHECKOUT_ENV = RUNNER_ENV

# Keys that say where or how to run, not what to compute: they never change a result.
# Where and how a run happens, not what it measures: no change of results, of figures_dir, or of an executed
# notebook's parameters cell (the same numbers give the same notebook wherever they were made).
PLACEMENT_KEYS = {"output_dir", "data_dir", "cache_dir", "device", "progress", "notebooks", "ray_cpus", "ray_gpus",
                  "from_csvs"}
# Every notebook of the collection, in reading order: {name: (the figure it saves, whether a profile runs it when
# its `notebooks` key is null)}. The runner, the appendix and the Makefile's targets follow it; a test checks it
# against notebooks/*.py.
NOTEBOOKS = {
    "00_models": ("training", True),
    "01_sparsity": ("sparsity", True),
    "02_silhouette": ("silhouette", True),
    "03_umap": ("umap", True),
    "04_clustering_views": ("views", True),
    "05_norm_ablation": ("ablation", False),  # the ablation profile's figure: every norm, not BN vs no BN
    "06_training_dynamics": ("dynamics", True),
    "07_decision_trees": ("trees", True),
    "08_translation": ("translation", True),
    "09_margins": ("margins", True),
    "10_fragmentation": ("fragmentation", True),
    "11_fragmentation_dynamics": ("fragmentation_dynamics", True),
}
_IPYTHON_NAMES = {"In", "Out", "get_ipython", "exit", "quit"}


class ExperimentParams(TrainingKeys):
    """Every knob of one experiment: the training keys (bnlib.config.TrainingKeys), then what only a profile has.
    params/quick.yaml documents each key."""

    profile: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    # what is trained, beyond the shared training keys: one model per (norm, seed)
    norms: list[Norm] = Field(min_length=1)
    seeds: list[int] = Field(min_length=1)
    lr: dict[Norm, LearningRate]
    # how representations are measured
    n_represent: int = Field(ge=20)
    represent_seed: int = Field(0, ge=0)
    layers: list[str] | Literal["all"] = "all"
    capture_batch: int = Field(500, ge=1)
    capture_dtype: Literal["float32", "float16"] = "float32"
    sparsity_threshold: float = Field(0.0, ge=0)
    silhouette_metric: Literal["euclidean", "cosine"] = "euclidean"
    silhouette_pooled: bool = True
    # more views of clustering (notebook 04)
    knn_k: int = Field(10, ge=1, le=100)
    probe_C: float = Field(1.0, gt=0)
    probe_test_samples: int = Field(1000, ge=20)
    probe_max_features: int = Field(4096, ge=1)
    # training dynamics (notebook 06): measures per snapshot (the `snapshots` key) on a smaller measured set
    snapshot_represent: int | None = Field(None, ge=20)  # None, or more than n_represent: all n_represent
    # decision trees over binary ReLU codes (notebook 07)
    tree_code_pool: int = Field(4, ge=0)  # conv maps max-pooled to this many cells a side before on/off; 0: elements
    tree_depth: int = Field(8, ge=1)  # the depth budget of the headline fidelity and accuracy
    tree_max_depth: int = Field(20, ge=1)  # the deepest tree grown; the fidelity curve runs 1..this
    tree_fidelity_target: float = Field(0.9, gt=0, le=1)  # the fidelity whose depth is reported
    # translation sensitivity (notebook 08)
    shift_images: int = Field(100, ge=1)  # test images shifted: a fixed stratified draw
    shift_max: int | None = Field(None, ge=1)  # largest shift in pixels; None: a quarter of the image side
    shift_step: int = Field(1, ge=1)  # grid spacing in pixels
    shift_fill: int = Field(0, ge=0, le=255)  # raw pixel value of the uncovered border (0: MNIST's background)
    # margins (notebook 09)
    margin_samples: int = Field(200, ge=20)  # measured samples whose margins are taken (a stratified draw; at most all)
    margin_pca_dims: int = Field(20, ge=1)  # k: the constrained input margin searches the top-k principal directions
    deepfool_steps: int = Field(50, ge=1)  # DeepFool's most linearised steps; a sample not flipped by then is counted
    deepfool_overshoot: float = Field(0.02, ge=0, le=1)  # the step past the boundary that makes the flip certain
    # fragmentation (notebook 10)
    fragment_resolution: int = Field(36, ge=8)  # grid points a side of each plane
    fragment_triplets: int = Field(8, ge=1)  # triplets of each kind (within/across a class x train/test images)
    fragment_layers: list[str] | None = None  # hidden layers with a plane too; None: the middle and the last
    fragment_snapshot_triplets: int = Field(2, ge=1)  # of each kind, at every snapshot (input space): the first ones
    # UMAP pictures
    umap_layers: list[str] = Field(min_length=1)
    umap_model_seed: int = Field(ge=0)
    umap_seed: int = Field(0, ge=0)
    umap_samples: int = Field(ge=20)
    umap_n_neighbors: int = Field(15, ge=2, le=200)
    umap_min_dist: float = Field(0.1, ge=0, le=1)
    umap_pca_dims: int = Field(50, ge=0)
    # where and how to run (device, bf16, channels_last, compile, cpu_portable: TrainingKeys)
    cpu_bf16: bool | Literal["auto"] = "auto"  # auto: bf16 autocast only on a CPU with native bf16 (bnlib.kernels)
    progress: bool = False
    data_dir: str | None = None
    cache_dir: str | None = None
    output_dir: str | None = None
    from_csvs: str | None = None  # a folder of measured CSVs to analyse instead of measuring (make refresh)
    ray_cpus: float | Literal["auto"] = "auto"  # CPUs (= threads) of one model's Ray task; auto: cnn4 1, vgg16 a node
    ray_gpus: float = Field(0.0, ge=0, le=8)  # GPUs one task asks for; 0.25 lets four models share a GPU
    notebooks: list[str] | None = None  # which notebooks `make figures` runs for this profile; None = 00-04

    @field_validator("dataset", mode="before")
    @classmethod
    def _dataset(cls, v):
        """Your own data ({format, path, ...}) is checked and recorded now, then named `custom-<fingerprint>`."""
        if isinstance(v, dict):
            return register(DataSource.model_validate(v))
        return v

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v):
        if len(set(v)) != len(v) or min(v) < 0:
            raise ValueError("seeds must be distinct non-negative integers")
        return v

    @field_validator("ray_cpus")
    @classmethod
    def _ray_cpus(cls, v):
        if v != "auto" and not 0 < v <= 1024:
            raise ValueError("ray_cpus must be 'auto' or a number of CPUs above 0")
        return v

    @field_validator("norms")
    @classmethod
    def _norms(cls, v):
        if len(set(v)) != len(v):
            raise ValueError(f"norms {v} lists a norm twice; give each once")
        return v

    @model_validator(mode="after")
    def _consistent(self):
        missing = [n for n in self.norms if n not in self.lr]
        if missing:
            raise ValueError(f"lr has no value for norm(s) {missing}; give one per norm, "
                             f"e.g. {{batch: 0.01, none: 0.01}}")
        n_train, n_test = dataset_sizes(self.dataset)
        if self.probe_test_samples > n_test:
            raise ValueError(f"probe_test_samples = {self.probe_test_samples} is more than the "
                             f"{n_test} test images of {self.dataset}; use at most that")
        if self.snapshots:
            per_epoch = math.ceil(min(self.train_subset or n_train, n_train) / self.batch_size)
            steps = [round(p * per_epoch) for p in self.snapshots]
            if len(set(steps)) != len(steps):
                raise ValueError(f"key 'snapshots' = {self.snapshots}: two points fall on the same optimizer step "
                                 f"({per_epoch} steps an epoch); space them at least 1/{per_epoch} epoch apart")
        if self.tree_depth > self.tree_max_depth:
            raise ValueError(f"tree_depth = {self.tree_depth} is deeper than tree_max_depth = {self.tree_max_depth}; "
                             f"raise tree_max_depth or lower tree_depth")
        side = min(INPUT_SHAPES[self.arch][1:])
        if self.shift_max is not None and self.shift_max >= side:
            raise ValueError(f"shift_max = {self.shift_max} moves a {side}-pixel image out of view; use at most "
                             f"{side - 1} (null: a quarter of the side, {side // 4})")
        if self.shift_step > self.shift_radius():
            raise ValueError(f"shift_step = {self.shift_step} is larger than the largest shift ({self.shift_radius()} "
                             f"pixels): the grid would hold (0, 0) only; use a shift_step of at most that")
        if self.shift_images > n_test:
            raise ValueError(f"shift_images = {self.shift_images} is more than the {n_test} test images of "
                             f"{self.dataset}; use at most that")
        pixels = math.prod(INPUT_SHAPES[self.arch])
        if self.margin_pca_dims > min(self.n_represent, pixels):
            raise ValueError(f"margin_pca_dims = {self.margin_pca_dims} is more than the principal directions of "
                             f"{self.n_represent} measured inputs of {pixels} values; use at most "
                             f"{min(self.n_represent, pixels)}")
        if self.knn_k >= self.n_represent:
            raise ValueError(f"knn_k = {self.knn_k} must be below n_represent = {self.n_represent}")
        for key in ("train_subset", "n_represent"):
            value = getattr(self, key)
            if value is not None and value > n_train:
                raise ValueError(f"{key} = {value} is more than the {n_train} training images of {self.dataset}; "
                                 f"use at most {n_train}")
        valid = hidden_layer_names(self.arch)
        for key in ("layers", "umap_layers", "fragment_layers"):
            chosen = getattr(self, key)
            if chosen not in ("all", None) and [x for x in chosen if x not in valid]:
                raise ValueError(f"{key} {chosen} names layers that {self.arch} lacks; valid: {valid}")
        if self.fragment_layers is not None and set(self.fragment_layers) - set(self.hidden_layers()):
            raise ValueError(f"fragment_layers {self.fragment_layers} names layers that are not measured (layers: "
                             f"{self.layers}); choose among {self.hidden_layers()}")
        if self.fragment_snapshot_triplets > self.fragment_triplets:
            raise ValueError(f"fragment_snapshot_triplets = {self.fragment_snapshot_triplets} is more than "
                             f"fragment_triplets = {self.fragment_triplets}: the snapshots' triplets are the first of "
                             f"the final models'; use at most {self.fragment_triplets}")
        if self.umap_model_seed not in self.seeds:
            raise ValueError(f"umap_model_seed {self.umap_model_seed} is not among seeds {self.seeds}")
        if self.umap_samples > self.n_represent:
            raise ValueError(f"umap_samples ({self.umap_samples}) must be <= n_represent ({self.n_represent})")
        shape, wants = input_shape(self.dataset), INPUT_SHAPES[self.arch]
        if shape != wants and not self.dataset.startswith("custom-"):
            raise ValueError(f"arch {self.arch!r} does not fit dataset {self.dataset!r}: use cnn4 for MNIST, "
                             f"vgg16 for CIFAR-10")
        if shape != wants:
            raise ValueError(f"{self.arch} takes {'x'.join(map(str, wants))} images (C x H x W) and dataset "
                             f"{self.dataset} gives {'x'.join(map(str, shape))}: set `resize: [{wants[1]}, {wants[2]}]`"
                             f" and `channels: {wants[0]}` ({'grayscale' if wants[0] == 1 else 'RGB'}) in its mapping")
        if self.dataset.startswith("custom-"):
            self._check_class_counts()
        missing = [n for n in self.notebook_list() if n not in NOTEBOOKS]
        if missing:
            raise ValueError(f"notebooks {missing} do not exist; valid: {list(NOTEBOOKS)}")
        self.train_configs()  # every model's config is valid now, not later in a notebook
        return self

    def _check_class_counts(self) -> None:
        """The measured set is a stratified draw of n_represent training images: every class must get at least 2
        there (a silhouette needs two members a class), and no class may be empty."""
        rec = record(self.dataset)
        counts, n_train = rec["class_counts"], sum(rec["class_counts"])
        draw = min(self.n_represent, self.train_subset or n_train, n_train)
        for name, count in zip(rec["classes"], counts):
            if count * draw // n_train < 2:
                raise ValueError(f"class {name!r} has {count} training images: a stratified draw of n_represent = "
                                 f"{self.n_represent} gives it fewer than 2; raise n_represent or add images of it")

    # -------------------------------------------------------------- derived
    def train_config(self, norm: str, seed: int) -> TrainConfig:
        shared = {k: getattr(self, k) for k in TrainingKeys.model_fields}
        return TrainConfig(**shared, norm=norm, seed=seed, lr=self.lr[norm], cpu_bf16=self.resolved_cpu_bf16())

    def resolved_cpu_bf16(self) -> bool:
        """`cpu_bf16` as trained with: "auto" is bf16 on a CPU with native bf16, else float32 (and off on a GPU,
        where it means nothing). The resolved value is part of each model's cache key."""
        if self.cpu_bf16 != "auto":
            return self.cpu_bf16
        on_cpu = self.device == "cpu" or (self.device == "auto" and not torch.cuda.is_available())
        return on_cpu and native_bf16()

    def train_configs(self) -> list[TrainConfig]:
        return [self.train_config(norm, seed) for norm in self.norms for seed in self.seeds]

    def notebook_list(self) -> list[str]:
        return list(self.notebooks or [name for name, (_, default) in NOTEBOOKS.items() if default])

    def shift_radius(self) -> int:
        """The largest shift of the translation maps, in pixels: `shift_max`, else a quarter of the image side."""
        return self.shift_max if self.shift_max is not None else min(INPUT_SHAPES[self.arch][1:]) // 4

    def fragment_layer_list(self) -> list[str]:
        """The hidden layers whose fragmentation is measured: `fragment_layers`, else the middle and the last (a plane
        in an early conv layer costs as much as one in the input, which is always measured)."""
        if self.fragment_layers is not None:
            return list(self.fragment_layers)
        hidden = self.hidden_layers()
        return list(dict.fromkeys([hidden[len(hidden) // 2], hidden[-1]]))

    def steps_per_epoch(self) -> int:
        """Optimizer steps in one epoch of this profile's training set (bnlib.config.steps_per_epoch)."""
        n_train = dataset_sizes(self.dataset)[0]
        return steps_per_epoch(min(self.train_subset or n_train, n_train), self.batch_size)

    def hidden_layers(self) -> list[str]:
        return list(hidden_layer_names(self.arch)) if self.layers == "all" else list(self.layers)

    def figures_dir(self) -> Path:
        """figures/<profile>/, or figures/<profile>-custom-<hash>/ when keys differ from the profile file."""
        if self.output_dir is not None:  # a relative folder is relative to the checkout, never to the cwd
            return REPO_ROOT / Path(self.output_dir).expanduser()
        try:  # the profile as its file resolves it, defaults included: a key it leaves out is not a change
            base = ExperimentParams.model_validate(load_profile(self.profile)).model_dump(mode="json")
        except (ConfigError, ValueError):
            base = {}
        mine = self.model_dump(mode="json")
        changed = {k: v for k, v in mine.items() if k not in PLACEMENT_KEYS and base.get(k, None) != v}
        if not changed:
            return FIGURES_DIR / self.profile
        digest = spec_key(changed, length=6)
        return FIGURES_DIR / f"{self.profile}-custom-{digest}"

    def csv_dir(self) -> Path:
        """Where `from_csvs` points, relative to the checkout when relative."""
        return REPO_ROOT / Path(self.from_csvs).expanduser()

    def to_yaml(self) -> str:
        """The parameters that make the results, one key a line, as a params file would hold them (placement keys,
        which say where a run happened, are left out)."""
        values = self.model_dump(mode="json")
        order = [k for k in read_yaml(PARAMS_DIR / f"{BASE_PROFILE}.yaml") if k in values] + list(values)
        kept = {k: values[k] for k in dict.fromkeys(order) if k not in PLACEMENT_KEYS}
        return yaml.safe_dump(kept, sort_keys=False, default_flow_style=None, width=120)


def available_profiles() -> list[str]:
    return sorted(p.stem for p in PARAMS_DIR.glob("*.yaml"))


class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses a key given twice (PyYAML silently keeps the last)."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice (first on line {seen[key] + 1})", key_node.start_mark)
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: Path) -> Any:
    """Parse a params file; a syntax error or a duplicated key names the file and the line."""
    try:
        return yaml.load(path.read_text(), Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}, line {mark.line + 1}, column {mark.column + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"cannot read {where}: {problem}. Fix the YAML there (one `key: value` per line).") from None


DEFAULT_PROFILE = "quick"  # the main job's profile (`make figures`), and what a notebook runs when nothing names one
BASE_PROFILE = DEFAULT_PROFILE  # documents every key; every other profile `extends` it (or a profile that does)


def load_profile(profile: str, _chain: tuple[str, ...] = ()) -> dict[str, Any]:
    """The keys of params/<profile>.yaml, with those of the profile it `extends` underneath (recursively)."""
    path = PARAMS_DIR / f"{profile}.yaml"
    if not path.is_file():
        key = "extends" if _chain else "profile"
        raise ConfigError(f"key {key!r} = {profile!r}: no file {path}; available profiles: "
                          f"{', '.join(available_profiles())}")
    data = read_yaml(path) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of key: value")
    parent = data.pop("extends", None)
    if parent is not None:
        if not isinstance(parent, str) or parent in (*_chain, profile):
            raise ConfigError(f"{path}: key 'extends' = {parent!r} must name another profile, without a cycle "
                              f"({' -> '.join((*_chain, profile, str(parent)))})")
        data = load_profile(parent, (*_chain, profile)) | data
    data["profile"] = profile
    return data


def check_checkout() -> None:
    """Stop when this kernel imports bnlib from another checkout than the runner that started it."""
    want = os.environ.get(CHECKOUT_ENV)
    if want and Path(want).resolve() != REPO_ROOT:
        raise ConfigError(f"this kernel imports bnlib from {REPO_ROOT}, but the runner runs the checkout {want}. "
                          f"Install that checkout in the environment (pip install -e {want}) or run its own runner.")


def resolve(profile: str = DEFAULT_PROFILE, **overrides) -> ExperimentParams:
    """The profile's values with `overrides` on top, validated."""
    data = load_profile(profile)
    data.update(overrides)
    data["profile"] = profile
    return validated(ExperimentParams, data, f"parameters (profile {profile!r})")


def from_notebook(namespace: dict[str, Any]) -> ExperimentParams:
    """Validate the parameters a notebook holds: its `parameters` cell plus what papermill injected.

    Every plain global defined before the first call counts as a parameter, so
    an injected misspelling is an unknown key. Names that later cells define
    (seen when a cell is re-run in JupyterLab) are skipped unless they are keys.
    """
    before_first_call = namespace.setdefault("_bnlib_names_at_params", set(namespace))
    fields = set(ExperimentParams.model_fields)
    given = {name: value for name, value in namespace.items()
             if not name.startswith("_") and name not in _IPYTHON_NAMES
             and not isinstance(value, (types.ModuleType, types.FunctionType, type))
             and (name in fields or name in before_first_call)}
    profile = given.pop("profile", DEFAULT_PROFILE)
    parent = given.pop("extends", None)  # papermill -f params/<file>.yaml injects its `extends` too
    if parent is not None and parent != (read_yaml(PARAMS_DIR / f"{profile}.yaml") or {}).get("extends"):
        profile = parent  # a file of overrides without a `profile` key: it builds on the profile it extends
    check_checkout()
    return resolve(profile, **given)
