"""The clustering and similarity views of #14, each against a reference or its defining invariances."""

import numpy as np
import pytest
import torch
from scipy.stats import ortho_group
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score
from sklearn.neighbors import KNeighborsClassifier

from bnlib import codes, metrics


def clustered(n=400, d=12, classes=5, spread=0.8, seed=0, relu=False):
    """Class blobs that overlap (so kNN is neither 0 nor 1), optionally post-ReLU-like."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=spread, size=(classes, d))
    y = rng.integers(0, classes, n)
    X = centres[y] + rng.normal(size=(n, d))
    return (np.maximum(X, 0) if relu else X), y


def sklearn_loo_knn(X, y, k, metric):
    """sklearn's KNeighborsClassifier with the sample itself excluded: fit on all, ask for k+1, drop self."""
    clf = KNeighborsClassifier(n_neighbors=k, metric=metric).fit(X, y)
    idx = clf.kneighbors(X, n_neighbors=k + 1, return_distance=False)
    correct = 0
    for i, row in enumerate(idx):
        neigh = [j for j in row if j != i][:k]
        votes = np.bincount(y[neigh], minlength=y.max() + 1)
        correct += votes.argmax() == y[i]
    return correct / len(y)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("k", [1, 10])
@pytest.mark.parametrize("block", [37, 2048])
def test_knn_accuracy_matches_sklearn(metric, k, block):
    X, y = clustered(relu=True)
    want = sklearn_loo_knn(X, y, k, metric)
    got = metrics.knn_accuracy(torch.from_numpy(X), y, k=k, metric=metric, block_size=block)
    assert 0.2 < want < 0.99  # the data is informative, not trivial
    assert got == pytest.approx(want, abs=0.005)


def test_knn_accuracy_on_conv_shaped_input_and_errors():
    X, y = clustered(n=120, d=2 * 3 * 3, seed=2)
    assert metrics.knn_accuracy(X.reshape(120, 2, 3, 3), y, k=5) == pytest.approx(sklearn_loo_knn(X, y, 5, "euclidean"),
                                                                                   abs=0.005)
    with pytest.raises(ValueError, match="k = 120"):
        metrics.knn_accuracy(X, y, k=120)


def test_pairwise_tiles_cover_the_distance_matrix_once():
    from scipy.spatial.distance import cdist

    X = torch.from_numpy(clustered(n=100, d=7)[0])
    full = torch.full((100, 100), float("nan"), dtype=torch.float64)
    for rows, cols, dist in metrics.pairwise_tiles(X, "euclidean", block_size=16):
        assert torch.isnan(full[rows, cols]).all(), "a tile was yielded twice"
        full[rows, cols] = dist
    np.testing.assert_allclose(full.numpy(), cdist(X.numpy(), X.numpy()), atol=1e-9)


def test_linear_cka_matches_the_formula_and_its_invariances():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 10))
    Y = X @ rng.normal(size=(10, 6)) + 0.5 * rng.normal(size=(80, 6))
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    direct = np.linalg.norm(Yc.T @ Xc) ** 2 / (np.linalg.norm(Xc.T @ Xc) * np.linalg.norm(Yc.T @ Yc))
    assert metrics.linear_cka(X, Y) == pytest.approx(direct, abs=1e-10)
    Q = ortho_group.rvs(10, random_state=1)
    assert metrics.linear_cka(3.7 * X @ Q, Y) == pytest.approx(direct, abs=1e-10)  # isotropic scale, rotation
    assert metrics.linear_cka(X + 5.0, Y) == pytest.approx(direct, abs=1e-10)  # a shift is centred away
    assert metrics.linear_cka(X, X) == pytest.approx(1.0)
    assert metrics.linear_cka(X, rng.normal(size=(80, 10))) < 0.3
    # An anisotropic scale is *not* an invariance: the test could fail.
    assert metrics.linear_cka(X * np.r_[10.0, np.ones(9)], Y) != pytest.approx(direct, abs=1e-3)


def test_linear_cka_gram_path_for_wide_representations_agrees():
    rng = np.random.default_rng(1)
    X, Y = rng.normal(size=(30, 50)), rng.normal(size=(30, 40))  # D > N: the Gram path
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    direct = np.linalg.norm(Yc.T @ Xc) ** 2 / (np.linalg.norm(Xc.T @ Xc) * np.linalg.norm(Yc.T @ Yc))
    assert metrics.linear_cka(X, Y) == pytest.approx(direct, abs=1e-10)
    K = metrics.centered_gram(X, dtype=torch.float32)
    assert metrics.cka_from_grams(K, metrics.centered_gram(Y)) == pytest.approx(direct, abs=1e-5)


def test_cluster_indices_are_sklearns():
    X, y = clustered(relu=True)
    conv = X.reshape(400, 3, 2, 2)
    assert metrics.davies_bouldin(conv, y) == pytest.approx(davies_bouldin_score(X, y))
    assert metrics.calinski_harabasz(conv, y) == pytest.approx(calinski_harabasz_score(X, y))


def test_within_between_ratio_matches_scatter_matrices():
    X, y = clustered(n=300, d=6)
    mu = X.mean(0)
    Sw = sum(np.outer(x - X[y == c].mean(0), x - X[y == c].mean(0)) for c in np.unique(y) for x in X[y == c])
    Sb = sum((y == c).sum() * np.outer(X[y == c].mean(0) - mu, X[y == c].mean(0) - mu) for c in np.unique(y))
    assert metrics.within_between_ratio(X, y) == pytest.approx(np.trace(Sw) / np.trace(Sb), rel=1e-10)
    # Calinski-Harabasz is the same ratio, inverted and scaled by degrees of freedom
    n, k = len(y), len(np.unique(y))
    assert calinski_harabasz_score(X, y) == pytest.approx((n - k) / (k - 1) / metrics.within_between_ratio(X, y))


