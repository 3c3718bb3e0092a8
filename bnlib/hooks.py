"""Capture post-ReLU representations of hidden layers.

Two paths:
- `capture_all` keeps every requested layer in memory at once: simple, and
  what a naive implementation does. For VGG-16 on 5,000 CIFAR images that is
  about 5.5 GB of float32.
- `iter_representations` streams one layer at a time. For each layer it runs
  the model over the samples in batches, keeps only that layer's output, and
  stops the forward pass right after it. Peak memory is one layer's matrix plus
  one batch. Earlier layers are recomputed per layer, which is cheap next to
  the metrics that consume the matrix.
Both run the model in eval mode under `no_grad`, detach, and remove their
hooks even when an exception is raised.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Sequence

import torch
from torch import nn

from .models import hidden_layers

DEFAULT_BATCH = 500


class _StopForward(Exception):
    """Raised by a hook once the wanted layer has been seen: the rest of the net is not needed."""


def select_layers(model: nn.Module, layers: Sequence[str] | str | None = None) -> list[str]:
    available = list(hidden_layers(model))
    if layers is None or layers == "all":
        return available
    if isinstance(layers, str):
        layers = [layers]
    unknown = [name for name in layers if name not in available]
    if unknown:
        raise ValueError(f"unknown layer(s) {unknown}; this model's hidden layers are {available}")
    return [name for name in available if name in layers]  # network order


@contextmanager
def _eval_mode(model: nn.Module):
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


@contextmanager
def _hooks(modules: dict[str, nn.Module], sink, stop_after: str | None = None):
    handles = []

    def make(name):
        def hook(_module, _inputs, output):
            sink(name, output.detach())
            if name == stop_after:
                raise _StopForward
        return hook

    try:
        for name, module in modules.items():
            handles.append(module.register_forward_hook(make(name)))
        yield
    finally:
        for h in handles:
            h.remove()


def _batches(images: torch.Tensor, normalise, device, batch_size: int):
    for start in range(0, len(images), batch_size):
        yield normalise(images[start:start + batch_size].to(device))


def capture_all(model: nn.Module, images: torch.Tensor, normalise, layers=None, *,
                device: str | torch.device = "cpu", batch_size: int = DEFAULT_BATCH,
                dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    """Every requested layer's representations at once: {layer: [N, ...]} on CPU, from one forward pass. The
    training dynamics use it on their small snapshot set; the final models' measures capture one layer at a time
    (`capture_layer`), so that only one layer of the full measured set is ever in memory."""
    names = select_layers(model, layers)
    modules = {n: m for n, m in hidden_layers(model).items() if n in names}
    chunks: dict[str, list[torch.Tensor]] = {n: [] for n in names}
    model = model.to(device)
    with _eval_mode(model), _hooks(modules, lambda n, out: chunks[n].append(out.to("cpu", dtype)), names[-1]):
        for xb in _batches(images, normalise, device, batch_size):
            try:
                model(xb)
            except _StopForward:
                pass
    return {n: torch.cat(c) for n, c in chunks.items()}


def capture_layer(model: nn.Module, images: torch.Tensor, normalise, layer: str, *,
                  device: str | torch.device = "cpu", batch_size: int = DEFAULT_BATCH,
                  dtype: torch.dtype = torch.float32, out_device: str | torch.device | None = None) -> torch.Tensor:
    """One layer's representations `[N, ...]`, preallocated so no concatenation doubles the peak."""
    select_layers(model, [layer])
    module = hidden_layers(model)[layer]
    out_device = torch.device(device if out_device is None else out_device)
    result: torch.Tensor | None = None
    filled = 0

    def sink(_name, out):
        nonlocal result, filled
        if result is None:
            result = torch.empty((len(images), *out.shape[1:]), dtype=dtype, device=out_device)
        result[filled:filled + len(out)] = out.to(out_device, dtype)
        filled += len(out)

    model = model.to(device)
    with _eval_mode(model), _hooks({layer: module}, sink, stop_after=layer):
        for xb in _batches(images, normalise, device, batch_size):
            try:
                model(xb)
            except _StopForward:
                pass
    assert result is not None and filled == len(images)
    return result


def iter_representations(model: nn.Module, images: torch.Tensor, normalise, layers=None, *,
                         device: str | torch.device = "cpu", batch_size: int = DEFAULT_BATCH,
                         dtype: torch.dtype = torch.float32) -> Iterator[tuple[str, torch.Tensor]]:
    """Yield `(layer, [N, ...])` one layer at a time, in network order, on `device`."""
    for name in select_layers(model, layers):
        yield name, capture_layer(model, images, normalise, name, device=device,
                                  batch_size=batch_size, dtype=dtype)
