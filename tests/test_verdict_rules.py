"""The verdict rules a reviewer of the statistics checks: independent votes, equivalence instead of "no difference",
a valid interval for g, and each word's stability."""

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from bnlib import claims, comparisons, measures, stability, stats
from bnlib.paths import FIGURES_DIR
from bnlib.tables import read_measured

PROFILES = [p for p in ("quick", "quick-8seeds", "mnist", "cifar10-cpu") if (FIGURES_DIR / p).is_dir()]


def functional_pairs(rows: pd.DataFrame, metrics) -> list[tuple[str, str, float]]:
    """Pairs of `metrics` whose values, matched by model and layer over the voting rows, have |Spearman rho| = 1:
    one is a monotone function of the other in every row, so they are one statistic seen from two sides."""
    rows = comparisons.voting(rows[rows.metric.isin(metrics)])
    wide = rows.pivot_table(index=["norm", "seed", "layer"], columns="metric", values="value")
    found = []
    for a, b in itertools.combinations([m for m in metrics if m in wide], 2):
        both = wide[[a, b]].dropna()
        if len(both) >= 5:
            rho = sps.spearmanr(both[a], both[b]).statistic
            if abs(rho) > 1 - 1e-9:
                found.append((a, b, rho))
    return found


def claim_tables(profile: str):
    """(claim, its voting measures, the rows they are read from) for every claim with votes on a profile."""
    folder = FIGURES_DIR / profile
    yield 3, measures.names(votes=True), pd.concat([read_measured(folder, t) for t in ("silhouette", "views")])
    for claim, (metrics, table, _) in claims.LENSES.items():
        if (folder / f"{table}.csv").is_file():
            yield claim, metrics, read_measured(folder, table)


@pytest.mark.parametrize("profile", PROFILES)
def test_no_two_voting_measures_of_a_claim_are_functions_of_one_another(profile):
    for claim, metrics, rows in claim_tables(profile):
        assert functional_pairs(rows, metrics) == [], f"{profile}, claim {claim}"


def test_the_independence_check_finds_the_pairs_that_voted_twice():
    views = read_measured(FIGURES_DIR / "quick", "views")
    pairs = {(a, b) for a, b, _ in functional_pairs(views, ["calinski_harabasz", "within_between_ratio"])}
    assert pairs == {("calinski_harabasz", "within_between_ratio")}  # CH x W/B = (N - k) / (k - 1)
    sil = read_measured(FIGURES_DIR / "quick", "silhouette")
    fc1 = sil[sil.layer == "fc1"].pivot_table(index=["norm", "seed"], columns="metric", values="value")
    assert np.allclose(fc1.silhouette, fc1.silhouette_pooled)  # nothing to pool in fc1: why it votes once
    assert not comparisons.voting(sil[(sil.layer == "fc1")]).metric.eq("silhouette_pooled").any()


@pytest.mark.parametrize("n", [4, 8])
def test_the_g_interval_covers_the_true_effect_95_percent_of_the_time(n):
    rng = np.random.default_rng(n)
    delta, reps = 0.8, 800
    hits = 0
    for _ in range(reps):
        x, y = rng.normal(delta, 1, n), rng.normal(0, 1, n)
        lo, hi = stats.hedges_g_interval(x, y)
        hits += lo <= delta <= hi
    # binomial sd of the coverage at 800 draws: 0.008; the old bootstrap covered about 0.80 at 4 + 4
    assert 0.93 <= hits / reps <= 0.97, hits / reps


def test_the_g_interval_holds_its_point_estimate_inside_and_is_finite_at_a_constant_side():
    x, y = np.array([0.0, 0.0, 0.0, 0.0]), np.array([0.0043, 0.0023, 0.0022, 0.0001])
    lo, hi = stats.hedges_g_interval(x, y)
    assert lo < stats.hedges_g(x, y) < hi < 0


def test_tost_is_the_larger_of_two_one_sided_welch_tests():
    rng = np.random.default_rng(0)
    x, y = rng.normal(0.30, 0.01, 4), rng.normal(0.31, 0.02, 4)
    margin = 0.05
    want = max(sps.ttest_ind(x + margin, y, equal_var=False, alternative="greater").pvalue,
               sps.ttest_ind(x - margin, y, equal_var=False, alternative="less").pvalue)
    assert stats.tost(x, y, margin) == pytest.approx(want, rel=1e-9)
    assert stats.tost(x, y, margin) < 0.05  # shown small
    assert stats.tost(x + 0.1, y, margin) > 0.5  # shown nothing: a larger difference is not equivalent


