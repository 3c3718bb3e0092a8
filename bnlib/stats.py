"""BN vs no-BN, compared across seeds. Mean ± std over seeds, always."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
from scipy.optimize import brentq

from .measures import EXCLUDED, MEASURES

MIN_SEEDS = 2  # per side: with fewer, a comparison gives no verdict


def excluded_runs(df: pd.DataFrame) -> list[tuple[str, int]]:
    """(norm, seed) of every run flagged excluded (bnlib.measures.EXCLUDED) in the per-model rows of `df`."""
    flags = df[(df.layer == "model") & (df.metric == EXCLUDED)]
    return [tuple(x) for x in flags[flags.value != 0][["norm", "seed"]].to_numpy().tolist()]


def usable(df: pd.DataFrame, flags: pd.DataFrame | None = None) -> pd.DataFrame:
    """`df` without any row of an excluded run, as the exclusion rows of `flags` (default: `df` itself) say."""
    bad = set(excluded_runs(df if flags is None else flags))
    if not bad:
        return df
    keep = [(n, s) not in bad for n, s in zip(df.norm, df.seed)]
    return df[keep]


def compare_norms(df: pd.DataFrame, metric: str, a: str = "batch", b: str = "none",
                  intervals: bool = True) -> pd.DataFrame:
    """Per layer: mean/std of `a` and of `b`, difference (a - b), Welch's t-test over the usable seeds.

    With fewer than MIN_SEEDS usable seeds on a side the test is undefined: p is
    NaN and `testable` is False. When both sides are constant, p is 1 for equal
    values and 0 for different ones (Welch's t is then undefined, the answer is not).
    """
    sub = usable(df)
    per_model = MEASURES[metric].stage == "model" if metric in MEASURES else False
    sub = sub[(sub.metric == metric) & (per_model | (sub.layer != "model"))].dropna(subset=["value"])
    # numpy masks over one sorted copy, not a pandas group per layer: bnlib.stability calls this thousands of times
    sub = sub.sort_values("layer_index", kind="stable")
    index_of, values, norms = sub.layer_index.to_numpy(), sub.value.to_numpy(float), sub.norm.to_numpy()
    rows = []
    for index, layer in dict.fromkeys(zip(index_of, sub.layer)):
        here = index_of == index
        x, y = values[here & (norms == a)], values[here & (norms == b)]
        testable = len(x) >= MIN_SEEDS and len(y) >= MIN_SEEDS
        t, p = welch(x, y) if testable else (np.nan, np.nan)
        g_lo, g_hi = hedges_g_interval(x, y) if testable and intervals else (np.nan, np.nan)
        rows.append({"metric": metric, "layer_index": index, "layer": layer,
                     f"mean_{a}": x.mean() if len(x) else np.nan, f"std_{a}": x.std(ddof=1) if len(x) > 1 else np.nan,
                     f"mean_{b}": y.mean() if len(y) else np.nan, f"std_{b}": y.std(ddof=1) if len(y) > 1 else np.nan,
                     "diff": (x.mean() - y.mean()) if len(x) and len(y) else np.nan,
                     "t": t, "p": p, "n_seeds": min(len(x), len(y)), f"n_{a}": len(x), f"n_{b}": len(y),
                     "testable": testable, "hedges_g": hedges_g(x, y) if testable else np.nan,
                     "g_low": g_lo, "g_high": g_hi})
    out = pd.DataFrame(rows)
    if len(out):
        out["p_holm"] = holm(out.p.where(out.testable))  # the family: this metric's layers
    return out


def welch(x, y) -> tuple[float, float]:
    """Welch's two-sided t-test of mean(x) = mean(y): (t, p), as `scipy.stats.ttest_ind(x, y, equal_var=False)`
    (parity-tested) without its per-call overhead. When both samples are constant, p is 1 for equal values and 0
    for different ones (t is then undefined, the answer is not)."""
    se, df = _welch_se_df(x.var(ddof=1), len(x), y.var(ddof=1), len(y))
    if se == 0:
        return float("nan"), (1.0 if x.mean() == y.mean() else 0.0)
    t = (x.mean() - y.mean()) / se
    return float(t), float(2 * stats.t.sf(abs(t), df))


def _welch_se_df(var_x, n_x, var_y, n_y) -> tuple[float, float]:
    """The standard error of mean(x) - mean(y) from each side's variance (ddof=1) and count, and its
    Welch-Satterthwaite degrees of freedom (NaN when the error is 0): what Welch's test and TOST share."""
    vx, vy = var_x / n_x, var_y / n_y
    se = np.sqrt(vx + vy)
    return se, ((vx + vy) ** 2 / (vx ** 2 / (n_x - 1) + vy ** 2 / (n_y - 1)) if se > 0 else float("nan"))


def hedges_g(x, y) -> float:
    """Hedges' g: the difference of means over the pooled std (ddof=1), times the small-sample correction J.

    J = 1 - 3 / (4 (n_x + n_y) - 9). Infinite when both samples are constant but
    differ, NaN when they are equal and constant.
    """
    return float(_hedges_g(np.asarray(x, float), np.asarray(y, float)))


def _hedges_g(x: np.ndarray, y: np.ndarray):
    """Hedges' g along the last axis: one value per row of seeds."""
    nx, ny = x.shape[-1], y.shape[-1]
    pooled = np.sqrt(((nx - 1) * x.var(-1, ddof=1) + (ny - 1) * y.var(-1, ddof=1)) / (nx + ny - 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        return (x.mean(-1) - y.mean(-1)) / pooled * (1 - 3 / (4 * (nx + ny) - 9))


def hedges_g_interval(x, y, level: float = 0.95) -> tuple[float, float]:
    """The noncentral-t interval of the standardised difference (Hedges & Olkin 1985; Steiger & Fouladi 1997).

    With pooled-variance t = d sqrt(n_x n_y / (n_x + n_y)) and df = n_x + n_y - 2, t follows a noncentral t whose
    noncentrality is delta sqrt(n_x n_y / (n_x + n_y)). The interval inverts it: the noncentralities under which
    the observed t is the (1 + level) / 2 and the (1 - level) / 2 quantile, scaled back to delta. Exact under
    normality for any n (a bootstrap of 4 seeds is not: it covered about 80% of a nominal 95%).
    `tests/test_verdict_rules.py` checks its coverage by simulation at 4 + 4 and 8 + 8 seeds. NaN when g is undefined.
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    nx, ny = len(x), len(y)
    d = _hedges_g(x, y) / (1 - 3 / (4 * (nx + ny) - 9))  # Cohen's d (pooled sd), before the small-sample factor
    if nx < 2 or ny < 2 or not np.isfinite(d):
        return float("nan"), float("nan")
    df, scale = nx + ny - 2, np.sqrt(nx * ny / (nx + ny))
    t_obs = d * scale
    span = 10 + 2 * abs(t_obs)  # the noncentralities that can put t_obs at a central quantile lie well inside

    def cdf(nc):  # scipy's nct gives NaN far in a tail, where the probability is 0 (nc above t) or 1
        p = stats.nct.cdf(t_obs, df, nc)
        return p if np.isfinite(p) else float(nc < t_obs)

    def nc_at(q):
        return brentq(lambda nc: cdf(nc) - q, t_obs - span, t_obs + span)

    tail = (1 - level) / 2
    return float(nc_at(1 - tail) / scale), float(nc_at(tail) / scale)


def tost(x, y, margin: float) -> float:
    """Two one-sided Welch tests of equivalence, |mean(x) - mean(y)| < margin (Schuirmann 1987): the larger of the
    two one-sided p values. Below alpha, the difference is shown to lie within the margin; a failed t-test of a
    difference never shows that. 0 or 1 when both samples are constant."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    return tost_from_summary(x.mean(), x.std(ddof=1), len(x), y.mean(), y.std(ddof=1), len(y), margin) \
        if len(x) > 1 and len(y) > 1 else float("nan")


def tost_from_summary(mean_x, std_x, n_x, mean_y, std_y, n_y, margin: float) -> float:
    """`tost` from each side's mean, std (ddof=1) and count, as a comparison table holds them."""
    n_x, n_y = int(n_x), int(n_y)
    if n_x < 2 or n_y < 2:
        return float("nan")
    diff = mean_x - mean_y
    se, df = _welch_se_df(std_x ** 2, n_x, std_y ** 2, n_y)
    if se == 0:
        return 0.0 if abs(diff) < margin else 1.0
    return float(max(stats.t.sf((diff + margin) / se, df), stats.t.cdf((diff - margin) / se, df)))


def correlation_interval(r: float, n: int, level: float = 0.95) -> tuple[float, float]:
    """Fisher's z interval of Pearson's r from n points: tanh(atanh(r) -+ z / sqrt(n - 3)); NaN with n <= 3."""
    if not np.isfinite(r) or n <= 3:
        return float("nan"), float("nan")
    z, half = np.arctanh(np.clip(r, -1 + 1e-12, 1 - 1e-12)), stats.norm.ppf((1 + level) / 2) / np.sqrt(n - 3)
    return float(np.tanh(z - half)), float(np.tanh(z + half))


def detectable_effect(n_a: int, n_b: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest standardised effect |d| a two-sided two-sample t-test detects with the given power.

    Solves power = P(|T| > t_crit) for the noncentral t with df = n_a + n_b - 2
    and noncentrality d * sqrt(n_a n_b / (n_a + n_b)). Welch's test has fewer
    degrees of freedom, so its detectable effect is a little larger still.
    With a Holm family of m layers, pass alpha / m for the strictest step.
    """
    df = n_a + n_b - 2
    crit = stats.t.ppf(1 - alpha / 2, df)
    scale = np.sqrt(n_a * n_b / (n_a + n_b))

    def achieved(d):
        nc = d * scale
        # the lower tail is negligible for d > 0, and scipy returns NaN for it at large nc
        return stats.nct.sf(crit, df, nc) + np.nan_to_num(stats.nct.cdf(-crit, df, nc)) - power

    return float(brentq(achieved, 1e-6, 15.0))  # nct is numerically NaN far beyond; 15 is enough for n >= 2


def describe_power(n_a: int, n_b: int, layers: int, alpha: float = 0.05) -> str:
    """One paragraph: which effect sizes these seeds can detect, per layer and after Holm over the layers."""
    one = detectable_effect(n_a, n_b, alpha)
    strict = detectable_effect(n_a, n_b, alpha / max(layers, 1))
    return (f"Power: with {n_a} vs {n_b} seeds, a two-sided t-test at alpha={alpha} detects a standardised "
            f"difference |g| >= {one:.1f} with 80% power; Holm's strictest step over {layers} layers "
            f"(alpha/{layers}) needs |g| >= {strict:.1f}. Smaller real effects will mostly read as 'no "
            f"difference': a 'no difference' here is not evidence of equality.")


def sparsity_vs_generalisation(df: pd.DataFrame, sparsity_metric: str = "channel_sparsity") -> pd.DataFrame:
    """One row per model: mean sparsity over hidden layers, test accuracy and generalisation gap."""
    df = usable(df)
    layer_rows = df[(df.metric == sparsity_metric) & (df.layer != "model")]
    if layer_rows.empty:
        return pd.DataFrame(columns=["norm", "seed", "mean_" + sparsity_metric, EXCLUDED, "test_accuracy",
                                     "train_accuracy", "generalisation_gap"])
    sparsity = layer_rows.groupby(["norm", "seed"])["value"].mean().rename("mean_" + sparsity_metric)
    acc = df[df.layer == "model"].pivot_table(index=["norm", "seed"], columns="metric", values="value")
    out = pd.concat([sparsity, acc], axis=1).reset_index()
    out["generalisation_gap"] = out["train_accuracy"] - out["test_accuracy"]
    return out


def correlation(x, y) -> tuple[float, float]:
    """Pearson r and its two-sided p-value; NaN when undefined (fewer than 3 points or a constant)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(x) < 3 or x.std() == 0 or y.std() == 0:
        return float("nan"), float("nan")
    r, p = stats.pearsonr(x, y)
    return float(r), float(p)


def _fmt_p(p: float) -> str:
    return "n/a" if not np.isfinite(p) else (f"{p:.2g}")


def format_p(p: float) -> str:
    """A p value as every table and sentence prints it: two significant digits, "n/a" when it is not a number."""
    return "n/a" if not np.isfinite(p) else f"{p:.2g}"


def prose_list(items, empty: str = "no layer") -> str:
    """'conv4', 'conv4 and fc1', 'conv1, conv4 and fc1': a list as a sentence reads it (`empty` when there is none)."""
    items = [str(i) for i in items]
    if not items:
        return empty
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def describe_comparison(cmp: pd.DataFrame, what: str, alpha: float = 0.05) -> str:
    """Plain sentences on where BN is higher, lower or not distinguishable, from a compare_norms table.

    "Higher" and "lower" use the one rule of every verdict here: Holm-corrected p < alpha over the metric's
    layers. A layer with fewer than MIN_SEEDS usable seeds on a side gets no verdict, and the text says so.
    """
    if cmp.empty:
        return f"No {what} values to compare: no usable run has them."
    ok = cmp[cmp.testable]
    untestable = cmp[~cmp.testable].layer.tolist()
    if ok.empty:
        return (f"{what}: NO VERDICT. Fewer than {MIN_SEEDS} usable seeds on a side "
                f"(BN {int(cmp.n_batch.max())}, no BN {int(cmp.n_none.max())}); see the excluded runs above.")
    hit = ok.p_holm < alpha
    higher = ok[hit & (ok["diff"] > 0)].layer.tolist()
    lower = ok[hit & (ok["diff"] < 0)].layer.tolist()
    same = ok[~hit].layer.tolist()
    n = int(ok.n_seeds.min())
    parts = [f"{what}, BN minus no-BN, Welch's t-test over {n}+ usable seed(s) per side, "
             f"Holm-corrected over the {len(ok)} layers, alpha = {alpha}:"]
    parts.append(f"  BN higher in {prose_list(higher)}; BN lower in {prose_list(lower)}; "
                 f"no significant difference in {prose_list(same)}.")
    if untestable:
        parts.append(f"  No verdict in {prose_list(untestable)}: fewer than {MIN_SEEDS} usable seeds on a side.")
    d = ok["diff"]
    parts.append(f"  Differences range from {d.min():+.4f} to {d.max():+.4f} "
                 f"(mean |diff| {d.abs().mean():.4f}).")
    for _, r in cmp.iterrows():
        parts.append(f"    {r.layer:>6}: BN {r.mean_batch:.4f} ± {r.std_batch:.4f}  no-BN {r.mean_none:.4f} ± "
                     f"{r.std_none:.4f}  diff {r['diff']:+.4f}  p={_fmt_p(r.p)}  Holm p={_fmt_p(r.p_holm)}")
    return "\n".join(parts)


def describe_sparsity_vs_generalisation(per_model: pd.DataFrame, sparsity_col: str = "mean_channel_sparsity") -> str:
    """Does a model's sparsity predict its test accuracy? Across all models and within each variant."""
    counts = per_model.groupby("norm").size()
    if per_model.empty or not {"batch", "none"} <= set(counts.index) or counts.min() < MIN_SEEDS:
        return (f"NO VERDICT on sparsity vs generalisation: fewer than {MIN_SEEDS} usable runs per variant "
                f"({dict(counts) if len(counts) else 'none'}).")
    lines = []
    means = per_model.groupby("norm")[[sparsity_col, "test_accuracy", "generalisation_gap"]].mean()
    if {"batch", "none"} <= set(means.index):
        ds = means.loc["batch", sparsity_col] - means.loc["none", sparsity_col]
        da = means.loc["batch", "test_accuracy"] - means.loc["none", "test_accuracy"]
        dg = means.loc["batch", "generalisation_gap"] - means.loc["none", "generalisation_gap"]
        lines.append(f"BN minus no-BN: mean channel sparsity {ds:+.4f}, test accuracy {da:+.4f}, "
                     f"generalisation gap {dg:+.4f}.")
    r, p = correlation(per_model[sparsity_col], per_model["test_accuracy"])
    lines.append(f"Across all {len(per_model)} models: Pearson r(sparsity, test accuracy) = {r:.2f} (p={_fmt_p(p)}).")
    for norm, g in per_model.groupby("norm"):
        r, p = correlation(g[sparsity_col], g["test_accuracy"])
        lines.append(f"  within {norm}: r = {r:.2f} (p={_fmt_p(p)}, {len(g)} models)")
    lines.append("A correlation across all models mixes the BN effect with sparsity; the within-variant "
                 "values say whether sparser models of the same kind generalise better.")
    return "\n".join(lines)


# ------------------------------------------------------------------ many layers, many norms
def holm(pvalues) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values: controls the family-wise error over the tests given.

    Sorted ascending, the i-th smallest (0-based) of m is multiplied by (m - i), then
    made monotone with a running maximum and capped at 1. NaN entries are not tests:
    they stay NaN and do not count in m.
    """
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = len(ok)
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    adjusted = np.minimum(1.0, np.maximum.accumulate(p[order] * (m - np.arange(m))))
    out[order] = adjusted
    return out


def compare_to_reference(df: pd.DataFrame, metrics: list[str], reference: str = "none") -> pd.DataFrame:
    """Every other norm against `reference`, per metric and layer: difference, Welch p, and Holm p over the layers.

    The Holm family is one (norm, metric): the layers of that metric, as the
    README's per-layer verdicts are read.
    """
    frames = []
    for norm in [n for n in dict.fromkeys(df.norm) if n != reference]:
        for metric in metrics:
            cmp = compare_norms(df, metric, a=norm, b=reference)
            if cmp.empty:
                continue
            cmp = cmp.rename(columns={f"mean_{norm}": "mean", f"std_{norm}": "std", f"n_{norm}": "n",
                                      f"mean_{reference}": "mean_ref", f"std_{reference}": "std_ref",
                                      f"n_{reference}": "n_ref"})
            cmp.insert(0, "norm", norm)
            cmp["p_holm"] = holm(cmp.p.where(cmp.testable))
            frames.append(cmp)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def shared_effects(cmp: pd.DataFrame, effect_of: str = "batch", alpha: float = 0.05) -> pd.DataFrame:
    """For each effect `effect_of` has over the reference (Holm p < alpha), which other norms share it.

    A norm shares an effect when its own difference from the reference has the
    same sign and is significant after Holm's correction. `ratio` is its
    difference as a fraction of BN's.
    """
    effects = cmp[(cmp.norm == effect_of) & (cmp.p_holm < alpha)]
    rows = []
    for _, e in effects.iterrows():
        row = {"metric": e.metric, "layer": e.layer, f"{effect_of}_diff": e["diff"], f"{effect_of}_p_holm": e.p_holm}
        sharers = []
        for _, o in cmp[(cmp.metric == e.metric) & (cmp.layer == e.layer) & (cmp.norm != effect_of)].iterrows():
            shares = bool(o.p_holm < alpha and np.sign(o["diff"]) == np.sign(e["diff"]))
            row[f"{o.norm}_ratio"] = o["diff"] / e["diff"]
            row[f"{o.norm}_p_holm"] = o.p_holm
            if shares:
                sharers.append(o.norm)
        row["shared_by"] = ", ".join(sharers) or "none"
        rows.append(row)
    # no effect: still the columns, so the CSV reads back as an empty table
    return pd.DataFrame(rows) if rows else pd.DataFrame(
        columns=["metric", "layer", f"{effect_of}_diff", f"{effect_of}_p_holm", "shared_by"])


def describe_shared_effects(shared: pd.DataFrame, effect_of: str = "batch", reference: str = "none") -> str:
    if shared.empty:
        return f"{effect_of} has no effect over {reference} that survives Holm's correction: nothing to attribute."
    lines = [f"Effects of {effect_of} over {reference} (Holm-corrected p < 0.05 over layers), and which norms "
             f"share them:"]
    for _, r in shared.iterrows():
        lines.append(f"  {r.metric:>18} {r.layer:>6}: {effect_of} − {reference} = {r[f'{effect_of}_diff']:+.4f} "
                     f"(p_holm {_fmt_p(r[f'{effect_of}_p_holm'])}); shared by: {r.shared_by}")
    return "\n".join(lines)
