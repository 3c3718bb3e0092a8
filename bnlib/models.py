"""The paper's networks, with the normalisation layer as a parameter.

`build_model("cnn4", "batch")` and `build_model("cnn4", "none")` are the same
network but for BatchNorm between each conv and its ReLU. Every ReLU is its own
module (never in-place), and every hidden layer has a stable name, `conv1`...,
`fc1`, because representations, CSVs and figures are keyed by those names.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable

import torch
from torch import nn

# One string-keyed factory: adding GroupNorm or LayerNorm is one line here.
NORM_LAYERS: dict[str, Callable[[int], nn.Module]] = {
    "batch": nn.BatchNorm2d,
    "none": lambda channels: nn.Identity(),
}

# Widths are assumptions (the paper does not list them); see README "Assumptions".
CNN4_WIDTHS = (32, 32, 64, 64)  # conv1..conv4; max-pool after conv2 and conv4
CNN4_HIDDEN = 128  # fc1
VGG16_WIDTHS = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
VGG16_HIDDEN = 512  # fc1 of the CIFAR head

ARCHS = ("cnn4", "vgg16")
INPUT_SHAPES = {"cnn4": (1, 28, 28), "vgg16": (3, 32, 32)}


def create_norm(norm: str, channels: int) -> nn.Module:
    try:
        factory = NORM_LAYERS[norm]
    except KeyError:
        raise ValueError(f"unknown norm {norm!r}; valid choices: {', '.join(NORM_LAYERS)}") from None
    return factory(channels)


class ConvBlock(nn.Sequential):
    """conv 3x3 -> norm -> ReLU. The block's output is the layer's representation."""

    def __init__(self, in_channels: int, out_channels: int, norm: str):
        # A conv followed by BatchNorm needs no bias: BN's shift replaces it.
        super().__init__(OrderedDict(
            conv=nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=(norm == "none")),
            norm=create_norm(norm, out_channels),
            relu=nn.ReLU(inplace=False),
        ))


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


def build_model(arch: str, norm: str, num_classes: int = 10) -> nn.Sequential:
    """The paper's MNIST CNN (`cnn4`) or VGG-16 for 32x32 inputs (`vgg16`)."""
    if norm not in NORM_LAYERS:
        raise ValueError(f"unknown norm {norm!r}; valid choices: {', '.join(NORM_LAYERS)}")
    if arch == "cnn4":
        a, b, c, d = CNN4_WIDTHS
        layers = _conv_stack(1, (a, b, "M", c, d, "M"), norm)
        flat, hidden = d * 7 * 7, CNN4_HIDDEN
    elif arch == "vgg16":
        layers = _conv_stack(3, VGG16_WIDTHS, norm)
        flat, hidden = 512, VGG16_HIDDEN
    else:
        raise ValueError(f"unknown arch {arch!r}; valid choices: {', '.join(ARCHS)}")
    layers["flatten"] = nn.Flatten()
    layers["fc1"] = DenseBlock(flat, hidden)
    layers["fc2"] = nn.Linear(hidden, num_classes)  # logits: not a hidden representation
    return nn.Sequential(layers)


def hidden_layers(model: nn.Module) -> "OrderedDict[str, nn.Module]":
    """Layer name -> the ReLU module whose output is that layer's representation."""
    return OrderedDict((name, block.relu) for name, block in model.named_children()
                       if isinstance(block, (ConvBlock, DenseBlock)))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def check_input_shape(arch: str, images: torch.Tensor) -> None:
    want = INPUT_SHAPES[arch]
    if tuple(images.shape[1:]) != want:
        raise ValueError(f"arch {arch!r} takes images of shape {want}, got {tuple(images.shape[1:])}; "
                         f"use cnn4 for MNIST and vgg16 for CIFAR-10")