def test_the_correlation_interval_is_fishers():
    rng = np.random.default_rng(1)
    x = rng.normal(size=12)
    y = x + rng.normal(size=12)
    r = sps.pearsonr(x, y)
    assert stats.correlation_interval(r.statistic, 12) == pytest.approx(tuple(r.confidence_interval(0.95)))
    assert np.isnan(stats.correlation_interval(0.5, 3)).all()


def _per_model(n: int, slope: float, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for norm in ("batch", "none"):
        s = rng.uniform(0.2, 0.6, n)
        rows += [dict(norm=norm, seed=i, mean_channel_sparsity=v, test_accuracy=0.9 + slope * v
                      + rng.normal(0, 0.01), generalisation_gap=0.01) for i, v in enumerate(s)]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("n,slope,word", [(4, 0.0, "undetermined"), (60, 0.0, "supported"),
                                          (60, 0.2, "not supported")])
def test_claim_2_needs_an_interval_inside_the_margin_to_say_does_not(n, slope, word):
    assert claims.claim_words(claims.claim2(_per_model(n, slope))) == {2: word}


def _sparsity(diffs: dict[str, float], spread: float = 0.005) -> pd.DataFrame:
    rows = []
    for i, (layer, diff) in enumerate(diffs.items(), start=1):
        for norm, shift in (("batch", diff), ("none", 0.0)):
            rows += [dict(norm=norm, seed=s, layer=layer, layer_index=i, metric="channel_sparsity",
                          value=0.3 + shift + spread * (s - 1.5)) for s in range(4)]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("diffs,spread,word", [
    ({"conv1": 0.0, "conv2": 0.01, "fc1": 0.0}, 0.005, "supported"),
    ({"conv1": 0.0, "conv2": 0.01, "fc1": -0.3}, 0.005, "supported for the conv layers only"),
    ({"conv1": 0.2, "conv2": 0.0, "fc1": 0.0}, 0.005, "not supported"),
    ({"conv1": 0.0, "conv2": 0.0, "fc1": 0.0}, 0.2, "undetermined"),  # noisy: neither shown small nor large
])
def test_claim_1_is_an_equivalence_test(diffs, spread, word):
    df = _sparsity(diffs, spread)
    cmp = comparisons.comparisons(df)
    cs = cmp[(cmp.metric == "channel_sparsity") & cmp.testable]
    assert claims.claim_words(claims.claim1(cs, cmp)) == {1: word}


def test_a_stable_word_shows_its_count_and_an_unstable_one_says_so():
    alphas = {a: "mixed" for a in stability.ALPHAS}
    assert stability.Stability("mixed", 16, 16, "mixed", alphas).cell() == "mixed (16/16)"
    assert stability.Stability("supported", 4, 16, "mixed", alphas | {0.05: "supported"}).cell() == \
        "supported, unstable (4/16, most often mixed; α = 0.025: mixed; α = 0.1: mixed)"
    assert not stability.Stability("mixed", 16, 16, "mixed", alphas | {0.1: "supported"}).stable


def test_the_rules_leave_the_runs_out_of_every_table_a_verdict_reads():
    out = frozenset({("batch", 0), ("none", 1)})
    with comparisons.under_rules(comparisons.Rules(left_out=out)):
        tables = [comparisons.load("quick")] + [comparisons.read(FIGURES_DIR / "quick", t) for t in
                                                ("dynamics", "tree_summary", "fragmentation_dynamics")]
    for table in tables:
        runs = set(zip(table.norm, table.seed))
        assert not runs & out and len(runs) == 6
    assert len(set(zip(comparisons.load("quick").norm, comparisons.load("quick").seed))) == 8  # and back after


@pytest.mark.parametrize("seed", range(5))
def test_welch_is_scipys(seed):
    rng = np.random.default_rng(seed)
    x, y = rng.normal(0, 1, 3 + seed), rng.normal(0.5, 2, 4)
    want = sps.ttest_ind(x, y, equal_var=False)
    assert stats.welch(x, y) == pytest.approx((want.statistic, want.pvalue), rel=1e-12)
    assert stats.welch(np.ones(4), np.ones(4))[1] == 1.0 and stats.welch(np.ones(4), np.zeros(4))[1] == 0.0
