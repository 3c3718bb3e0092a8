"""Matched accuracy: each no-BN model against the BN snapshot of its seed closest in test accuracy."""

import pandas as pd

from bnlib import analyses, claims

COLUMNS = ["dataset", "arch", "norm", "seed", "epoch", "step", "layer", "layer_index", "metric", "value"]


def _dynamics(bn_acc: dict[int, list[float]], none_acc: dict[int, float], silhouette_gap: float) -> pd.DataFrame:
    """BN snapshots at steps 0, 10, 20, ... with the given accuracies; no BN at the end (step 100). BN's silhouette
    is `silhouette_gap` above no BN's at every point, plus a little seed noise."""
    rows = []
    for seed, accs in bn_acc.items():
        for k, acc in enumerate(accs):
            step = 10 * k
            rows.append(("d", "a", "batch", seed, step / 10, step, "model", 0, "test_accuracy", acc))
            for i, layer in enumerate(("conv1", "fc1"), start=1):
                rows.append(("d", "a", "batch", seed, step / 10, step, layer, i, "silhouette",
                             0.2 + silhouette_gap + 0.001 * seed + 0.01 * k))
    for seed, acc in none_acc.items():
        rows.append(("d", "a", "none", seed, 10.0, 100, "model", 0, "test_accuracy", acc))
        for i, layer in enumerate(("conv1", "fc1"), start=1):
            rows.append(("d", "a", "none", seed, 10.0, 100, layer, i, "silhouette", 0.2 + 0.002 * seed))
    return pd.DataFrame(rows, columns=COLUMNS)


def test_each_pair_is_the_closest_snapshot_of_the_same_seed():
    dyn = _dynamics({0: [0.1, 0.90, 0.95, 0.99], 1: [0.1, 0.93, 0.97, 0.99]}, {0: 0.94, 1: 0.95}, 0.05)
    pairs = analyses.matched_pairs(dyn)
    assert pairs.batch_step.tolist() == [20, 10] and pairs.none_step.tolist() == [100, 100]
    assert pairs.accuracy_gap.round(3).tolist() == [0.01, 0.02]
    matched = analyses.matched_models(dyn, pairs)
    assert set(zip(matched.norm, matched.seed, matched.step)) == {("batch", 0, 20), ("batch", 1, 10),
                                                                  ("none", 0, 100), ("none", 1, 100)}


def test_no_verdict_when_a_pair_is_further_apart_than_the_tolerance():
    dyn = _dynamics({0: [0.1, 0.90, 0.95, 0.99], 1: [0.1, 0.93, 0.97, 0.99]}, {0: 0.94, 1: 0.95}, 0.05)
    text = claims.matched_verdict(dyn)  # seed 1's closest BN snapshot is 0.02 away
    assert "**no verdict**" in text and "seed(s) 1" in text and "`snapshots`" in text


def test_the_verdict_follows_the_matched_silhouettes():
    accs = {s: [0.1, 0.94, 0.99] for s in range(4)}
    better = claims.matched_verdict(_dynamics(accs, {s: 0.945 for s in range(4)}, 0.05))
    assert better.startswith("4. *BN representations cluster better at matched accuracy*: **supported**")
    worse = claims.matched_verdict(_dynamics(accs, {s: 0.945 for s in range(4)}, -0.05))
    assert "**not supported**" in worse and "largest test-accuracy gap 0.005" in worse
    assert claims.claim_words(better) == {4: "supported"}
