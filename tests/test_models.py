import pytest
import torch
from torch import nn

from bnlib.models import INPUT_SHAPES, build_model, count_parameters, create_norm, hidden_layers

CNN4_LAYERS = ["conv1", "conv2", "conv3", "conv4", "fc1"]
VGG16_LAYERS = [f"conv{i}" for i in range(1, 14)] + ["fc1"]


@pytest.mark.parametrize("arch,layers", [("cnn4", CNN4_LAYERS), ("vgg16", VGG16_LAYERS)])
@pytest.mark.parametrize("norm", ["batch", "none"])
def test_shapes_and_layer_names(arch, layers, norm):
    model = build_model(arch, norm).eval()
    out = model(torch.zeros(3, *INPUT_SHAPES[arch]))
    assert out.shape == (3, 10)
    assert list(hidden_layers(model)) == layers
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    assert len(relus) == len(layers) and not any(r.inplace for r in relus)
    assert len({id(r) for r in relus}) == len(relus)  # one module per layer, never shared
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(bns) == (len(layers) - 1 if norm == "batch" else 0)


@pytest.mark.parametrize("arch,expected_none,conv_channels", [
    ("cnn4", 467_818, 32 + 32 + 64 + 64),
    ("vgg16", 14_982_474, 2 * 64 + 2 * 128 + 3 * 256 + 6 * 512),
])
def test_parameter_counts(arch, expected_none, conv_channels):
    none, batch = count_parameters(build_model(arch, "none")), count_parameters(build_model(arch, "batch"))
    assert none == expected_none
    # BN adds gamma and beta per channel and drops the conv bias it makes redundant
    assert batch - none == conv_channels


def test_batchnorm_sits_between_conv_and_relu():
    block = build_model("cnn4", "batch").conv1
    assert [type(m) for m in block] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU]


@pytest.mark.parametrize("kwargs,match", [
    (dict(arch="resnet", norm="batch"), r"unknown arch 'resnet'.*cnn4, vgg16"),
    (dict(arch="cnn4", norm="layer"), r"unknown norm 'layer'.*batch, none"),
])
def test_bad_arch_or_norm(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_model(**kwargs)


def test_norm_factory_is_keyed():
    assert isinstance(create_norm("batch", 8), nn.BatchNorm2d)
    assert isinstance(create_norm("none", 8), nn.Identity)
