import numpy as np
import pytest
import torch
from sklearn.metrics import silhouette_score as sk_silhouette

from bnlib.metrics import channel_sparsity, dead_channels, element_sparsity, silhouette_score, spatial_mean_pool


def test_all_zero_and_partly_zero_channels():
    acts = torch.zeros(2, 4, 3, 3)
    acts[0, 1] = 1.0            # sample 0: channel 1 fully active
    acts[0, 2, 0, 0] = 0.5      # sample 0: channel 2 has one non-zero pixel: not a zero channel
    acts[1, 3, 1:, :] = 2.0     # sample 1: channel 3 partly zero: still not a zero channel
    assert channel_sparsity(acts).tolist() == [0.5, 0.75]
    assert element_sparsity(acts).tolist() == pytest.approx([1 - 10 / 36, 1 - 6 / 36])
    assert dead_channels(acts) == 0.25  # channel 0 is zero for both samples


def test_single_nonzero_pixel():
    acts = torch.zeros(1, 8, 5, 5)
    acts[0, 7, 4, 4] = 1e-6
    assert channel_sparsity(acts).item() == 7 / 8
    assert element_sparsity(acts).item() == pytest.approx(1 - 1 / 200)
    assert dead_channels(acts) == 7 / 8


def test_fc_inputs_treat_a_unit_as_a_channel():
    acts = torch.tensor([[0.0, 1.0, 0.0, 3.0], [0.0, 0.0, 0.0, 0.0]])
    assert channel_sparsity(acts).tolist() == [0.5, 1.0]
    assert element_sparsity(acts).tolist() == [0.5, 1.0]
    assert dead_channels(acts) == 0.5


def test_threshold():
    acts = torch.tensor([[0.05, 0.2, 0.0, 0.1]])
    assert channel_sparsity(acts).item() == 0.25
    assert channel_sparsity(acts, threshold=0.1).item() == 0.75
    assert element_sparsity(acts, threshold=0.06).item() == 0.5
    assert dead_channels(acts, threshold=0.2) == 1.0


def test_shape_errors():
    with pytest.raises(ValueError, match=r"\[N, C, H, W\] or \[N, C\]"):
        channel_sparsity(torch.zeros(2, 3, 4))


def test_pooled_view():
    acts = torch.arange(16.0).reshape(1, 4, 2, 2)
    assert spatial_mean_pool(acts).tolist() == [[1.5, 5.5, 9.5, 13.5]]


def _datasets():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 20))
    yield "random", X, rng.integers(0, 4, 300)
    centres = rng.normal(scale=20, size=(3, 8)) + 50
    Xs = np.concatenate([c + rng.normal(size=(60, 8)) for c in centres])
    yield "well-separated", Xs, np.repeat([0, 1, 2], 60)
    ys = np.repeat([0, 1, 2], 60)
    ys[[0, 70]] = [7, 8]  # two singleton clusters
    yield "singletons", Xs, ys
    relu = np.maximum(rng.normal(size=(200, 30)), 0)
    relu[:6] = 0  # all-zero representations: cosine treats them as distance 1 to everything
    yield "relu-with-zero-rows", relu, rng.integers(0, 5, 200)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("name,X,y", list(_datasets()), ids=[d[0] for d in _datasets()])
@pytest.mark.parametrize("block", [64, 2048])
@pytest.mark.parametrize("backend", ["numpy", "torch"])  # torch is the CUDA path, run here on CPU
def test_silhouette_matches_sklearn(metric, name, X, y, block, backend):
    want = sk_silhouette(X, y, metric=metric)
    got = silhouette_score(torch.from_numpy(X).float(), y, metric=metric, block_size=block, backend=backend)
    assert got == pytest.approx(want, abs=1e-5)


def test_silhouette_on_conv_shaped_input():
    rng = np.random.default_rng(1)
    X = np.maximum(rng.normal(size=(50, 3, 4, 4)), 0)
    y = rng.integers(0, 3, 50)
    assert silhouette_score(torch.from_numpy(X), y) == pytest.approx(sk_silhouette(X.reshape(50, -1), y), abs=1e-5)


@pytest.mark.parametrize("labels", [np.zeros(10, int), np.arange(10)])
def test_silhouette_label_count_errors_like_sklearn(labels):
    X = torch.randn(10, 3)
    with pytest.raises(ValueError, match="Number of labels is"):
        sk_silhouette(X.numpy(), labels)
    with pytest.raises(ValueError, match="Number of labels is .* Valid values are 2 to n_samples - 1"):
        silhouette_score(X, labels)


def test_silhouette_unknown_metric():
    with pytest.raises(ValueError, match="euclidean, cosine"):
        silhouette_score(torch.randn(10, 3), np.arange(10) % 2, metric="manhattan")


def test_silhouette_tiles_capped_by_bytes_still_exact(monkeypatch):
    import bnlib.metrics as m
    monkeypatch.setattr(m, "BLOCK_BYTES", 8 * 40 * 16)  # forces 16-row tiles for D=40
    rng = np.random.default_rng(3)
    X, y = np.maximum(rng.normal(size=(150, 40)), 0), rng.integers(0, 3, 150)
    for metric, backend in [("euclidean", "numpy"), ("cosine", "numpy"), ("euclidean", "torch"), ("cosine", "torch")]:
        assert m.silhouette_score(torch.from_numpy(X), y, metric=metric, backend=backend) == pytest.approx(
            sk_silhouette(X, y, metric=metric), abs=1e-5)