def test_binary_code_views_on_a_hand_made_example():
    # codes: samples 0,1 share code A (classes 0,0); 2,3 share code B (classes 0,1); 4 is alone (class 1)
    X = np.array([[1, 0, 2, 0], [3, 0, 1, 0], [0, 1, 0, 0], [0, 5, 0, 0], [0, 1, 1, 1]], dtype=float)
    y = np.array([0, 0, 0, 1, 1])
    assert codes.distinct_codes(X) == 3
    assert codes.code_purity(X, y) == pytest.approx((2 + 1 + 1) / 5)
    # nearest other code (Hamming): 0 -> 1 (same), 1 -> 0 (same), 2 -> 3 (other), 3 -> 2 (other),
    # 4 -> code B at Hamming distance 2 (A is at 3): samples 2, 3 tie, 1 of the 2 shares class 1
    assert codes.code_neighbour_agreement(X, y) == pytest.approx((1 + 1 + 0 + 0 + 0.5) / 5)


def test_code_neighbour_agreement_matches_brute_force():
    X, y = clustered(n=150, d=20, relu=True, seed=4)
    bits = X > 0
    ham = (bits[:, None, :] != bits[None, :, :]).sum(-1).astype(float)
    np.fill_diagonal(ham, np.inf)
    at_min = ham == ham.min(1, keepdims=True)
    want = np.mean([(y[row] == y[i]).mean() for i, row in ((i, np.flatnonzero(at_min[i])) for i in range(len(y)))])
    assert codes.code_neighbour_agreement(X, y, block_size=32) == pytest.approx(want, abs=1e-12)


def test_linear_probe_is_sklearns_logistic_regression():
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    X, y = clustered(n=500, d=10, spread=1.0, seed=5)
    Xtr, ytr, Xte, yte = X[:400], y[:400], X[400:], y[400:]
    scaler = StandardScaler().fit(Xtr)
    want = LogisticRegression(C=0.5, max_iter=500).fit(scaler.transform(Xtr), ytr).score(scaler.transform(Xte), yte)
    assert metrics.linear_probe_accuracy(Xtr, ytr, Xte, yte, C=0.5) == pytest.approx(want)
    assert 0.3 < want < 1.0


def test_one_pass_gives_both_silhouette_and_knn():
    X, y = clustered(n=200, relu=True, seed=6)
    both = metrics.silhouette_and_knn(X, y, k=7, block_size=50)
    assert both == (pytest.approx(metrics.silhouette_score(X, y)), pytest.approx(metrics.knn_accuracy(X, y, k=7)))


# ------------------------------------------------------------------ statistics of #14
def test_hedges_g_matches_its_definition_and_scipy_t():
    from scipy import stats as sps

    from bnlib import stats

    x, y = np.array([1.0, 1.2, 0.9, 1.1]), np.array([0.5, 0.7, 0.6, 0.4])
    pooled = np.sqrt((x.var(ddof=1) * 3 + y.var(ddof=1) * 3) / 6)
    want = (x.mean() - y.mean()) / pooled * (1 - 3 / (4 * 8 - 9))
    assert stats.hedges_g(x, y) == pytest.approx(want)
    # with equal n, Cohen's d = t * sqrt(2/n) for the pooled-variance t
    t = sps.ttest_ind(x, y).statistic
    assert stats.hedges_g(x, y) == pytest.approx(t * np.sqrt(2 / 4) * (1 - 3 / 23))
    lo, hi = stats.hedges_g_interval(x, y)
    assert lo < want < hi and lo > 0  # a clear effect: the interval excludes 0
    lo, hi = stats.hedges_g_interval(x, x[::-1] + 0.01)
    assert lo < 0 < hi  # no effect: the interval covers 0


def test_detectable_effect_has_the_power_it_claims():
    from scipy import stats as sps

    from bnlib import stats

    d = stats.detectable_effect(4, 4)
    assert d == pytest.approx(2.38, abs=0.01)  # the textbook value for n = 4 per group
    rng = np.random.default_rng(0)
    x, y = rng.normal(d, 1, (20000, 4)), rng.normal(0, 1, (20000, 4))
    power = (sps.ttest_ind(x, y, axis=1).pvalue < 0.05).mean()
    assert power == pytest.approx(0.80, abs=0.015)
    assert stats.detectable_effect(8, 8) < d < stats.detectable_effect(4, 4, alpha=0.01)


def test_compare_norms_reports_g_interval_and_holm():
    import pandas as pd

    from bnlib import stats

    rows = []
    for norm, shift in (("batch", 1.0), ("none", 0.0)):
        for seed in range(4):
            rows.append(("m", "a", norm, seed, "model", 0, "excluded", 0.0))
            for i, layer in enumerate(["conv1", "conv2", "fc1"], start=1):
                value = (shift if layer == "fc1" else 0.0) + 0.1 * ((seed * 7 + i * 3) % 5)
                rows.append(("m", "a", norm, seed, layer, i, "silhouette", value))
    df = pd.DataFrame(rows, columns=["dataset", "arch", "norm", "seed", "layer", "layer_index", "metric", "value"])
    cmp = stats.compare_norms(df, "silhouette").set_index("layer")
    assert cmp.loc["fc1", "p_holm"] < 0.05 and cmp.loc["fc1", "g_low"] > 0
    assert cmp.loc["conv1", "diff"] == 0 and cmp.loc["conv1", "p_holm"] == 1.0
    assert np.allclose(cmp.p_holm, stats.holm(cmp.p))
