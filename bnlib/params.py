"""Experiment parameters: one validated object per notebook run.

A profile (`params/<profile>.yaml`) gives every key. A notebook's `parameters`
cell names the profile; papermill (`-f file.yaml`, `-p key value`) or an edit
in JupyterLab overrides single keys. An unknown key, a wrong type or an
out-of-range value stops the run in the notebook's first cells, naming the key.
"""

from __future__ import annotations

import hashlib
import json
import types
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .config import Arch, ConfigError, Dataset, Norm, TrainConfig, validated
from .paths import FIGURES_DIR, PARAMS_DIR

# Keys that say where or how to run, not what to compute: they never change a result.
PLACEMENT_KEYS = {"output_dir", "data_dir", "cache_dir", "device", "progress"}
_IPYTHON_NAMES = {"In", "Out", "get_ipython", "exit", "quit"}
_HIDDEN_LAYER_NAMES = {"cnn4": [f"conv{i}" for i in range(1, 5)] + ["fc1"],
                       "vgg16": [f"conv{i}" for i in range(1, 14)] + ["fc1"]}


class ExperimentParams(BaseModel):
    """Every knob of one experiment. Comments in params/*.yaml say what each is for."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    profile: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    # what is trained
    dataset: Dataset
    arch: Arch
    norms: list[Norm] = Field(min_length=1)
    seeds: list[int] = Field(min_length=1)
    optimizer: Literal["sgd", "adam"]
    lr: dict[Norm, float]
    momentum: float = Field(0.0, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    epochs: int = Field(ge=1, le=1000)
    lr_schedule: Literal["constant", "cosine"] = "constant"
    batch_size: int = Field(ge=2, le=65536)
    augment: bool = False
    train_subset: int | None = Field(None, ge=10)
    # how representations are measured
    n_represent: int = Field(ge=20)
    represent_seed: int = Field(0, ge=0)
    layers: list[str] | Literal["all"] = "all"
    capture_batch: int = Field(500, ge=1)
    capture_dtype: Literal["float32", "float16"] = "float32"
    sparsity_threshold: float = Field(0.0, ge=0)
    silhouette_metric: Literal["euclidean", "cosine"] = "euclidean"
    silhouette_pooled: bool = True
    # UMAP pictures
    umap_layers: list[str] = Field(min_length=1)
    umap_model_seed: int = Field(ge=0)
    umap_seed: int = Field(0, ge=0)
    umap_samples: int = Field(ge=20)
    umap_n_neighbors: int = Field(15, ge=2, le=200)
    umap_min_dist: float = Field(0.1, ge=0, le=1)
    umap_pca_dims: int = Field(50, ge=0)
    # where and how to run
    device: Literal["auto", "cpu", "cuda"] = "auto"
    bf16: bool = True
    channels_last: bool = True
    compile: bool = False
    progress: bool = False
    data_dir: str | None = None
    cache_dir: str | None = None
    output_dir: str | None = None

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v):
        if len(set(v)) != len(v) or min(v) < 0:
            raise ValueError("seeds must be distinct non-negative integers")
        return v

    @model_validator(mode="after")
    def _consistent(self):
        missing = [n for n in self.norms if n not in self.lr]
        if missing:
            raise ValueError(f"lr has no value for norm(s) {missing}; give one per norm, e.g. {{batch: 0.01, none: 0.01}}")
        if any(v <= 0 for v in self.lr.values()):
            raise ValueError("every lr must be > 0")
        valid = _HIDDEN_LAYER_NAMES[self.arch]
        for key in ("layers", "umap_layers"):
            chosen = getattr(self, key)
            if chosen != "all" and [x for x in chosen if x not in valid]:
                raise ValueError(f"{key} {chosen} names layers that {self.arch} lacks; valid: {valid}")
        if self.umap_model_seed not in self.seeds:
            raise ValueError(f"umap_model_seed {self.umap_model_seed} is not among seeds {self.seeds}")
        if self.umap_samples > self.n_represent:
            raise ValueError(f"umap_samples ({self.umap_samples}) must be <= n_represent ({self.n_represent})")
        if self.optimizer == "adam" and self.momentum != 0:
            raise ValueError("momentum applies to optimizer 'sgd' only; set it to 0 for 'adam'")
        if (self.dataset.startswith("cifar")) != (self.arch == "vgg16"):
            raise ValueError(f"arch {self.arch!r} does not fit dataset {self.dataset!r}: use cnn4 for MNIST, vgg16 for CIFAR-10")
        return self

    # -------------------------------------------------------------- derived
    def train_config(self, norm: str, seed: int) -> TrainConfig:
        return TrainConfig(dataset=self.dataset, arch=self.arch, norm=norm, seed=seed,
                           optimizer=self.optimizer, lr=self.lr[norm], momentum=self.momentum,
                           weight_decay=self.weight_decay, epochs=self.epochs,
                           lr_schedule=self.lr_schedule, batch_size=self.batch_size,
                           augment=self.augment, train_subset=self.train_subset, device=self.device,
                           bf16=self.bf16, channels_last=self.channels_last, compile=self.compile)

    def train_configs(self) -> list[TrainConfig]:
        return [self.train_config(norm, seed) for norm in self.norms for seed in self.seeds]

    def hidden_layers(self) -> list[str]:
        return list(_HIDDEN_LAYER_NAMES[self.arch]) if self.layers == "all" else list(self.layers)

    def figures_dir(self) -> Path:
        """figures/<profile>/, or figures/<profile>-custom-<hash>/ when keys differ from the profile file."""
        if self.output_dir is not None:
            return Path(self.output_dir).expanduser()
        try:
            base = load_profile(self.profile)
        except ConfigError:
            base = {}
        mine = self.model_dump(mode="json")
        changed = {k: v for k, v in mine.items() if k not in PLACEMENT_KEYS and base.get(k, None) != v}
        if not changed:
            return FIGURES_DIR / self.profile
        digest = hashlib.sha256(json.dumps(changed, sort_keys=True).encode()).hexdigest()[:6]
        return FIGURES_DIR / f"{self.profile}-custom-{digest}"

    def to_yaml(self) -> str:
        """The resolved parameters, one key a line, as a params file would hold them."""
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False, default_flow_style=None, width=120)


def available_profiles() -> list[str]:
    return sorted(p.stem for p in PARAMS_DIR.glob("*.yaml"))


def load_profile(profile: str) -> dict[str, Any]:
    path = PARAMS_DIR / f"{profile}.yaml"
    if not path.is_file():
        raise ConfigError(f"key 'profile' = {profile!r}: no file {path}; available profiles: "
                          f"{', '.join(available_profiles())}")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of key: value")
    data.setdefault("profile", profile)
    return data


def resolve(profile: str = "quick", **overrides) -> ExperimentParams:
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
    profile = given.pop("profile", "quick")
    return resolve(profile, **given)
