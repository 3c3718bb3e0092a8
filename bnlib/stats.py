"""BN vs no-BN, compared across seeds. Mean ± std over seeds, always."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats


def summarise(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Mean, std (ddof=1) and n over seeds, per norm and layer."""
    sub = df[df.metric == metric]
    out = (sub.groupby(["norm", "layer_index", "layer"], sort=True)["value"]
           .agg(mean="mean", std="std", n="count").reset_index())
    return out


def compare_norms(df: pd.DataFrame, metric: str, a: str = "batch", b: str = "none") -> pd.DataFrame:
    """Per layer: BN mean/std, no-BN mean/std, difference (a - b), Welch's t-test over seeds.

    With fewer than two seeds per side the test is undefined and reported as NaN.
    """
    sub = df[df.metric == metric]
    rows = []
    for (index, layer), g in sub.groupby(["layer_index", "layer"], sort=True):
        x = g[g.norm == a]["value"].dropna().to_numpy()
        y = g[g.norm == b]["value"].dropna().to_numpy()
        if len(x) >= 2 and len(y) >= 2 and (x.std() > 0 or y.std() > 0):
            t, p = stats.ttest_ind(x, y, equal_var=False)
        else:
            t, p = np.nan, np.nan
        rows.append({"metric": metric, "layer_index": index, "layer": layer,
                     f"mean_{a}": x.mean() if len(x) else np.nan, f"std_{a}": x.std(ddof=1) if len(x) > 1 else np.nan,
                     f"mean_{b}": y.mean() if len(y) else np.nan, f"std_{b}": y.std(ddof=1) if len(y) > 1 else np.nan,
                     "diff": (x.mean() - y.mean()) if len(x) and len(y) else np.nan,
                     "t": t, "p": p, "n_seeds": min(len(x), len(y))})
    return pd.DataFrame(rows)


def sparsity_vs_generalisation(df: pd.DataFrame, sparsity_metric: str = "channel_sparsity") -> pd.DataFrame:
    """One row per model: mean sparsity over hidden layers, test accuracy and generalisation gap."""
    layer_rows = df[(df.metric == sparsity_metric) & (df.layer != "model")]
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


def describe_comparison(cmp: pd.DataFrame, what: str, alpha: float = 0.05) -> str:
    """Plain sentences on where BN is higher, lower or not distinguishable, from a compare_norms table."""
    if cmp.empty:
        return f"No {what} values to compare."
    higher = cmp[(cmp.p < alpha) & (cmp["diff"] > 0)].layer.tolist()
    lower = cmp[(cmp.p < alpha) & (cmp["diff"] < 0)].layer.tolist()
    same = cmp[~((cmp.p < alpha))].layer.tolist()
    n = int(cmp.n_seeds.min())
    parts = [f"{what}, BN minus no-BN, Welch's t-test over {n} seed(s) per side, alpha={alpha}:"]
    parts.append(f"  BN higher in {higher or 'no layer'}; BN lower in {lower or 'no layer'}; "
                 f"no significant difference in {same or 'no layer'}.")
    d = cmp["diff"]
    parts.append(f"  Differences range from {d.min():+.4f} to {d.max():+.4f} "
                 f"(mean |diff| {d.abs().mean():.4f}).")
    for _, r in cmp.iterrows():
        parts.append(f"    {r.layer:>6}: BN {r.mean_batch:.4f} ± {r.std_batch:.4f}  no-BN {r.mean_none:.4f} ± "
                     f"{r.std_none:.4f}  diff {r['diff']:+.4f}  p={_fmt_p(r.p)}")
    return "\n".join(parts)


def describe_sparsity_vs_generalisation(per_model: pd.DataFrame, sparsity_col: str = "mean_channel_sparsity") -> str:
    """Does a model's sparsity predict its test accuracy? Across all models and within each variant."""
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
