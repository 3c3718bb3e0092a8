"""Seeded, tensor-resident training with a resumable artifact cache.

`get_or_train(config)` returns a trained model. It trains only when the cache
has no valid artifact for the config, resumes a killed run from its last epoch
checkpoint, and rebuilds an artifact whose weights do not match their recorded
checksum. Divergence (a non-finite loss) is a result: the run stops and is
marked ``diverged`` with its epoch.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from scipy import stats
from tqdm import tqdm

from .cache import (  # noqa: F401 (re-exported)
    USABLE,
    Artifact,
    TrainedModel,
    all_finite,
    artifact_dir,
    config_key,
    load_checkpoint,
    model_for,
    save_checkpoint,
    save_snapshot,
)
from .config import PORTABLE_ENV, ConfigError, TrainConfig, steps_per_epoch
from .data import load_dataset, stratified_indices
from .files import console
from .images import ImageData
from .kernels import machine_class
from .models import check_input_shape

EVAL_BATCH = 1000
# A final test accuracy whose one-sided binomial p-value against the majority-class rate is above this
# has not learned anything: the run is "failed", and excluded from every statistic.
CHANCE_P_VALUE = 1e-3


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was asked for but torch sees no CUDA GPU; use device 'auto' or 'cpu'")
    return torch.device(device)


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
    crops = padded[torch.arange(n, device=dev)[:, None, None, None], torch.arange(c, device=dev)[None, :, None, None],
                   rows, cols]
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


def _autocast(device: torch.device, bf16: bool, cpu_bf16: bool = False):
    if bf16 and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    if bf16 and cpu_bf16 and device.type == "cpu":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return nullcontext()


@torch.no_grad()
def evaluate(model: torch.nn.Module, data: ImageData, device: torch.device, *, bf16: bool = False,
             channels_last: bool = False, batch_size: int = EVAL_BATCH, cpu_bf16: bool = False) -> tuple[float, float]:
    """Mean cross-entropy and accuracy over `data`, in eval mode."""
    was_training = model.training
    model.eval()
    images, labels = data.images.to(device), data.labels.to(device)
    loss_sum = torch.zeros((), device=device, dtype=torch.float64)
    correct = torch.zeros((), device=device, dtype=torch.int64)
    for start in range(0, len(labels), batch_size):
        xb = _prepare(data, images[start:start + batch_size], channels_last)
        yb = labels[start:start + batch_size]
        with _autocast(device, bf16, cpu_bf16):
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
def _fresh_model(config: TrainConfig, num_classes: int, device: torch.device):
    torch.manual_seed(config.seed)  # the initial weights
    model = model_for(config, num_classes).to(device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model, make_optimizer(config, model)


def chance_test(accuracy: float, labels: torch.Tensor) -> tuple[float, float]:
    """The majority-class rate of `labels` and the one-sided binomial p-value of `accuracy` exceeding it."""
    counts = torch.bincount(labels)
    chance = counts.max().item() / len(labels)
    correct = int(round(accuracy * len(labels)))
    return chance, float(stats.binomtest(correct, len(labels), chance, alternative="greater").pvalue)


def usability(model: torch.nn.Module, history: list[dict], test_labels: torch.Tensor) -> tuple[str, str]:
    """("complete", "") or ("diverged" | "failed", the reason): what every statistic later relies on."""
    last = history[-1] if history else {}
    for key in ("train_loss", "test_loss"):
        if not math.isfinite(last.get(key, float("nan"))):
            return "diverged", f"{key} is {last.get(key)} at epoch {last.get('epoch')}"
    if not all_finite(model):
        return "diverged", "the trained weights hold non-finite values"
    chance, p = chance_test(last["test_acc"], test_labels)
    if p > CHANCE_P_VALUE:
        return "failed", (f"test accuracy {last['test_acc']:.4f} is not above chance ({chance:.4f}, "
                          f"one-sided binomial p = {p:.2g})")
    return USABLE, ""


def train(config: TrainConfig, train_data: ImageData, test_data: ImageData, *,
          checkpoint: Path | None = None, on_epoch_end: Callable[[int, dict], None] | None = None,
          progress: bool | None = None, snapshot_path: Callable[[int], Path] | None = None) -> TrainedModel:
    """Train one model. With `checkpoint`, save after every epoch and resume from it. With `snapshot_path`, keep
    the weights after each step of `config.snapshot_steps` there (a resumed run re-makes the same ones).

    The run stops at the first epoch whose training or test loss is non-finite
    (status "diverged"); a run that ends with non-finite weights is "diverged"
    too, and one whose test accuracy is not above chance is "failed". Either
    way the reason is recorded and the run is kept as a result.
    """
    device = resolve_device(config.device)
    num_classes = len(train_data.classes)
    model, optimizer = _fresh_model(config, num_classes, device)
    history: list[dict] = []
    start_epoch = 0
    state = load_checkpoint(checkpoint, device) if checkpoint is not None else None
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        history, start_epoch = state["history"], state["epoch"]

    step_model = torch.compile(model) if config.compile else model
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    images, labels = train_data.images.to(device), train_data.labels.to(device)
    n, bs = len(labels), config.batch_size
    steps = steps_per_epoch(n, bs)
    keep = set(config.snapshot_steps(steps)) if snapshot_path is not None else set()
    if 0 in keep and start_epoch == 0:
        save_snapshot(snapshot_path(0), model)  # the initialisation
    stream = console()  # under the runner: a bar on the user's terminal, nothing in a log file
    show = (stream.isatty() if stream is not None else False) if progress is None else progress
    bar = tqdm(total=steps * (config.epochs - start_epoch), disable=not show, file=stream,
               desc=f"{config.arch}/{config.norm}/seed{config.seed}", leave=False)
    non_finite = False
    machine = machine_class() if device.type == "cpu" else torch.cuda.get_device_name(device)  # whose timings
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
                with _autocast(device, config.bf16, config.cpu_bf16):
                    logits = step_model(xb)
                    loss = F.cross_entropy(logits.float(), yb)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if step + 1 in keep:
                    save_snapshot(snapshot_path(step + 1), model)
                # Accumulate on the device: no host sync inside the epoch.
                loss_sum += loss.detach() * len(idx)
                correct += (logits.detach().argmax(1) == yb).sum()
                bar.update(1)
            train_loss = loss_sum.item() / n  # the epoch's one host sync
            record = {"epoch": epoch + 1, "train_loss": train_loss, "train_acc_running": correct.item() / n,
                      "train_seconds": time.perf_counter() - t0}
            record["test_loss"], record["test_acc"] = (float("nan"), float("nan")) if not math.isfinite(train_loss) \
                else evaluate(model, test_data, device, bf16=config.bf16, channels_last=config.channels_last,
                              cpu_bf16=config.cpu_bf16)
            record["seconds"] = time.perf_counter() - t0
            record["machine"] = machine
            history.append(record)
            non_finite = not (math.isfinite(record["train_loss"]) and math.isfinite(record["test_loss"]))
            if checkpoint is not None and not non_finite:
                save_checkpoint(checkpoint, {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                             "history": history, "epoch": epoch + 1})
            if on_epoch_end is not None:
                on_epoch_end(epoch + 1, record)
            if non_finite:
                break
    finally:
        bar.close()

    status, reason = usability(model, history, test_data.labels)
    result = TrainedModel(config, model, history, status, history[-1]["epoch"] if status == "diverged" else None,
                          reason=reason)
    if status != "diverged":
        _, result.train_accuracy = evaluate(model, train_data, device, bf16=config.bf16,
                                            channels_last=config.channels_last, cpu_bf16=config.cpu_bf16)
        result.test_accuracy = history[-1]["test_acc"]
    result.model = model.to("cpu", memory_format=torch.contiguous_format).eval()
    return result


# ------------------------------------------------------------------ cached training
@contextmanager
def portable_cpu(enabled: bool):
    """CPU numerics that do not depend on the CPU model or the thread count, when `enabled`.

    oneDNN picks its convolution kernels by instruction set and cache size,
    MKL splits its sums by thread, and ATen's AVX-512 kernels round otherwise
    than its AVX2 ones; each changes the last bits, and training amplifies them
    (benchmarks/cpu_drift.py). Here convolutions run on ATen's own path (oneDNN
    off), ATen runs its AVX2 kernels, MKL its COMPATIBLE path and OpenBLAS its
    Haswell kernels (PORTABLE_ENV, which must be set before the process starts:
    the runner does that for its kernels and Ray tasks). Measured bit-identical
    across 1 and 2 threads and with oneDNN and MKL capped at AVX2; the weights
    also on an Intel Xeon and an AMD EPYC, the measures within each vendor only
    (tests/portable_reference.py holds both, and what is known).
    """
    if not enabled:
        yield
        return
    missing = {k: v for k, v in PORTABLE_ENV.items() if os.environ.get(k) != v}
    if missing:
        setting = " ".join(f"{k}={v}" for k, v in PORTABLE_ENV.items())
        raise ConfigError(f"key 'cpu_portable' = True needs {setting} in the environment before Python starts "
                          f"(MKL and ATen read it once). The runner sets it for its kernels; for JupyterLab start it "
                          f"as `{setting} make lab`, or set cpu_portable: false")
    if torch.backends.cpu.get_cpu_capability() != "AVX2":
        raise ConfigError(f"key 'cpu_portable' = True runs ATen's AVX2 kernels, but this CPU gives "
                          f"{torch.backends.cpu.get_cpu_capability()!r}: it lacks AVX2, so its bits would differ. "
                          f"Set cpu_portable: false on this machine")
    with warnings.catch_warnings():
        # torch's flags() re-sets every oneDNN option and notes that TF32 is for Intel GPUs: nothing to act on
        warnings.filterwarnings("ignore", message="TF32 acceleration on top of oneDNN", category=UserWarning)
        with torch.backends.mkldnn.flags(enabled=False):
            yield


def get_or_train(config: TrainConfig, data_dir=None, cache_dir=None, *,
                 on_epoch_end: Callable[[int, dict], None] | None = None,
                 progress: bool | None = None, data: tuple[ImageData, ImageData] | None = None) -> TrainedModel:
    """The cached model for `config`, training (or resuming) it first when needed."""
    artifact = Artifact(config, cache_dir)
    with artifact.lock():
        cached = artifact.load()
        if cached is not None:
            return cached
        train_data, test_data = data if data is not None else load_train_test(config, data_dir)
        with portable_cpu(config.cpu_portable and resolve_device(config.device).type == "cpu"):
            result = train(config, train_data, test_data, checkpoint=artifact.checkpoint_path,
                           on_epoch_end=on_epoch_end, progress=progress, snapshot_path=artifact.snapshot_path)
        artifact.save(result, extra={"device": str(resolve_device(config.device))})
        return result
