"""The lenses of notebooks 07 (decision trees over binary codes) and 08 (translation-sensitivity maps)."""

import numpy as np
import pytest
import torch

from bnlib import lenses, params


def test_binary_code_of_a_hand_made_tensor():
    acts = torch.zeros(2, 2, 4, 4)
    acts[0, 0, 0, 0] = 1.0  # channel 0 fires in the top-left cell only
    acts[0, 1, 2, 2], acts[0, 1, 3, 3] = 0.5, -1.0  # channel 1 in the bottom-right cell (a negative is off)
    acts[1, 1, 0, 3] = 2.0  # sample 1: channel 1, top-right cell
    codes = lenses.pooled_codes(acts, 2)  # [N, C * 2 * 2], channel-major, cells row by row
    assert codes.dtype == torch.bool
    assert codes.int().tolist() == [[1, 0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 1, 0, 0]]
    assert lenses.pooled_codes(acts, 1).int().tolist() == [[1, 1], [0, 1]]  # "active anywhere in the map"
    assert lenses.pooled_codes(acts, 0).sum().item() == 3  # every element: the three positive ones
    fc = torch.tensor([[0.0, 3.0, -2.0], [1e-6, 0.0, 0.0]])
    assert lenses.pooled_codes(fc, 4).int().tolist() == [[0, 1, 0], [1, 0, 0]]  # an fc layer: one bit a unit


def test_tree_fidelity_is_one_when_the_codes_determine_the_class():
    rng = np.random.default_rng(0)
    train, test = rng.integers(0, 2, (500, 12)).astype(bool), rng.integers(0, 2, (300, 12)).astype(bool)
    rule = lambda X: 4 * X[:, 3] + 2 * X[:, 7] + X[:, 0]  # noqa: E731  (8 classes, from three of the 12 bits)
    curve = lenses.tree_curve(train, rule(train), test, rule(test), max_depth=6)
    assert curve["score"][2:].tolist() == [1.0] * 4  # depth 3 holds the rule, and deeper prefixes keep it
    assert curve["score"][0] < 1.0  # one split cannot
    assert (np.diff(curve["leaves"]) >= 0).all() and curve["leaves"][-1] <= 2 ** 3
    noise = lenses.tree_curve(train, rng.integers(0, 4, 500), test, rng.integers(0, 4, 300), max_depth=6)
    assert noise["score"].max() < 0.45  # labels unrelated to the codes: about chance (0.25) on test


def test_the_depth_d_prefix_is_the_tree_grown_to_depth_d():
    from sklearn.tree import DecisionTreeClassifier

    rng = np.random.default_rng(1)
    X, Xt = rng.random((400, 5)) > 0.5, rng.random((200, 5)) > 0.5
    y = (X[:, 0] & X[:, 1]) + 2 * X[:, 2] + (rng.random(400) < 0.1)
    curve = lenses.tree_curve(X, y, Xt, rng.integers(0, 4, 200), max_depth=4)
    for d in (1, 2):  # no ties among these features at the top: the greedy tree of depth d is the prefix
        tree = DecisionTreeClassifier(max_depth=d, random_state=0).fit(X.astype(np.float32), y)
        assert tree.get_n_leaves() == curve["leaves"][d - 1]


def _model_representation(model):
    def represent(images):
        return lenses.forward_layers(model, images, lambda x: (x.float() / 255 - 0.13) / 0.31,
                                     ["conv1", "conv4", "fc1"], batch_size=64)
    return represent


def test_a_shift_of_zero_gives_similarity_one_everywhere():
    from bnlib.models import build_model

    torch.manual_seed(0)
    model = build_model("cnn4", "batch")
    images = torch.randint(0, 256, (6, 1, 28, 28), dtype=torch.uint8)
    maps = lenses.translation_maps(_model_representation(model), images, [(0, 0), (3, -2)], batch_size=12)
    assert set(maps) == {(layer, view) for layer in ("conv1", "conv4", "fc1") for view in ("cosine", "cosine_pooled")} \
        | {(lenses.OUTPUT, "agreement")}
    for key, values in maps.items():
        assert values[0] == pytest.approx(1.0, abs=1e-6), key
        assert values[1] <= 1.0 + 1e-9, key


