"""Seeded, tensor-resident training with a resumable artifact cache.

`get_or_train(config)` returns a trained model. It trains only when the cache
has no valid artifact for the config, resumes a killed run from its last epoch
checkpoint, and rebuilds an artifact whose weights do not match their recorded
checksum. Divergence (a non-finite loss) is a result: the run stops and is
marked ``diverged`` with its epoch.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import time
import warnings
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from filelock import FileLock
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from .config import TrainConfig
from .data import ImageData, load_dataset, stratified_indices
from .io import atomic_path, atomic_write_text, file_digest
from .models import build_model, check_input_shape
from .paths import resolve_cache_dir

CACHE_FORMAT = 1
EVAL_BATCH = 1000


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was asked for but torch sees no CUDA GPU; use device 'auto' or 'cpu'")
    return torch.device(device)


@dataclass
class TrainedModel:
    config: TrainConfig
    model: torch.nn.Module  # on CPU, eval mode
    history: list[dict] = field(default_factory=list)
    status: str = "complete"  # or "diverged"
    diverged_epoch: int | None = None
    train_accuracy: float = float("nan")  # clean eval pass over the training set at the end
    test_accuracy: float = float("nan")
    path: Path | None = None
    from_cache: bool = False

    @property
    def diverged(self) -> bool:
        return self.status == "diverged"

    @property
    def name(self) -> str:
        return f"{self.config.arch}/{self.config.norm}/seed{self.config.seed}"


# ------------------------------------------------------------------ data on device
def augment_batch(images: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random crop after zero padding, then random horizontal flip, batched on the images' device."""
    n, c, h, w = images.shape
    dev = images.device
    padded = F.pad(images, (pad, pad, pad, pad))
    top = torch.randint(0, 2 * pad + 1, (n,), generator=generator, device=dev)
    left = torch.randint(0, 2 * pad + 1, (n,), generator=generator, device=dev)
    rows = (top[:, None] + torch.arange(h, device=dev))[:, None, :, None]
    cols = (left[:, None] + torch.arange(w, device=dev))[:, None, None, :]
    crops = padded[torch.arange(n, device=dev)[:, None, None, None], torch.arange(c, device=dev)[None, :, None, None], rows, cols]
    flip = torch.rand(n, generator=generator, device=dev) < 0.5
    return torch.where(flip[:, None, None, None], crops.flip(3), crops)


def _epoch_generator(seed: int, epoch: int, device: torch.device) -> torch.Generator:
    # Derived from (seed, epoch) alone, so a resumed run draws what an uninterrupted one would.
    g = torch.Generator(device=device)
    g.manual_seed(seed * 1_000_003 + epoch)
    return g


def _prepare(data: ImageData, images: torch.Tensor, channels_last: bool) -> torch.Tensor:
    x = data.normalise(images)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def _autocast(device: torch.device, bf16: bool):
    if bf16 and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


@torch.no_grad()
def evaluate(model: torch.nn.Module, data: ImageData, device: torch.device, *, bf16: bool = False,
             channels_last: bool = False, batch_size: int = EVAL_BATCH) -> tuple[float, float]:
    """Mean cross-entropy and accuracy over `data`, in eval mode."""
    was_training = model.training
    model.eval()
    images, labels = data.images.to(device), data.labels.to(device)
    loss_sum = torch.zeros((), device=device, dtype=torch.float64)
    correct = torch.zeros((), device=device, dtype=torch.int64)
    for start in range(0, len(labels), batch_size):
        xb = _prepare(data, images[start:start + batch_size], channels_last)
        yb = labels[start:start + batch_size]
        with _autocast(device, bf16):
            logits = model(xb)
        loss_sum += F.cross_entropy(logits.float(), yb, reduction="sum")
        correct += (logits.argmax(1) == yb).sum()
    model.train(was_training)
    return loss_sum.item() / len(labels), correct.item() / len(labels)


def lr_at(config: TrainConfig, step: int, total_steps: int) -> float:
    if config.lr_schedule == "cosine":
        return config.lr * 0.5 * (1.0 + math.cos(math.pi * step / total_steps))
    return config.lr


