import pytest
import torch
from torch import nn

from bnlib.hooks import capture_all
from bnlib.models import NORMS, INPUT_SHAPES, build_model, count_parameters, create_norm, hidden_layers

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
    (dict(arch="cnn4", norm="weight"), r"unknown norm 'weight'.*batch, none, batch_noaffine, batch_after_relu, "
                                       r"group, layer, instance"),
    (dict(arch="vgg16", norm="batch", width=0), r"width 0 must be a number in \(0, 4\]"),
    (dict(arch="vgg16", norm="batch", width=4.5), r"width 4.5"),
    (dict(arch="cnn4", norm="batch", init="xavier"), r"unknown init 'xavier'.*pytorch, vgg"),
])
def test_bad_arch_or_norm(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_model(**kwargs)


def test_norm_factory_is_keyed():
    assert isinstance(create_norm("batch", 8), nn.BatchNorm2d)
    assert isinstance(create_norm("none", 8), nn.Identity)


# (norm layer type, norms per conv, conv has a bias)
NORM_SPEC = {"batch": (nn.BatchNorm2d, 1, False), "none": (None, 0, True), "batch_noaffine": (nn.BatchNorm2d, 1, False),
             "batch_after_relu": (nn.BatchNorm2d, 1, True), "group": (nn.GroupNorm, 1, False),
             "layer": (nn.GroupNorm, 1, False), "instance": (nn.GroupNorm, 1, False)}


@pytest.mark.parametrize("arch,layers", [("cnn4", CNN4_LAYERS), ("vgg16", VGG16_LAYERS)])
@pytest.mark.parametrize("norm", NORMS)
def test_every_norm_builds_counts_its_layers_and_captures_post_relu(arch, layers, norm):
    assert set(NORM_SPEC) == set(NORMS)
    kind, per_conv, bias = NORM_SPEC[norm]
    model = build_model(arch, norm, width=0.25 if arch == "vgg16" else 1.0)
    n_conv = len(layers) - 1
    norm_layers = [m for m in model.modules() if isinstance(m, (nn.BatchNorm2d, nn.GroupNorm))]
    assert len(norm_layers) == per_conv * n_conv and all(isinstance(m, kind) for m in norm_layers)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert all((c.bias is not None) == bias for c in convs)
    assert list(hidden_layers(model)) == layers
    torch.manual_seed(0)
    images = torch.randint(0, 256, (6, *INPUT_SHAPES[arch]), dtype=torch.uint8)
    model.train()
    model(images.float() / 255)  # one training step's statistics, so BN's running stats are not trivial
    acts = capture_all(model, images, lambda x: x.float() / 255 - 0.5, batch_size=3)
    assert list(acts) == layers
    for name, a in acts.items():
        assert a.min() >= 0, f"{norm}/{name} is not a post-ReLU tensor"
        assert (a == 0).any(), f"{norm}/{name}: a ReLU output has zeros"


def test_norm_details():
    assert not create_norm("batch_noaffine", 8).affine and create_norm("batch", 8).affine
    assert create_norm("group", 64).num_groups == 8 and create_norm("group", 12).num_groups == 6
    assert create_norm("group", 4).num_groups == 4 and create_norm("layer", 64).num_groups == 1
    assert create_norm("instance", 16).num_groups == 16
    block = build_model("cnn4", "batch_after_relu").conv1
    assert [type(m) for m in block] == [nn.Conv2d, nn.ReLU, nn.BatchNorm2d]
    assert [type(m) for m in build_model("cnn4", "layer").conv2] == [nn.Conv2d, nn.GroupNorm, nn.ReLU]


@pytest.mark.parametrize("width,convs,fc", [(1.0, [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512], 512),
                                            (0.25, [16, 16, 32, 32, 64, 64, 64, 128, 128, 128, 128, 128, 128], 128),
                                            (0.01, [4] * 7 + [5] * 6, 5)])
def test_vgg16_width_multiplier_keeps_depth_pools_and_names(width, convs, fc):
    model = build_model("vgg16", "batch", width=width)
    assert [b.conv.out_channels for b in model if hasattr(b, "conv")] == convs
    assert model.fc1.linear.out_features == fc
    assert sum(isinstance(m, nn.MaxPool2d) for m in model) == 5
    assert list(hidden_layers(model)) == VGG16_LAYERS
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_vgg_init_scheme():
    torch.manual_seed(0)
    model = build_model("vgg16", "none", width=0.5, init="vgg")
    conv = model.conv5.conv
    fan_out = conv.out_channels * 9
    assert conv.weight.std().item() == pytest.approx((2 / fan_out) ** 0.5, rel=0.05)
    assert torch.all(conv.bias == 0) and torch.all(model.fc1.linear.bias == 0)
    assert model.fc1.linear.weight.std().item() == pytest.approx(0.01, rel=0.1)
    torch.manual_seed(0)
    default = build_model("vgg16", "none", width=0.5)
    assert not torch.equal(default.conv5.conv.weight, conv.weight)
