"""The paper's networks, with the normalisation layer, width and initialisation as parameters.

`build_model("cnn4", "batch")` and `build_model("cnn4", "none")` are the same
network but for BatchNorm between each conv and its ReLU. Every ReLU is its own
module (never in-place), and every hidden layer has a stable name, `conv1`...,
`fc1`, because representations, CSVs and figures are keyed by those names. The
representation of a layer is always its ReLU's output.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from functools import lru_cache
from typing import Callable

import torch
from torch import nn


def _group_count(channels: int, most: int = 8) -> int:
    """The largest divisor of `channels` that is <= `most` (GroupNorm needs groups | channels)."""
    return max(g for g in range(1, min(most, channels) + 1) if channels % g == 0)


# One string-keyed factory: a normalisation is a parameter, not a copy of the model.
NORM_LAYERS: dict[str, Callable[[int], nn.Module]] = {
    "batch": nn.BatchNorm2d,
    "none": lambda channels: nn.Identity(),
    "batch_noaffine": lambda channels: nn.BatchNorm2d(channels, affine=False),
    "batch_after_relu": nn.BatchNorm2d,
    "group": lambda channels: nn.GroupNorm(_group_count(channels), channels),
    "layer": lambda channels: nn.GroupNorm(1, channels),
    "instance": lambda channels: nn.GroupNorm(channels, channels),
}
NORMS = tuple(NORM_LAYERS)
# Norms after which a conv bias is redundant: a learned shift follows, or BN's per-channel mean
# subtraction cancels it. GroupNorm with fewer groups than channels only cancels a group's mean,
# but its own learned shift (beta) replaces the bias. batch_after_relu has a ReLU in between: keep it.
BIAS_FREE_NORMS = {"batch", "batch_noaffine", "group", "layer", "instance"}
NORMS_AFTER_RELU = {"batch_after_relu"}
# How tables, figures and sentences name each norm.
NORM_LABELS = {"batch": "BN", "none": "no BN", "batch_noaffine": "BN, no affine", "batch_after_relu": "BN after ReLU",
               "group": "GroupNorm", "layer": "LayerNorm", "instance": "InstanceNorm"}

INITS = ("pytorch", "vgg")

# Widths are assumptions (the paper does not list them); see README "Assumptions".
CNN4_WIDTHS = (32, 32, 64, 64)  # conv1..conv4; max-pool after conv2 and conv4
CNN4_HIDDEN = 128  # fc1
VGG16_WIDTHS = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
VGG16_HIDDEN = 512  # fc1 of the CIFAR head
MIN_WIDTH = 4  # the narrowest layer a width multiplier may produce

ARCHS = ("cnn4", "vgg16")
INPUT_SHAPES = {"cnn4": (1, 28, 28), "vgg16": (3, 32, 32)}


def create_norm(norm: str, channels: int) -> nn.Module:
    try:
        factory = NORM_LAYERS[norm]
    except KeyError:
        raise ValueError(f"unknown norm {norm!r}; valid choices: {', '.join(NORM_LAYERS)}") from None
    return factory(channels)


def scaled(channels: int, width: float) -> int:
    """`channels` times the width multiplier, rounded to whole channels, at least MIN_WIDTH."""
    return max(MIN_WIDTH, int(round(channels * width)))


class ConvBlock(nn.Sequential):
    """conv 3x3 -> norm -> ReLU (or conv -> ReLU -> norm). The ReLU's output is the layer's representation.

    With `batch_after_relu` the norm follows the ReLU, and the captured
    representation is still the ReLU's output, before the norm: sparsity is
    then measured on the same kind of tensor as for every other norm.
    """

    def __init__(self, in_channels: int, out_channels: int, norm: str):
        conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=norm not in BIAS_FREE_NORMS)
        norm_layer, relu = create_norm(norm, out_channels), nn.ReLU(inplace=False)
        order = [("conv", conv), ("relu", relu), ("norm", norm_layer)] if norm in NORMS_AFTER_RELU else \
            [("conv", conv), ("norm", norm_layer), ("relu", relu)]
        super().__init__(OrderedDict(order))


class DenseBlock(nn.Sequential):
    def __init__(self, in_features: int, out_features: int):
        super().__init__(OrderedDict(linear=nn.Linear(in_features, out_features),
                                     relu=nn.ReLU(inplace=False)))


def _conv_stack(in_channels: int, widths, norm: str) -> "OrderedDict[str, nn.Module]":
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    n_conv = n_pool = 0
    for w in widths:
        if w == "M":
            n_pool += 1
            layers[f"pool{n_pool}"] = nn.MaxPool2d(2)
        else:
            n_conv += 1
            layers[f"conv{n_conv}"] = ConvBlock(in_channels, w, norm)
            in_channels = w
    return layers


def init_vgg_(model: nn.Module) -> nn.Module:
    """torchvision's VGG initialisation: kaiming-normal (fan_out, relu) convs, N(0, 0.01) linear, zero biases."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)) and m.weight is not None:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return model