def make_optimizer(config: TrainConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                               weight_decay=config.weight_decay)
    return torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)


def load_train_test(config: TrainConfig, data_dir=None) -> tuple[ImageData, ImageData]:
    train = load_dataset(config.dataset, "train", data_dir)
    test = load_dataset(config.dataset, "test", data_dir)
    if config.train_subset is not None and config.train_subset < len(train):
        train = train.subset(stratified_indices(train.labels, config.train_subset, seed=0))
    check_input_shape(config.arch, train.images)
    return train, test


# ------------------------------------------------------------------ the loop
def train(config: TrainConfig, train_data: ImageData, test_data: ImageData, *,
          checkpoint: Path | None = None, on_epoch_end: Callable[[int, dict], None] | None = None,
          progress: bool | None = None) -> TrainedModel:
    """Train one model. With `checkpoint`, save after every epoch and resume from it."""
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)  # the initial weights
    model = build_model(config.arch, config.norm, num_classes=len(train_data.classes)).to(device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(config, model)
    history: list[dict] = []
    start_epoch, status, diverged_epoch = 0, "complete", None

    if checkpoint is not None and checkpoint.is_file():
        try:
            state = torch.load(checkpoint, map_location=device, weights_only=True)
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            history, start_epoch = state["history"], state["epoch"]
        except Exception as exc:  # a truncated checkpoint is worth nothing: start again
            warnings.warn(f"ignoring unreadable checkpoint {checkpoint}: {exc}")
            torch.manual_seed(config.seed)
            model = build_model(config.arch, config.norm, len(train_data.classes)).to(device)
            if config.channels_last:
                model = model.to(memory_format=torch.channels_last)
            optimizer = make_optimizer(config, model)
            history, start_epoch = [], 0

    step_model = torch.compile(model) if config.compile else model
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    images, labels = train_data.images.to(device), train_data.labels.to(device)
    n, bs = len(labels), config.batch_size
    steps = math.ceil(n / bs)
    bar = tqdm(total=steps * (config.epochs - start_epoch), disable=(None if progress is None else not progress),
               desc=f"{config.arch}/{config.norm}/seed{config.seed}", leave=False)
    try:
        for epoch in range(start_epoch, config.epochs):
            t0 = time.perf_counter()
            model.train()
            gen_cpu = _epoch_generator(config.seed, epoch, torch.device("cpu"))
            gen_dev = gen_cpu if device.type == "cpu" else _epoch_generator(config.seed, epoch, device)
            order = torch.randperm(n, generator=gen_cpu).to(device)
            loss_sum = torch.zeros((), device=device, dtype=torch.float64)
            correct = torch.zeros((), device=device, dtype=torch.int64)
            for step, start in enumerate(range(0, n, bs), start=epoch * steps):
                for group in optimizer.param_groups:  # a pure function of the step: resumes exactly
                    group["lr"] = lr_at(config, step, steps * config.epochs)
                idx = order[start:start + bs]
                xb, yb = images[idx], labels[idx]
                if config.augment:
                    xb = augment_batch(xb, gen_dev)
                xb = _prepare(train_data, xb, config.channels_last)
                with _autocast(device, config.bf16):
                    logits = step_model(xb)
                    loss = F.cross_entropy(logits.float(), yb)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                # Accumulate on the device: no host sync inside the epoch.
                loss_sum += loss.detach() * len(idx)
                correct += (logits.detach().argmax(1) == yb).sum()
                bar.update(1)
            train_loss = loss_sum.item() / n  # the epoch's one host sync
            record = {"epoch": epoch + 1, "train_loss": train_loss, "train_acc_running": correct.item() / n,
                      "train_seconds": time.perf_counter() - t0}
            if not math.isfinite(train_loss):
                status, diverged_epoch = "diverged", epoch + 1
                record.update(test_loss=float("nan"), test_acc=float("nan"))
            else:
                record["test_loss"], record["test_acc"] = evaluate(
                    model, test_data, device, bf16=config.bf16, channels_last=config.channels_last)
            record["seconds"] = time.perf_counter() - t0
            history.append(record)
            if checkpoint is not None and status == "complete":
                with atomic_path(checkpoint) as tmp:
                    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                "history": history, "epoch": epoch + 1}, tmp)
            if on_epoch_end is not None:
                on_epoch_end(epoch + 1, record)
            if status == "diverged":
                break
    finally:
        bar.close()

    result = TrainedModel(config, model, history, status, diverged_epoch)
    if status == "complete":
        _, result.train_accuracy = evaluate(model, train_data, device, bf16=config.bf16,
                                            channels_last=config.channels_last)
        result.test_accuracy = history[-1]["test_acc"]
    result.model = model.to("cpu", memory_format=torch.contiguous_format).eval()
    return result