def test_a_circularly_symmetric_input_gives_a_symmetric_map():
    size = 15
    yy, xx = np.mgrid[:size, :size] - size // 2
    disk = torch.tensor(((xx ** 2 + yy ** 2) <= 16) * 200, dtype=torch.uint8).view(1, 1, size, size)
    ring = torch.tensor((((xx ** 2 + yy ** 2) <= 36) & ((xx ** 2 + yy ** 2) > 9)) * 255, dtype=torch.uint8)
    images = torch.cat([disk, ring.view(1, 1, size, size)])
    blur = torch.nn.Conv2d(1, 1, 3, padding=1, bias=False)  # a symmetric kernel keeps the symmetry
    blur.weight.data[:] = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]])

    def represent(x):
        with torch.no_grad():
            h = torch.relu(blur(x.float()))
        return {"blur": h}, h.flatten(1).argmax(1)

    shifts = lenses.shift_grid(4)
    maps = lenses.translation_maps(represent, images, shifts)
    grid = maps[("blur", "cosine")].reshape(9, 9)  # [dy, dx]
    np.testing.assert_allclose(grid, grid[::-1, ::-1], atol=1e-12)  # (dx, dy) and (-dx, -dy)
    np.testing.assert_allclose(grid, grid.T, atol=1e-12)  # (dx, dy) and (dy, dx)
    np.testing.assert_allclose(grid, grid[:, ::-1], atol=1e-12)  # mirror
    assert grid[4, 4] == pytest.approx(1.0) and grid.min() < 0.5  # falls off with distance
    assert (np.diff(grid[4, 4:]) <= 1e-12).all()  # never rises as the shift grows along an axis


def test_shifts_move_the_image_and_fill_the_border():
    images = torch.arange(16, dtype=torch.uint8).view(1, 1, 4, 4) + 1
    moved = lenses.shift_images(images, 1, -2, fill=9)[0, 0]
    assert moved.tolist() == [[9, 9, 10, 11], [9, 13, 14, 15], [9, 9, 9, 9], [9, 9, 9, 9]]
    assert lenses.shift_grid(3, 2) == [(dx, dy) for dy in (-2, 0, 2) for dx in (-2, 0, 2)]
    assert lenses.cosine_rows(torch.zeros(2, 3), torch.tensor([[0.0, 0, 0], [1, 0, 0]])).tolist() == [1.0, 0.0]


@pytest.mark.parametrize("override,key", [({"shift_max": 28}, "shift_max"), ({"shift_max": -1}, "shift_max"),
                                          ({"shift_step": 8}, "shift_step"), ({"shift_images": 5000}, "shift_images"),
                                          ({"tree_depth": 30}, "tree_depth")])
def test_shift_grid_and_tree_bounds_are_validated_naming_the_key(override, key):
    with pytest.raises(params.ConfigError, match=key):
        params.resolve("quick", **override)
    assert params.resolve("quick").shift_radius() == 7  # a quarter of MNIST's 28 pixels


def _lens_rows(gap: float, metrics=("tree_fidelity", "tree_depth_to_target", "tree_accuracy")):
    import pandas as pd

    rng = np.random.default_rng(0)
    rows = []
    for norm, shift in (("batch", gap), ("none", 0.0)):
        for seed in range(4):
            for index, layer in enumerate(["conv1", "conv2", "fc1"], start=1):
                for metric in metrics:
                    sign = -10 if metric == "tree_depth_to_target" else 1  # lower depth: simpler
                    rows.append(("mnist", "cnn4", norm, seed, layer, index, metric,
                                 0.5 + sign * shift + 0.001 * rng.standard_normal()))
    return pd.DataFrame(rows, columns=["dataset", "arch", "norm", "seed", "layer", "layer_index", "metric", "value"])


@pytest.mark.parametrize("gap,word", [(0.1, "supported"), (-0.1, "the opposite"), (0.0, "no difference")])
def test_lens_verdicts_follow_the_numbers(gap, word):
    from bnlib import claims, comparisons

    sentence = claims.lens_verdict(5, comparisons.comparisons(_lens_rows(gap)))
    assert claims.claim_words(sentence) == {5: word}
    translation = _lens_rows(gap, ("shift_cosine", "shift_cosine_pooled", "shift_agreement"))
    assert claims.claim_words(claims.lens_verdict(6, comparisons.comparisons(translation))) == {6: word}
