"""Validated configuration. A bad value fails before any work, naming the key, the value and the fix.

Types are strict: `true` is not an epoch count, "1" is not a number, and
infinities and NaNs are refused everywhere.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .data import DATASETS
from .models import ARCHS, INITS, NORM_LAYERS

BuiltinDataset = Literal["mnist5k", "mnist", "cifar10", "cifar10-jpeg"]
# A built-in dataset, or your own: `custom-<16 hex>`, the name bnlib.custom_data.register gives a checked source.
Dataset = BuiltinDataset | Annotated[str, Field(pattern=r"^custom-[0-9a-f]{16}$")]
Arch = Literal["cnn4", "vgg16"]
Norm = Literal["batch", "none", "batch_noaffine", "batch_after_relu", "group", "layer", "instance"]
Init = Literal["pytorch", "vgg"]
assert set(BuiltinDataset.__args__) == set(DATASETS) and set(Arch.__args__) == set(ARCHS)
assert set(Norm.__args__) == set(NORM_LAYERS) and set(Init.__args__) == set(INITS)

# Shared by TrainConfig and ExperimentParams, so one validation covers every key the first time.
LearningRate = Annotated[float, Field(gt=0, le=10)]
Width = Annotated[float, Field(gt=0, le=4, description="multiplies every layer width; 1.0 = the standard net")]
STRICT = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


def steps_per_epoch(n_train: int, batch_size: int) -> int:
    """Optimizer steps in one epoch: the last batch may be short, and it counts."""
    return math.ceil(n_train / batch_size)


class ConfigError(ValueError):
    """A configuration value is wrong. The message names the key, the value and the fix."""


def describe_validation_error(exc: ValidationError, what: str, data: dict[str, Any]) -> str:
    lines = [f"invalid {what}:"]
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(root)"
        top = err["loc"][0] if err["loc"] else None
        value = data.get(top, "<missing>") if isinstance(top, str) else "<see key>"
        if not err["loc"]:  # a rule across keys: its message names them
            lines.append(f"  {err['msg'].removeprefix('Value error, ')}")
        elif err["type"] == "extra_forbidden":
            lines.append(f"  key {key!r}: unknown key (value {value!r}); remove it or fix its spelling")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            lines.append(f"  key {key!r} = {value!r}: {msg}")
    return "\n".join(lines)


# What `cpu_portable` needs in the environment before Python starts (each library reads it once, at load):
# - MKL's COMPATIBLE path: its GEMMs gave the same bits on an Intel Xeon (AMX) and an AMD EPYC (AVX-512) and for 1
#   or 2 threads; its AVX2 strict-CNR path gave the two vendors other bits (benchmarks/README.md: Reproducibility);
# - ATen's AVX2 kernels: its AVX-512 ones round otherwise;
# - numpy's and scipy's OpenBLAS on its Haswell (AVX2) kernels: it picks its kernels by CPU model (SkylakeX, Zen,
#   ...), and the views' distance products and the probes' solvers run there.
# train.portable_cpu stops on a CPU without AVX2.
PORTABLE_ENV = {"MKL_CBWR": "COMPATIBLE", "ATEN_CPU_CAPABILITY": "avx2", "OPENBLAS_CORETYPE": "Haswell"}
# Part of a portable model's cache key: a change of PORTABLE_ENV changes the bits, so it must change the key.
PORTABLE_NUMERICS = "aten-avx2+mkl-compatible+openblas-haswell"


def validated(cls, data: dict[str, Any], what: str):
    try:
        return cls(**data)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, what, data)) from None


class TrainingKeys(BaseModel):
    """The keys of how a model is trained, declared once: a TrainConfig holds them for one model, ExperimentParams
    for every model of a profile (with the per-model keys norm, seed, lr and cpu_bf16 in their profile form)."""

    model_config = STRICT

    dataset: Dataset
    arch: Arch
    optimizer: Literal["sgd", "adam"]
    momentum: float = Field(0.0, ge=0, lt=1, description="SGD only")
    weight_decay: float = Field(0.0, ge=0)
    epochs: int = Field(ge=1, le=1000)
    lr_schedule: Literal["constant", "cosine"] = Field("constant", description="cosine: per-step decay to 0")
    batch_size: int = Field(ge=2, le=65536)
    augment: bool = Field(False, description="random crop (pad 4) and horizontal flip, on tensors")
    train_subset: int | None = Field(None, ge=10, description="first-N stratified training samples; None = all")
    width: Width = 1.0
    init: Init = Field("pytorch", description="pytorch: each layer's default; vgg: torchvision's VGG scheme")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    bf16: bool = Field(True, description="bf16 autocast (CUDA always; CPU only with cpu_bf16)")
    channels_last: bool = True
    compile: bool = Field(False, description="torch.compile the model")
    cpu_portable: bool = Field(False, description="CPU kernels that give the same bits on any AVX2 x86 CPU and "
                                                  "thread count: ATen convs instead of oneDNN's, ATen on AVX2, "
                                                  "MKL's COMPATIBLE path, OpenBLAS on Haswell (slower)")
    snapshots: list[float] = Field([], description="points of training, in epochs (0 = the initialisation, 0.5 = "
                                                   "half-way through epoch 1), whose weights are kept")

    @model_validator(mode="after")
    def _momentum_is_sgd_only(self):
        if self.optimizer == "adam" and self.momentum != 0:
            raise ValueError("momentum applies to optimizer 'sgd' only; set it to 0 for 'adam'")
        return self

    @model_validator(mode="after")
    def _snapshots_within_training(self):
        bad = [p for p in self.snapshots if not 0 <= p <= self.epochs]
        if bad:
            raise ValueError(f"key 'snapshots' = {self.snapshots}: {bad} lie outside training, which runs from 0 "
                             f"to epochs = {self.epochs}; give points between them")
        if len(set(self.snapshots)) != len(self.snapshots) or self.snapshots != sorted(self.snapshots):
            raise ValueError(f"key 'snapshots' = {self.snapshots}: give each point once, in increasing order")
        return self

    def snapshot_steps(self, steps_per_epoch: int) -> list[int]:
        """The optimizer steps after which weights are kept: each snapshot point, and the end of training."""
        if not self.snapshots:
            return []
        steps = [round(p * steps_per_epoch) for p in self.snapshots] + [self.epochs * steps_per_epoch]
        return sorted(set(steps))


class TrainConfig(TrainingKeys):
    """Everything that determines one trained model. Its hash is the cache key."""

    norm: Norm
    seed: int = Field(ge=0, description="initialisation, data order and augmentation")
    lr: LearningRate
    cpu_bf16: bool = Field(False, description="also use bf16 autocast on CPU (fast on avx512_bf16 CPUs)")

    def identity(self) -> dict[str, Any]:
        """The config as the cache keys and records it. A new key at its default is left out, so the
        models cached before it existed keep their keys."""
        data = self.model_dump(mode="json")
        for key, default in (("cpu_portable", False), ("snapshots", [])):
            if data[key] == default:
                data.pop(key)
        if self.cpu_portable:
            data["portable_numerics"] = PORTABLE_NUMERICS
        return data

    @classmethod
    def parse(cls, data: dict[str, Any]) -> "TrainConfig":
        return validated(cls, data, "training config")