# ------------------------------------------------------------------ artifact cache
def config_key(config: TrainConfig) -> str:
    """Hash of the full validated config, the cache format and the architecture's definition."""
    spec = {"config": config.model_dump(mode="json"), "format": CACHE_FORMAT,
            "model": repr(build_model(config.arch, config.norm))}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def artifact_dir(config: TrainConfig, cache_dir=None) -> Path:
    c = config
    return resolve_cache_dir(cache_dir) / "models" / f"{c.dataset}-{c.arch}-{c.norm}-seed{c.seed}-{config_key(c)}"


def _load_artifact(config: TrainConfig, folder: Path) -> TrainedModel | None:
    meta_path, weights_path = folder / "meta.json", folder / "weights.safetensors"
    if not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text())
        if meta["config"] != config.model_dump(mode="json"):
            raise ValueError("config in meta.json differs from the one asked for")
        if file_digest(weights_path) != meta["weights_sha256"]:
            raise ValueError("weights do not match their recorded sha256")
        model = build_model(config.arch, config.norm)
        model.load_state_dict(load_file(weights_path))  # safetensors: tensors only, no code
    except Exception as exc:
        warnings.warn(f"cached model in {folder} is corrupt ({exc}); rebuilding it")
        for p in (meta_path, weights_path):
            p.unlink(missing_ok=True)
        return None
    return TrainedModel(config, model.eval(), meta["history"], meta["status"], meta["diverged_epoch"],
                        meta["train_accuracy"], meta["test_accuracy"], folder, from_cache=True)


def get_or_train(config: TrainConfig, data_dir=None, cache_dir=None, *,
                 on_epoch_end: Callable[[int, dict], None] | None = None,
                 progress: bool | None = None, data: tuple[ImageData, ImageData] | None = None) -> TrainedModel:
    """The cached model for `config`, training (or resuming) it first when needed.

    A file lock makes concurrent callers for the same config wait for one
    another instead of writing the same files.
    """
    folder = artifact_dir(config, cache_dir)
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder) + ".lock"):
        cached = _load_artifact(config, folder)
        if cached is not None:
            return cached
        train_data, test_data = data if data is not None else load_train_test(config, data_dir)
        checkpoint = folder / "checkpoint.pt"
        result = train(config, train_data, test_data, checkpoint=checkpoint,
                       on_epoch_end=on_epoch_end, progress=progress)
        state = {k: v.contiguous() for k, v in result.model.state_dict().items()}
        with atomic_path(folder / "weights.safetensors") as tmp:
            save_file(state, str(tmp))
        meta = {"config": config.model_dump(mode="json"), "status": result.status,
                "diverged_epoch": result.diverged_epoch, "history": result.history,
                "train_accuracy": result.train_accuracy, "test_accuracy": result.test_accuracy,
                "weights_sha256": file_digest(folder / "weights.safetensors"),
                "torch": torch.__version__, "device": str(resolve_device(config.device))}
        # meta.json is written last: its presence marks a complete artifact.
        atomic_write_text(folder / "meta.json", json.dumps(meta, indent=1, allow_nan=True))
        checkpoint.unlink(missing_ok=True)
        result.path = folder
        return result


def clear_results(folder: Path) -> None:
    shutil.rmtree(folder / "results", ignore_errors=True)