def build_model(arch: str, norm: str, num_classes: int = 10, width: float = 1.0,
                init: str = "pytorch") -> nn.Sequential:
    """The paper's MNIST CNN (`cnn4`) or VGG-16 for 32x32 inputs (`vgg16`).

    `width` multiplies every conv width and the hidden FC width (1.0 = 32-32-64-64 / 128 for cnn4,
    64...512 / 512 for VGG-16); depth, pools and layer names never change. `init` is `pytorch`
    (each layer's default) or `vgg` (torchvision's VGG scheme, see `init_vgg_`).
    """
    if norm not in NORM_LAYERS:
        raise ValueError(f"unknown norm {norm!r}; valid choices: {', '.join(NORM_LAYERS)}")
    if not (isinstance(width, (int, float)) and math.isfinite(width) and 0 < width <= 4):
        raise ValueError(f"width {width!r} must be a number in (0, 4]; 1.0 is the standard network")
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; valid choices: {', '.join(INITS)}")
    if arch == "cnn4":
        a, b, c, d = (scaled(w, width) for w in CNN4_WIDTHS)
        layers = _conv_stack(1, (a, b, "M", c, d, "M"), norm)
        flat, hidden = d * 7 * 7, scaled(CNN4_HIDDEN, width)
    elif arch == "vgg16":
        widths = [w if w == "M" else scaled(w, width) for w in VGG16_WIDTHS]
        layers = _conv_stack(3, widths, norm)
        flat, hidden = widths[-2], scaled(VGG16_HIDDEN, width)
    else:
        raise ValueError(f"unknown arch {arch!r}; valid choices: {', '.join(ARCHS)}")
    layers["flatten"] = nn.Flatten()
    layers["fc1"] = DenseBlock(flat, hidden)
    layers["fc2"] = nn.Linear(hidden, num_classes)  # logits: not a hidden representation
    model = nn.Sequential(layers)
    return init_vgg_(model) if init == "vgg" else model


def hidden_layers(model: nn.Module) -> "OrderedDict[str, nn.Module]":
    """Layer name -> the ReLU module whose output is that layer's representation."""
    return OrderedDict((name, block.relu) for name, block in model.named_children()
                       if isinstance(block, (ConvBlock, DenseBlock)))


@lru_cache(maxsize=None)
def hidden_layer_names(arch: str) -> tuple[str, ...]:
    """The names of `arch`'s hidden layers, in order, read off a narrow copy of the network itself."""
    return tuple(hidden_layers(build_model(arch, "none", width=0.01)))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def check_input_shape(arch: str, images: torch.Tensor) -> None:
    want = INPUT_SHAPES[arch]
    if tuple(images.shape[1:]) != want:
        raise ValueError(f"arch {arch!r} takes images of shape {want}, got {tuple(images.shape[1:])}; "
                         f"use cnn4 for MNIST and vgg16 for CIFAR-10")
