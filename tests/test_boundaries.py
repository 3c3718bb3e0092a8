"""The lenses of notebooks 09 (margins) and 10 (fragmentation), against analytic answers."""

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from bnlib import analyses, boundaries, claims, params, tables
from bnlib.models import build_model


def _linear(weight, bias):
    model = nn.Linear(weight.shape[1], weight.shape[0]).double()
    with torch.no_grad():
        model.weight.copy_(torch.as_tensor(weight, dtype=torch.float64))
        model.bias.copy_(torch.as_tensor(bias, dtype=torch.float64))
    return model


def _analytic(weight, bias, x):
    """The distance from each row of x to the nearest hyperplane f_i = f_j of its predicted class i."""
    f = x @ weight.T + bias
    i = f.argmax(1)
    out = []
    for n in range(len(x)):
        out.append(min(abs(f[n, i[n]] - f[n, j]) / np.linalg.norm(weight[i[n]] - weight[j])
                       for j in range(len(weight)) if j != i[n]))
    return np.array(out)


@pytest.fixture
def linear_case():
    rng = np.random.default_rng(0)
    weight, bias = rng.normal(size=(4, 6)), rng.normal(size=4)
    x = rng.normal(size=(40, 6))
    return weight, bias, x


def test_the_hidden_margin_of_a_linear_classifier_is_the_distance_to_its_hyperplane(linear_case):
    weight, bias, x = linear_case
    model = _linear(weight, bias)
    labels = torch.as_tensor((x @ weight.T + bias).argmax(1))
    got = boundaries.first_order_margins(model, torch.as_tensor(x), labels).numpy()
    np.testing.assert_allclose(got, _analytic(weight, bias, x), rtol=1e-10)
    wrong = (labels + 1) % 4  # a sample on the wrong side of its class's boundary has a negative margin
    assert (boundaries.first_order_margins(model, torch.as_tensor(x), wrong).numpy() < 0).all()


def test_deepfool_flips_the_class_and_is_no_longer_than_the_analytic_margin(linear_case):
    weight, bias, x = linear_case
    model = _linear(weight, bias)
    xt = torch.as_tensor(x)
    margin = boundaries.deepfool(model, xt, steps=10, overshoot=0.02).numpy()
    analytic = _analytic(weight, bias, x)
    assert np.isfinite(margin).all()
    assert (margin <= analytic * (1 + 1e-9)).all()
    np.testing.assert_allclose(margin, analytic, rtol=1e-9)  # linear: one step reaches the nearest hyperplane
    # the perturbation DeepFool found (re-run step by step for two classes: along w_0 - w_1) does flip the class
    two = _linear(weight[:2], bias[:2])
    m2 = boundaries.deepfool(two, xt, steps=10, overshoot=0.02)
    w = torch.as_tensor(weight[0] - weight[1])
    side = torch.sign(two(xt)[:, 0] - two(xt)[:, 1]).detach()
    moved = xt - (1.02 * m2 * side).unsqueeze(1) * w / w.norm()
    assert (two(moved).argmax(1) != two(xt).argmax(1)).all()


def test_deepfool_in_a_subspace_is_the_distance_within_it():
    weight = np.array([[1.0, 2.0, 0.0], [0.0, 0.0, 0.0]])
    model = _linear(weight, np.array([0.5, 0.0]))
    x = torch.tensor([[1.0, 1.0, 1.0]], dtype=torch.float64)  # f_0 - f_1 = 3.5; w = (1, 2, 0)
    full = boundaries.deepfool(model, x).item()
    assert full == pytest.approx(3.5 / np.sqrt(5))
    only_x = boundaries.deepfool(model, x, basis=torch.tensor([[1.0], [0.0], [0.0]])).item()
    assert only_x == pytest.approx(3.5)  # along the first axis alone the boundary is farther
    never = boundaries.deepfool(model, x, basis=torch.tensor([[0.0], [0.0], [1.0]]), steps=5).item()
    assert never == float("inf")  # no direction of the subspace reaches the boundary


def test_the_network_cut_at_a_layer_is_the_network():
    torch.manual_seed(0)
    for norm in ("batch", "batch_after_relu"):
        model = build_model("cnn4", norm).eval()
        x = torch.randn(5, 1, 28, 28)
        for layer in ("input", "conv1", "conv3", "fc1"):
            stem, head = boundaries.split_at(model, layer)
            with torch.no_grad():
                torch.testing.assert_close(head(stem(x)), model(x))
        with pytest.raises(ValueError, match="no hidden layer 'fc2'"):
            boundaries.split_at(model, "fc2")


def test_region_count_agrees_with_a_hand_made_grid():
    grid = np.array([[0, 0, 1, 1],
                     [0, 2, 1, 0],
                     [2, 0, 1, 1],
                     [2, 2, 0, 0]])
    # 8-connectivity: class 0 is the chain (0,0) (0,1) (1,0) (2,1) (3,2) (3,3), joined at corners, plus (1,3)
    # alone: 2 regions; class 1: 1; class 2: (1,1) touches (2,0) at a corner: 1. With 4-connectivity it would be 7.
    assert boundaries.count_regions(grid) == 4
    assert boundaries.count_regions(np.zeros((8, 8), dtype=int)) == 1  # a constant classifier: one region
    stripes = np.tile(np.arange(6) % 2, (6, 1))
    assert boundaries.count_regions(stripes) == 6


