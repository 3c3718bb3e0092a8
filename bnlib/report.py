"""The README's Results, written from the committed CSVs: `python -m bnlib.report PROFILE`.

Prints markdown: accuracy per variant, every per-layer comparison with
Welch's p and Holm's correction over the layers of one metric, and a verdict
on each of the paper's three claims, all computed here from
`figures/<profile>/*.csv`. Nothing in a verdict is typed by hand; paste the
output into the README.
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd

from . import stats
from .paths import FIGURES_DIR

ALPHA = 0.05
LABELS = {"channel_sparsity": "channel sparsity", "element_sparsity": "element sparsity",
          "dead_channels": "dead channels", "silhouette": "silhouette", "silhouette_pooled": "silhouette (pooled)"}


def load(profile: str) -> pd.DataFrame:
    folder = FIGURES_DIR / profile
    frames = [pd.read_csv(folder / f"{name}.csv") for name in ("accuracy", "sparsity", "silhouette")
              if (folder / f"{name}.csv").is_file()]
    if not frames:
        raise SystemExit(f"no CSVs in {folder}: run `make figures PROFILE={profile}` first")
    return pd.concat(frames, ignore_index=True)


def _p(p: float) -> str:
    return "n/a" if not np.isfinite(p) else f"{p:.2g}"


def comparisons(df: pd.DataFrame) -> pd.DataFrame:
    """BN vs no BN per metric and layer, with Holm's correction over each metric's layers."""
    frames = []
    for metric in LABELS:
        cmp = stats.compare_norms(df, metric)
        if cmp.empty:
            continue
        cmp["p_holm"] = stats.holm(cmp.p.where(cmp.testable))
        frames.append(cmp)
    return pd.concat(frames, ignore_index=True)


def accuracy_table(df: pd.DataFrame) -> str:
    acc = stats.usable(df)
    acc = acc[acc.layer == "model"].pivot_table(index=["norm", "seed"], columns="metric", values="value")
    excluded = df[(df.metric == "diverged") & (df.value != 0)]
    lines = ["| variant | test accuracy | train accuracy | min test accuracy | usable seeds |", "|---|---|---|---|---|"]
    for norm, g in acc.groupby("norm", sort=False):
        lines.append(f"| {'BN' if norm == 'batch' else 'no BN' if norm == 'none' else norm} | "
                     f"{g.test_accuracy.mean():.4f} ± {g.test_accuracy.std():.4f} | "
                     f"{g.train_accuracy.mean():.4f} ± {g.train_accuracy.std():.4f} | "
                     f"{g.test_accuracy.min():.4f} | {len(g)} |")
    if len(excluded):
        lines.append(f"\nExcluded runs (diverged or at chance): "
                     f"{', '.join(f'{r.norm}/seed{r.seed}' for r in excluded.itertuples())}.")
    return "\n".join(lines)


def comparison_table(cmp: pd.DataFrame) -> str:
    lines = ["| metric | layer | BN | no BN | BN − no BN | p | p (Holm) |", "|---|---|---|---|---|---|---|"]
    for r in cmp.itertuples():
        lines.append(f"| {LABELS[r.metric]} | {r.layer} | {r.mean_batch:.4f} ± {r.std_batch:.4f} | "
                     f"{r.mean_none:.4f} ± {r.std_none:.4f} | {r.diff:+.4f} | {_p(r.p)} | {_p(r.p_holm)} |")
    return "\n".join(lines)


def _layers(cmp, metric, sign=None, significant=True) -> list[str]:
    sub = cmp[(cmp.metric == metric) & cmp.testable]
    hit = sub.p_holm < ALPHA
    if not significant:
        return sub[~hit].layer.tolist()
    return sub[hit & (np.sign(sub["diff"]) == sign)].layer.tolist()


def verdicts(df: pd.DataFrame, cmp: pd.DataFrame) -> str:
    """One verdict per claim of the paper, every clause derived from the numbers."""
    out = []
    # (1) BN's effect on sparsity is small
    cs = cmp[(cmp.metric == "channel_sparsity") & cmp.testable]
    if cs.empty:
        out.append("1. *BN's effect on sparsity is small*: **no verdict** (fewer than 2 usable seeds a side).")
    else:
        sig = cs[cs.p_holm < ALPHA]
        conv = cs[cs.layer.str.startswith("conv")]
        conv_sig = conv[conv.p_holm < ALPHA]
        verdict = ("**supported**" if sig.empty else "**supported for the conv layers only**" if conv_sig.empty
                   else "**not supported**")
        detail = ("no layer differs after Holm's correction" if sig.empty else
                  "; ".join(f"{r.layer}: BN {r.mean_batch:.3f} vs no BN {r.mean_none:.3f} (Holm p = {_p(r.p_holm)})"
                            for r in sig.itertuples()))
        out.append(f"1. *BN's effect on sparsity is small*: {verdict}. Channel sparsity, BN − no BN: largest "
                   f"|difference| in a conv layer {conv['diff'].abs().max():.3f}; {detail}. Element sparsity "
                   f"differs (Holm) in {_layers(cmp, 'element_sparsity', -1) + _layers(cmp, 'element_sparsity', 1) or 'no layer'}.")
    # (2) that effect does not explain generalisation
    per_model = stats.sparsity_vs_generalisation(df)
    counts = per_model.groupby("norm").size() if len(per_model) else pd.Series(dtype=int)
    if len(counts) < 2 or counts.min() < 3:
        out.append("2. *The sparsity effect does not explain generalisation*: **no verdict** (fewer than 3 usable "
                   "runs per variant for a within-variant correlation).")
    else:
        within = {norm: stats.correlation(g.mean_channel_sparsity, g.test_accuracy) for norm, g in per_model.groupby("norm")}
        r_all, p_all = stats.correlation(per_model.mean_channel_sparsity, per_model.test_accuracy)
        strong = [n for n, (r, p) in within.items() if np.isfinite(p) and p < ALPHA]
        verdict = "**consistent**" if not strong else "**not supported**"
        out.append(f"2. *The sparsity effect does not explain generalisation*: {verdict}. Within a variant, a model's "
                   f"mean channel sparsity does not predict its test accuracy at p < {ALPHA} ("
                   + "; ".join(f"{'BN' if n == 'batch' else 'no BN'}: r = {r:.2f}, p = {_p(p)}" for n, (r, p) in within.items())
                   + f"). Across all {len(per_model)} models r = {r_all:.2f} (p = {_p(p_all)}), which mixes in the BN "
                   f"effect itself. With {int(counts.min())} seeds a variant this is weak evidence either way.")
    # (3) BN representations cluster more advantageously
    parts = []
    for metric in ("silhouette", "silhouette_pooled"):
        if (cmp.metric == metric).any():
            hi, lo = _layers(cmp, metric, 1), _layers(cmp, metric, -1)
            parts.append(f"{LABELS[metric]}: BN higher in {hi or 'no layer'}, lower in {lo or 'no layer'}")
    sil = cmp[(cmp.metric == "silhouette") & cmp.testable]
    if sil.empty:
        out.append("3. *BN representations cluster better*: **no verdict** (fewer than 2 usable seeds a side).")
    else:
        hi, lo = _layers(cmp, "silhouette", 1), _layers(cmp, "silhouette", -1)
        verdict = ("**supported**" if hi and not lo else "**supported in the later layers, reversed in "
                   f"{', '.join(lo)}**" if hi and lo else "**not supported**")
        out.append(f"3. *BN representations cluster better*: {verdict} (Holm-corrected over layers). "
                   + "; ".join(parts) + ".")
    return "\n".join(out)


BATCH_STATS = {"batch_noaffine", "batch_after_relu"}
PER_SAMPLE = {"group", "layer", "instance"}


def ingredient(shared_by: set[str]) -> str:
    """Which ingredient of BN an effect needs, read off the norms that share it."""
    if PER_SAMPLE <= shared_by and BATCH_STATS <= shared_by:
        return "normalising at all (every norm shares it)"
    if PER_SAMPLE & shared_by and "batch_noaffine" in shared_by:
        where = "" if "batch_after_relu" in shared_by else " before the ReLU (BN after the ReLU lacks it)"
        return f"normalising{where}, with batch or per-sample statistics"
    if not PER_SAMPLE & shared_by and "batch_noaffine" in shared_by:
        after = "" if "batch_after_relu" in shared_by else "; not after the ReLU"
        return f"batch statistics, not γ/β (no per-sample norm shares it{after})"
    if "batch_noaffine" not in shared_by:
        return "the learned γ, β (BN without them does not share it)"
    return "unclear"


def ablation(profile: str) -> str:
    folder = FIGURES_DIR / profile
    shared = pd.read_csv(folder / "ablation_shared.csv", keep_default_na=False)
    lines = ["| effect of BN over no BN | layer | BN − no BN | p (Holm) | also shown by | the ingredient it needs |",
             "|---|---|---|---|---|---|"]
    for r in shared.itertuples():
        sharers = set() if r.shared_by == "none" else set(r.shared_by.split(", "))
        lines.append(f"| {r.metric.replace('_', ' ')} | {r.layer} | {r.batch_diff:+.4f} | {_p(r.batch_p_holm)} | "
                     f"{r.shared_by} | {ingredient(sharers)} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print(__doc__)
        return 2
    profile = args[0]
    if (FIGURES_DIR / profile / "ablation_shared.csv").is_file():
        print(ablation(profile))
        return 0
    df = load(profile)
    cmp = comparisons(df)
    print(accuracy_table(df), comparison_table(cmp), verdicts(df, cmp), sep="\n\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
