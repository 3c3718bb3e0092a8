import pytest
import torch

from bnlib.hooks import capture_all, capture_layer, iter_representations, select_layers
from bnlib.models import build_model, hidden_layers


def identity(x):
    return x.float()


@pytest.fixture
def model_and_images():
    torch.manual_seed(0)
    model = build_model("cnn4", "batch")
    model.train()
    images = torch.randint(0, 256, (37, 1, 28, 28), dtype=torch.uint8)
    return model, images


def manual_post_relu(model, x):
    """Walk the network by hand: the reference the hooks must reproduce."""
    out = {}
    model.eval()
    with torch.no_grad():
        for name, block in model.named_children():
            x = block(x)
            if name in hidden_layers(model):
                out[name] = x
    return out


def test_capture_matches_a_manual_forward_and_restores_train_mode(model_and_images):
    model, images = model_and_images
    got = capture_all(model, images, identity, batch_size=10)
    assert model.training  # mode restored
    want = manual_post_relu(model, identity(images))
    assert list(got) == ["conv1", "conv2", "conv3", "conv4", "fc1"]
    for name in got:
        assert torch.allclose(got[name], want[name], atol=1e-5)
        assert got[name].min() >= 0 and not got[name].requires_grad
    assert got["conv1"].shape == (37, 32, 28, 28) and got["fc1"].shape == (37, 128)


def test_streaming_equals_keep_everything(model_and_images):
    model, images = model_and_images
    everything = capture_all(model, images, identity, batch_size=16)
    streamed = dict(iter_representations(model, images, identity, ["conv2", "fc1"], batch_size=16))
    assert list(streamed) == ["conv2", "fc1"]
    for name, acts in streamed.items():
        assert torch.equal(acts, everything[name])  # same batches: bit-identical
    other_batches = dict(iter_representations(model, images, identity, ["fc1"], batch_size=7))
    assert torch.allclose(other_batches["fc1"], everything["fc1"], atol=1e-5)  # BLAS rounding differs by batch


def test_float16_storage(model_and_images):
    model, images = model_and_images
    half = capture_layer(model, images, identity, "conv3", dtype=torch.float16)
    full = capture_layer(model, images, identity, "conv3")
    assert half.dtype == torch.float16 and torch.allclose(half.float(), full, rtol=1e-2, atol=1e-2)


def test_hooks_are_removed_even_on_error(model_and_images):
    model, images = model_and_images

    def broken(x):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        capture_all(model, images, broken)
    assert all(not m._forward_hooks for m in model.modules())
    assert model.training


def test_unknown_layer_lists_the_valid_ones(model_and_images):
    model, _ = model_and_images
    with pytest.raises(ValueError, match=r"conv9.*'conv1', 'conv2'"):
        select_layers(model, ["conv9"])