def test_a_constant_classifier_has_one_region_on_any_plane():
    class Constant(nn.Module):
        def forward(self, x):
            return torch.tensor([0.0, 1.0, 0.0]).expand(len(x), 3)

    a, b, c = torch.randn(3, 1, 28, 28)
    classes = boundaries.predict_classes(Constant(), boundaries.plane_grid(a, b, c, 16), a.shape)
    assert classes.shape == (16, 16) and boundaries.count_regions(classes) == 1


def test_the_plane_goes_through_its_anchors_and_extends_by_half_the_span():
    a, b, c = torch.tensor([0.0, 0.0, 1.0]), torch.tensor([2.0, 0.0, 1.0]), torch.tensor([1.0, 3.0, 1.0])
    plane = boundaries.plane_grid(a, b, c, 9)
    np.testing.assert_allclose(plane.anchors, [[0, 0], [2, 0], [1, 3]])
    assert (plane.xs[0], plane.xs[-1], plane.ys[0], plane.ys[-1]) == (-1.0, 3.0, 4.5, -1.5)
    points = plane.points(plane.coords())
    torch.testing.assert_close(plane.points(torch.tensor([[2.0, 0.0], [1.0, 3.0]])), torch.stack([b, c]).double())
    grid = points.view(9, 9, 3)
    torch.testing.assert_close(grid[-1, 0], torch.tensor([-1.0, -1.5, 1.0], dtype=torch.float64))  # bottom left
    assert torch.allclose(points[:, 2], torch.ones(81, dtype=torch.float64))  # stays in the plane z = 1


def test_triplets_are_within_one_class_or_across_three():
    labels = np.repeat(np.arange(5), 10)
    within = boundaries.draw_triplets(labels, 20, "within", seed=0)
    across = boundaries.draw_triplets(labels, 20, "across", seed=0)
    assert all(len(set(labels[t])) == 1 and len(set(t)) == 3 for t in within)
    assert all(len(set(labels[t])) == 3 for t in across)
    np.testing.assert_array_equal(within, boundaries.draw_triplets(labels, 20, "within", seed=0))  # fixed draw


@pytest.mark.parametrize("key, value, words", [
    ("margin_samples", 5, "margin_samples"), ("deepfool_overshoot", -0.1, "deepfool_overshoot"),
    ("margin_pca_dims", 0, "margin_pca_dims"),
    ("deepfool_steps", 0, "deepfool_steps"), ("fragment_resolution", 4, "fragment_resolution"),
    ("fragment_triplets", 0, "fragment_triplets"), ("fragment_layers", ["conv9"], "fragment_layers"),
    ("margin_pca_dims", 5000, "margin_pca_dims"),
    ("fragment_snapshot_triplets", 0, "fragment_snapshot_triplets"),
    ("fragment_snapshot_triplets", 9, "fragment_snapshot_triplets"),  # more than quick's 8 fragment_triplets
])
def test_margin_and_fragmentation_keys_are_validated_naming_the_key(key, value, words):
    with pytest.raises(params.ConfigError, match=words):
        params.resolve("quick", **{key: value})


def _along(errors_and_regions: dict) -> pd.DataFrame:
    """A fragmentation_along_training frame: {(norm, seed): [(epoch, test error, regions), ...]}."""
    rows = [{"dataset": "d", "arch": "a", "norm": norm, "seed": seed, "epoch": e, "step": int(e * 10),
             "regions": r, "test_accuracy": 1 - err, "test_error": err}
            for (norm, seed), points in errors_and_regions.items() for e, err, r in points]
    return pd.DataFrame(rows)


def test_fragmentation_along_training_joins_each_snapshot_to_its_test_accuracy():
    regions = pd.DataFrame([("d", "a", "batch", 0, e, int(e * 10), "test", "across", t, r)
                            for e, rs in ((0.0, (1, 3)), (0.5, (4, 6))) for t, r in enumerate(rs)],
                           columns=list(tables.TABLES["fragmentation_dynamics"].columns))
    dynamics = pd.DataFrame([("d", "a", "batch", 0, e, int(e * 10), layer, 0, metric, v)
                             for e, v in ((0.0, 0.1), (0.5, 0.8))
                             for layer, metric in (("model", "test_accuracy"), ("conv1", "silhouette"))],
                            columns=list(tables.TABLES["dynamics"].columns))
    along = analyses.fragmentation_along_training(regions, dynamics)
    assert along.regions.tolist() == [2.0, 5.0] and along.test_accuracy.tolist() == [0.1, 0.8]
    np.testing.assert_allclose(along.test_error, [0.9, 0.2])


def test_claim_9_leaves_out_the_initialisation_and_names_the_direction():
    # after epoch 0 the regions fall with the error in every model; the initialisation would break the order
    falling = {(n, s): [(0, 0.9, 1), (1, 0.5, 9), (2, 0.3, 7), (3, 0.2, 5)] for n in ("batch", "none") for s in (0, 1)}
    track = analyses.fragmentation_tracking(_along(falling))
    assert (track.rho == 1.0).all() and (track.snapshots == 3).all()

    def words(points):
        return claims.claim_words(claims.describe_fragmentation_dynamics(_along(points)))

    assert words(falling) == {9: "supported"}
    rising = {k: [(e, err, 10 - r) for e, err, r in v] for k, v in falling.items()}
    assert words(rising) == {9: "the opposite"}
    mixed = {("batch", 0): falling[("batch", 0)], ("none", 0): rising[("none", 0)]}
    assert words(mixed) == {9: "mixed"}
    short = {k: v[:3] for k, v in falling.items()}  # two points after the initialisation: no correlation
    assert words(short) == {9: "no verdict"}
    assert "too few snapshots" in claims.describe_fragmentation_dynamics(_along(short))
