"""A profile's Results, written from its committed CSVs: `python -m bnlib.report PROFILE`.

Prints markdown: accuracy per variant, every per-layer comparison with
Welch's p and Holm's correction over the layers of one metric, and a verdict
on each of the nine claims (the paper's three, the reviewer's matched-accuracy
question and five lenses of the paper's group), all computed here from
`figures/<profile>/*.csv`. Nothing in a verdict is typed by hand: `make refresh`
writes this into `figures/<profile>/README.md`, and the claims grid of every
profile into the README and the appendix.
"""

from __future__ import annotations

import itertools
import re
import sys
from collections import Counter
from contextvars import ContextVar
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from . import measures, stats
from .measures import label
from .paths import FIGURES_DIR

ALPHA = 0.05
# A verdict word's stability (`stability`): recomputed with one seed of each variant left out (16 subsets with 4
# seeds a side, 64 with 8) and at each alpha. It is stable when it comes back in STABLE_SHARE of the subsets and
# the same at every alpha of STABLE_ALPHAS; otherwise every place that shows it says "unstable".
ALPHAS = (0.01, 0.025, 0.05, 0.1)
STABLE_ALPHAS = (0.025, 0.05, 0.1)
STABLE_SHARE = 14 / 16


@dataclass(frozen=True)
class Rules:
    """What a verdict is computed under: its alpha, the runs left out, whether intervals are computed (shown)."""
    alpha: float = ALPHA
    left_out: frozenset = frozenset()  # {(norm, seed)}
    intervals: bool = True


_RULES: ContextVar[Rules] = ContextVar("rules", default=Rules())


def alpha() -> float:
    """The alpha every verdict word is decided at: ALPHA, or the one `stability` is trying."""
    return _RULES.get().alpha


@lru_cache(maxsize=256)
def _read_all(folder: Path, name: str, version: tuple) -> pd.DataFrame:
    from .results import read_measured

    return read_measured(folder, name)


def _read(folder: Path, name: str) -> pd.DataFrame:
    """A measured table of `folder`, without the runs the current rules leave out (read once per version of the
    file and process: `stability` reads each table dozens of times)."""
    path = Path(folder) / f"{name}.csv"
    version = (path.stat().st_mtime_ns, path.stat().st_size) if path.is_file() else None
    table = _read_all(Path(folder), name, version).copy()
    out = _RULES.get().left_out
    if out and {"norm", "seed"} <= set(table.columns):
        table = table[[(n, s) not in out for n, s in zip(table.norm, table.seed)]]
    return table
CSV_FILES = ("accuracy", "sparsity", "silhouette", "views")
# The claims, as every verdict, grid and page names them: 1-3 are the paper's, 5-8 its group's other lenses.
# 4 is the reviewer's question, not the paper's: does 3 hold when BN is compared at no BN's accuracy?
# 9 is the fragmentation paper's own observation, asked of BN and no BN alike (notebook 11).
CLAIMS = {1: "BN's effect on sparsity is small", 2: "The sparsity effect does not explain generalisation",
          3: "BN representations cluster better", 4: "BN representations cluster better at matched accuracy",
          5: "BN's binary codes are more tree-explainable", 6: "BN's layers are more translation-invariant",
          7: "BN's samples lie farther from the decision boundary", 8: "BN's decision regions are less fragmented",
          9: "Fragmentation tracks the test error along training"}
# 5 to 8 are the group's other lenses (notebooks 07 to 10), asked of the same models: the measures each one reads
# (bnlib.measures), its measured table, and what "better" means in its sentence.
LENSES = {5: (("tree_fidelity", "tree_depth_to_target", "tree_accuracy"), "tree_summary", "more explainable"),
          6: (("shift_cosine", "shift_cosine_pooled", "shift_agreement"), "invariance", "more invariant"),
          7: (("margin_hidden_normalised", "margin_input", "margin_input_pca"), "margin_summary",
              "farther from the boundary"),
          8: (("fragmentation_within", "fragmentation_across"), "fragmentation_summary", "less fragmented")}
GAP_CLAIMS = (7, 8)  # the lenses whose papers read them as predictors of generalisation: their sentence says so too
# The columns of a comparison (`comparisons`) a notebook shows: the effect, its interval and both p values.
SHOWN = ["metric", "layer", "mean_batch", "mean_none", "diff", "hedges_g", "g_low", "g_high", "p", "p_holm"]
MATCH_TOLERANCE = 0.015  # the largest test-accuracy gap a matched pair may have
# Claim 1's "small": a layer's mean channel sparsity within 0.05 (5% of its channels) of the other variant's,
# shown by TOST. Claim 2's "does not explain": a within-variant |r| shown below 0.5 (under a quarter of the
# variance in test accuracy). Both fixed before the full-width CIFAR-10 profile runs.
SPARSITY_MARGIN = 0.05
CORRELATION_MARGIN = 0.5
# Profiles in reading order (README grid, appendix); any other folder of figures follows, the ablation last.
PROFILE_ORDER = ("quick", "quick-8seeds", "mnist", "cifar10-cpu", "cifar10", "cifar10-jpeg")


def load(profile: str, figures_dir=FIGURES_DIR) -> pd.DataFrame:
    """The measured long-form tables of figures/<profile>/ as one frame, as the notebooks read them."""
    from .results import long_form

    folder = Path(figures_dir) / profile
    frames = [_read(folder, name) for name in CSV_FILES if (folder / f"{name}.csv").is_file()]
    if not frames:
        raise SystemExit(f"no CSVs in {folder}: run `make figures PROFILE={profile}` first")
    return long_form(*frames)


def _p(p: float) -> str:
    return "n/a" if not np.isfinite(p) else f"{p:.2g}"


def comparisons(df: pd.DataFrame) -> pd.DataFrame:
    """BN vs no BN per metric and layer, with Holm's correction over each metric's layers."""
    frames = []
    by_metric = dict(tuple(stats.usable(df).groupby("metric", sort=False)))  # split once: `stability` calls this often
    for metric in measures.names(compared=True):
        if metric not in by_metric:
            continue
        cmp = stats.compare_norms(by_metric[metric], metric, intervals=_RULES.get().intervals)
        if not cmp.empty:
            frames.append(cmp)
    if not frames:  # no usable run: an empty table with the columns every verdict reads
        return pd.DataFrame(columns=["metric", "layer_index", "layer", "mean_batch", "std_batch", "mean_none",
                                     "std_none", "diff", "t", "p", "n_seeds", "n_batch", "n_none", "testable",
                                     "hedges_g", "g_low", "g_high", "p_holm"]).astype({"testable": bool})
    return pd.concat(frames, ignore_index=True)


def accuracy_table(df: pd.DataFrame) -> str:
    acc = stats.usable(df)
    acc = acc[acc.layer == "model"].pivot_table(index=["norm", "seed"], columns="metric", values="value")
    excluded = stats.excluded_runs(df)
    lines = ["| variant | test accuracy | train accuracy | min test accuracy | usable seeds |", "|---|---|---|---|---|"]
    for norm, g in acc.groupby("norm", sort=False):
        lines.append(f"| {'BN' if norm == 'batch' else 'no BN' if norm == 'none' else norm} | "
                     f"{g.test_accuracy.mean():.4f} ± {g.test_accuracy.std():.4f} | "
                     f"{g.train_accuracy.mean():.4f} ± {g.train_accuracy.std():.4f} | "
                     f"{g.test_accuracy.min():.4f} | {len(g)} |")
    if len(excluded):
        lines.append(f"\nExcluded runs (diverged or failed): "
                     f"{', '.join(f'{norm}/seed{seed}' for norm, seed in excluded)}.")
    return "\n".join(lines)


def comparison_table(cmp: pd.DataFrame) -> str:
    lines = ["| metric | layer | BN | no BN | BN − no BN | Hedges' g [95% CI] | p | p (Holm) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in cmp.itertuples():
        lines.append(f"| {label(r.metric)} | {r.layer} | {_num(r.mean_batch)} ± {_num(r.std_batch)} | "
                     f"{_num(r.mean_none)} ± {_num(r.std_none)} | {_num(r.diff, '+')} | {_g(r)} | {_p(r.p)} | "
                     f"{_p(r.p_holm)} |")
    return "\n".join(lines)


def _num(v: float, sign: str = "") -> str:
    """4 decimals for values below 10 (rates, scores); 4 significant digits for indices like Calinski–Harabasz."""
    return f"{v:{sign}.4f}" if abs(v) < 10 or not np.isfinite(v) else f"{v:{sign}.4g}"


def _g(r) -> str:
    if not np.isfinite(r.hedges_g):
        return "n/a"
    ci = f" [{r.g_low:+.1f}, {r.g_high:+.1f}]" if np.isfinite(r.g_low) else " [n/a]"
    return f"{r.hedges_g:+.1f}{ci}"


def voting(cmp: pd.DataFrame) -> pd.DataFrame:
    """The rows of `cmp` that may vote: a pooled measure only in a conv layer. In an fc layer (or at the output)
    there is nothing to pool, the pooled measure equals its unpooled twin, and the layer would vote twice."""
    pooled = cmp.metric.str.endswith("_pooled")
    return cmp[~pooled | cmp.layer.str.startswith("conv")]


def view_table(cmp: pd.DataFrame) -> pd.DataFrame:
    """Per clustering view and layer: which variant clusters better (Holm over the view's layers), and
    whether that agrees with the silhouette's answer for the layer."""
    rows = []
    sil = {r.layer: _better(r) for r in cmp[cmp.metric == "silhouette"].itertuples()}
    for r in voting(cmp[cmp.metric.isin(measures.names(votes=True))]).itertuples():
        better = _better(r)
        rows.append({"view": label(r.metric), "metric": r.metric, "layer_index": r.layer_index, "layer": r.layer,
                     "better": better, "hedges_g": r.hedges_g, "p_holm": r.p_holm,
                     "agrees_with_silhouette": (better == sil[r.layer]) if r.layer in sil else np.nan})
    return pd.DataFrame(rows)


def agreement_grid(cmp: pd.DataFrame) -> pd.DataFrame:
    """View x layer: which variant clusters better there, and whether the silhouette says the same."""
    views = view_table(cmp)
    if views.empty:
        return pd.DataFrame()
    views["cell"] = [b if m == "silhouette" else f"{b} ({'agrees' if a else 'differs'})"
                     for b, m, a in zip(views.better, views.metric, views.agrees_with_silhouette)]
    order = list(dict.fromkeys(views.sort_values("layer_index").layer))
    return views.pivot(index="view", columns="layer", values="cell")[order].reindex(
        [label(m) for m in measures.names(votes=True) if m in set(views.metric)])


def _better(r) -> str:
    """"BN", "no BN", "no difference" (Holm p >= ALPHA) or "no verdict" (too few seeds), direction-aware."""
    if not r.testable:
        return "no verdict"
    if not r.p_holm < alpha():
        return "no difference"
    bn_higher = r.diff > 0
    return "BN" if bn_higher != measures.lower_is_better(r.metric) else "no BN"


def _per_view(views: pd.DataFrame) -> list[tuple[str, str, list[str], list[str]]]:
    """(view label, which variant it leans to, layers where BN is better, layers where no BN is) per view."""
    per_view = []
    for metric, g in views.groupby("metric", sort=False):
        bn, no = (g.better == "BN").sum(), (g.better == "no BN").sum()
        lean = "BN" if bn > no else "no BN" if no > bn else "neither"
        per_view.append((label(metric), lean, g[g.better == "BN"].layer.tolist(),
                         g[g.better == "no BN"].layer.tolist()))
    return per_view


def _per_view_layers(per_view) -> str:
    return "; ".join(f"{v}: BN better in {stats.prose_list(hi)}, no BN better in {stats.prose_list(lo)}"
                     for v, _, hi, lo in per_view)


def views_say(cmp: pd.DataFrame) -> str:
    """Per clustering view in `cmp`: where BN and where no BN is better (Holm over the view's layers), and which
    variant it leans to."""
    views = view_table(cmp)
    if views.empty or (views.better == "no verdict").all():
        return "No clustering view to compare (fewer than 2 usable seeds a side)."
    per_view = _per_view(views)
    leans = "; ".join(f"{v} leans to {lean}" for v, lean, *_ in per_view)
    return f"{_per_view_layers(per_view)}. So: {leans}."


def claim3(cmp: pd.DataFrame) -> str:
    """Claim 3 from every clustering view present: per view, does BN cluster better in more layers than not?"""
    views = view_table(cmp)
    if views.empty or (views.better == "no verdict").all():
        return f"3. *{CLAIMS[3]}*: **no verdict** (fewer than 2 usable seeds a side)."
    per_view = _per_view(views)
    favour = [v for v, lean, *_ in per_view if lean == "BN"]
    against = [v for v, lean, *_ in per_view if lean == "no BN"]
    if favour and not against and len(favour) > len(per_view) / 2:
        verdict = "**supported**"
    elif favour and len(favour) > len(against):
        verdict = "**mostly supported, not in every view**"
    elif favour or against:
        verdict = "**mixed**" if favour else "**not supported**"
    else:
        verdict = "**not supported** (no view differs after Holm's correction)"
    layers = _per_view_layers(per_view)
    fc = views[views.layer == views.layer.iloc[views.layer_index.argmax()]]
    last = f" In the last hidden layer ({fc.layer.iloc[0]}), {(fc.better == 'BN').sum()} of {len(fc)} views favour BN."
    return (f"3. *{CLAIMS[3]}*: {verdict}. {len(favour)} of {len(per_view)} views favour BN "
            f"over more layers than not ({stats.prose_list(favour, 'none')}), {len(against)} favour no BN "
            f"({stats.prose_list(against, 'none')}); Holm-corrected over each view's layers. {layers}.{last}")


def matched_pairs(dynamics: pd.DataFrame, a: str = "batch", b: str = "none") -> pd.DataFrame:
    """Per seed with both variants: `b` at the end of training, and the snapshot of `a` (same seed) whose test
    accuracy is closest to it (the earliest on a tie). One row per pair, with both accuracies and their gap."""
    acc = dynamics[(dynamics.layer == "model") & (dynamics.metric == "test_accuracy")].sort_values("step")
    rows = []
    for seed in sorted(set(acc[acc.norm == a].seed) & set(acc[acc.norm == b].seed)):
        final = acc[(acc.norm == b) & (acc.seed == seed)].iloc[-1]
        mine = acc[(acc.norm == a) & (acc.seed == seed)]
        best = mine.iloc[int(np.argmin((mine.value - final.value).abs().to_numpy()))]
        rows.append({"seed": seed, f"{a}_epoch": best.epoch, f"{a}_step": best.step, f"{a}_test_accuracy": best.value,
                     f"{b}_epoch": final.epoch, f"{b}_step": final.step, f"{b}_test_accuracy": final.value,
                     "accuracy_gap": abs(best.value - final.value)})
    return pd.DataFrame(rows, columns=["seed", f"{a}_epoch", f"{a}_step", f"{a}_test_accuracy", f"{b}_epoch",
                                       f"{b}_step", f"{b}_test_accuracy", "accuracy_gap"])


def matched_models(dynamics: pd.DataFrame, pairs: pd.DataFrame, a: str = "batch", b: str = "none") -> pd.DataFrame:
    """The rows of `dynamics` of the matched models (each pair's `a` snapshot and `b` at the end), long-form."""
    keys = {(a, r.seed, getattr(r, f"{a}_step")) for r in pairs.itertuples()}
    keys |= {(b, r.seed, getattr(r, f"{b}_step")) for r in pairs.itertuples()}
    keep = np.array([(n, s, t) in keys for n, s, t in zip(dynamics.norm, dynamics.seed, dynamics.step)], dtype=bool)
    return dynamics[keep].reset_index(drop=True)


def describe_snapshots(dynamics: pd.DataFrame) -> str:
    """Which points of training were measured, for how many models, and the test accuracy at each."""
    acc = dynamics[(dynamics.layer == "model") & (dynamics.metric == "test_accuracy")]
    if acc.empty:
        return "No snapshot to show: no usable model."
    lines = [f"{acc.groupby(['norm', 'seed']).ngroups} models measured at {acc.step.nunique()} points of training "
             f"(epochs {stats.prose_list(f'{e:g}' for e in sorted(set(acc.epoch)))}); test accuracy, mean over seeds:"]
    wide = acc.pivot_table(index="epoch", columns="norm", values="value", aggfunc="mean")
    lines += [f"  epoch {epoch:>5g}: " + ", ".join(f"{n} {v:.4f}" for n, v in row.items())
              for epoch, row in wide.iterrows()]
    return "\n".join(lines)


def matched_verdict(dynamics: pd.DataFrame) -> str:
    """Claim 3 asked again at matched accuracy: no BN at the end of training against the BN snapshot of the same
    seed closest in test accuracy, every clustering view measured along training, Holm over each view's layers."""
    pairs = matched_pairs(dynamics)
    head = f"4. *{CLAIMS[4]}*"
    if len(pairs) < stats.MIN_SEEDS:
        return f"{head}: **no verdict** (fewer than {stats.MIN_SEEDS} seeds with both variants and snapshots)."
    far = pairs[pairs.accuracy_gap > MATCH_TOLERANCE]
    if len(far):
        return (f"{head}: **no verdict**: the pairs of seed(s) {stats.prose_list(map(str, far.seed))} differ by up "
                f"to {far.accuracy_gap.max():.3f} in test accuracy (more than {MATCH_TOLERANCE}); keep more "
                f"snapshots (key `snapshots`) where BN passes no BN's final accuracy.")
    cmp = comparisons(matched_models(dynamics, pairs))
    sentence = claim3(cmp)
    if "**no verdict**" in sentence:
        return f"{head}: **no verdict** (fewer than 2 usable seeds a side)."
    detail = sentence.split(": ", 1)[1]
    epochs = stats.prose_list(f"{e:g}" for e in pairs.batch_epoch)
    return (f"{head}: {detail} Matched pairs: no BN at the end of training against BN after {epochs} epoch(s) "
            f"(one per seed); largest test-accuracy gap {pairs.accuracy_gap.max():.3f}, BN − no BN "
            f"{(pairs.batch_test_accuracy - pairs.none_test_accuracy).mean():+.3f} on average.")


def gap_correlations(df: pd.DataFrame, metrics) -> pd.DataFrame:
    """Per measure: each usable model's mean over the measure's layers against its generalisation gap (train − test
    accuracy), Pearson r across all models and within each variant; Holm over every test of the table. `df` holds
    the per-model accuracy rows and the measures' rows (long form)."""
    rows = []
    for metric in metrics:
        per_model = stats.sparsity_vs_generalisation(df, metric)
        for group, g in [("all", per_model)] + list(per_model.groupby("norm")):
            r, p = stats.correlation(g[f"mean_{metric}"], g.generalisation_gap)
            rows.append({"metric": metric, "models": group, "n": len(g), "r": r, "p": p})
    out = pd.DataFrame(rows, columns=["metric", "models", "n", "r", "p"])
    out["p_holm"] = stats.holm(out.p.to_numpy()) if len(out) else []
    return out


def describe_gap(gap: pd.DataFrame) -> str:
    """Which measures track the generalisation gap (Holm p < ALPHA), across all models and within a variant."""
    if gap.empty or not np.isfinite(gap.r).any():
        return "No measure can be correlated with the generalisation gap (fewer than 3 usable models)."
    names = {"all": "all models", "batch": "BN", "none": "no BN"}
    hits = gap[gap.p_holm < alpha()]
    says = ("none tracks it (Holm over the table)" if hits.empty else "; ".join(
        f"{label(r.metric)} across {names.get(r.models, r.models)} (r = {r.r:.2f}, Holm p = {_p(r.p_holm)})"
        for r in hits.itertuples()))
    within = gap[gap.models != "all"]
    return (f"Against the generalisation gap (train − test accuracy), per model: {says}. Within a variant, "
            f"|r| is at most {within.r.abs().max():.2f} over {int(within.n.max())} models.")


def lens_verdict(claim: int, cmp: pd.DataFrame) -> str:
    """Claim 5 or 6 (LENSES) from the BN vs no BN comparison of each of its measures, Holm over each measure's
    layers: **supported** when every measure that differs anywhere leans to BN and they are most of the
    measures, **the opposite** when they all lean to no BN, **mixed** otherwise, and **no difference** when none
    differs."""
    metrics, _, better = LENSES[claim]
    head = f"{claim}. *{CLAIMS[claim]}*"
    rows = voting(cmp[cmp.metric.isin(metrics)])
    if rows.empty or not rows.testable.any():
        return f"{head}: **no verdict** (fewer than 2 usable seeds a side)."
    views = rows.assign(better=[_better(r) for r in rows.itertuples()])
    per_view = _per_view(views)
    favour = [v for v, lean, *_ in per_view if lean == "BN"]
    against = [v for v, lean, *_ in per_view if lean == "no BN"]
    if not favour and not against:
        verdict = "**no difference**"
    elif favour and not against:
        verdict = "**supported**" if len(favour) > len(per_view) / 2 else "**mixed**"
    elif against and not favour:
        verdict = "**the opposite**" if len(against) > len(per_view) / 2 else "**mixed**"
    else:
        verdict = "**mixed**"
    return (f"{head}: {verdict}. Better here means {better}; per measure, Holm over its layers: "
            f"{_per_view_layers(per_view)}. {len(favour)} of {len(per_view)} measures lean to BN, {len(against)} to "
            f"no BN.")


def _layers(cmp, metric, sign=None, significant=True) -> list[str]:
    sub = cmp[(cmp.metric == metric) & cmp.testable]
    hit = sub.p_holm < alpha()
    if not significant:
        return sub[~hit].layer.tolist()
    return sub[hit & (np.sign(sub["diff"]) == sign)].layer.tolist()


def claim1(cs: pd.DataFrame, cmp: pd.DataFrame) -> str:
    """Claim 1 from the channel-sparsity rows `cs`: per layer, TOST equivalence within +-SPARSITY_MARGIN and Welch's
    test, each Holm-corrected over the layers. **supported** when every layer is shown equivalent; **supported for
    the conv layers only** when every conv layer is and a later layer differs by more than the margin; **not
    supported** when a conv layer does; **undetermined** otherwise (neither shown small nor shown large)."""
    cs = cs.assign(p_tost=[stats.tost_from_summary(r.mean_batch, r.std_batch, r.n_batch, r.mean_none, r.std_none,
                                                   r.n_none, SPARSITY_MARGIN) for r in cs.itertuples()])
    cs = cs.assign(p_tost_holm=stats.holm(cs.p_tost.to_numpy()))
    equivalent = cs.p_tost_holm < alpha()
    large = (cs.p_holm < alpha()) & (cs["diff"].abs() > SPARSITY_MARGIN)
    conv = cs.layer.str.startswith("conv")
    if equivalent.all():
        verdict = "supported"
    elif large[conv].any():
        verdict = "not supported"
    elif equivalent[conv].all() and large[~conv].any():
        verdict = "supported for the conv layers only"
    else:
        verdict = "undetermined"
    shown = cs[equivalent].layer.tolist()
    big = "; ".join(f"{r.layer}: BN {r.mean_batch:.3f} vs no BN {r.mean_none:.3f} (Holm p = {_p(r.p_holm)})"
                    for r in cs[large].itertuples())
    return (f"1. *{CLAIMS[1]}*: **{verdict}**. Channel sparsity, BN − no BN, tested for equivalence within "
            f"±{SPARSITY_MARGIN} (TOST, Holm over the {len(cs)} layers): shown small in "
            f"{stats.prose_list(shown)} ({len(shown)} of {len(cs)}); larger than the margin in "
            f"{big if big else 'no layer'}; largest |difference| in a conv layer {cs[conv]['diff'].abs().max():.3f}. "
            f"Element sparsity differs (Holm) in "
            f"{stats.prose_list(_layers(cmp, 'element_sparsity', -1) + _layers(cmp, 'element_sparsity', 1))}.")


def claim2(per_model: pd.DataFrame) -> str:
    """Claim 2 from each model's mean channel sparsity and test accuracy, within each variant (across variants r
    mixes in the BN effect itself). **not supported** when a within-variant r differs from 0 (Holm over the
    variants); **supported** when every within-variant 95% interval (Fisher's z) lies inside
    +-CORRELATION_MARGIN; **undetermined** otherwise: with 4 seeds a variant, r's interval spans most of [-1, 1]."""
    within = {norm: stats.correlation(g.mean_channel_sparsity, g.test_accuracy) for norm, g in
              per_model.groupby("norm")}
    n = per_model.groupby("norm").size().to_dict()
    intervals = {norm: stats.correlation_interval(r, n[norm]) for norm, (r, _) in within.items()}
    holm_p = dict(zip(within, stats.holm([p for _, p in within.values()])))  # one family: this claim's tests
    r_all, p_all = stats.correlation(per_model.mean_channel_sparsity, per_model.test_accuracy)
    related = [v for v in within if np.isfinite(holm_p[v]) and holm_p[v] < alpha()]
    weak = all(np.isfinite(lo) and -CORRELATION_MARGIN < lo and hi < CORRELATION_MARGIN
               for lo, hi in intervals.values())
    verdict = "not supported" if related else "supported" if weak else "undetermined"
    name = {"batch": "BN", "none": "no BN"}
    return (f"2. *{CLAIMS[2]}*: **{verdict}**. Within a variant, a model's mean channel sparsity against its test "
            f"accuracy: " + "; ".join(f"{name.get(v, v)}: r = {r:.2f} [{intervals[v][0]:+.2f}, {intervals[v][1]:+.2f}]"
                                      f" over {n[v]} models, Holm p = {_p(holm_p[v])}"
                                      for v, (r, p) in within.items())
            + f". \"Does not explain\" needs every interval inside ±{CORRELATION_MARGIN}; \"explains\" a Holm p < "
            f"{ALPHA}. Across all {len(per_model)} models r = {r_all:.2f} (p = {_p(p_all)}), which mixes in the BN "
            f"effect itself.")


def verdicts(df: pd.DataFrame, cmp: pd.DataFrame, claims=(1, 2, 3)) -> str:
    """One verdict per claim of the paper, every clause derived from the numbers.

    The README (`python -m bnlib.report`) and the notebooks print these same sentences.
    """
    out = []
    # (1) BN's effect on sparsity is small: shown, per layer, by an equivalence test, never by a failed t-test
    cs = cmp[(cmp.metric == "channel_sparsity") & cmp.testable]
    if 1 not in claims:
        pass
    elif cs.empty:
        out.append(f"1. *{CLAIMS[1]}*: **no verdict** (fewer than 2 usable seeds a side).")
    else:
        out.append(claim1(cs, cmp))
    # (2) that effect does not explain generalisation: a correlation shown to be weak, or one shown to exist
    per_model = stats.sparsity_vs_generalisation(df) if 2 in claims else pd.DataFrame()
    counts = per_model.groupby("norm").size() if len(per_model) else pd.Series(dtype=int)
    if 2 not in claims:
        pass
    elif len(counts) < 2 or counts.min() < 4:
        out.append(f"2. *{CLAIMS[2]}*: **no verdict** (fewer than 4 usable "
                   "runs per variant for a within-variant correlation and its interval).")
    else:
        out.append(claim2(per_model))
    # (3) BN representations cluster more advantageously: every clustering view present
    if 3 in claims:
        out.append(claim3(cmp))
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


def ablation(profile: str, figures_dir=FIGURES_DIR) -> str:
    folder = Path(figures_dir) / profile
    from .files import read_csv

    shared = read_csv(folder / "ablation_shared.csv", keep_default_na=False)
    lines = [accuracy_table(load(profile, figures_dir)), ""]
    lines += ["| effect of BN over no BN | layer | BN − no BN | p (Holm) | also shown by | the ingredient it needs |",
             "|---|---|---|---|---|---|"]
    for r in shared.itertuples():
        sharers = set() if r.shared_by == "none" else set(r.shared_by.split(", "))
        lines.append(f"| {r.metric.replace('_', ' ')} | {r.layer} | {r.batch_diff:+.4f} | {_p(r.batch_p_holm)} | "
                     f"{r.shared_by} | {ingredient(sharers)} |")
    return "\n".join(lines)


def grid_markdown(grid: pd.DataFrame) -> str:
    if grid.empty:
        return ""
    lines = ["| view | " + " | ".join(grid.columns) + " |", "|---|" + "---|" * len(grid.columns)]
    lines += [f"| {view} | " + " | ".join(str(v) for v in row) + " |" for view, row in grid.iterrows()]
    return "\n".join(lines)


def power(cmp: pd.DataFrame) -> str:
    """`stats.describe_power` for the fewest seeds any comparison in `cmp` had, or why there is none."""
    n_a, n_b = (cmp[c].min() if len(cmp) else float("nan") for c in ("n_batch", "n_none"))
    if not (n_a >= 2 and n_b >= 2):  # also NaN: no usable seed on a side
        return "Power: not computed (fewer than 2 usable seeds a side)."
    return stats.describe_power(int(n_a), int(n_b), cmp.layer.nunique())


def profile_report(profile: str, figures_dir=FIGURES_DIR) -> str:
    """The README's Results block of one profile: accuracy, verdicts, power, per-layer table, view agreement."""
    if (Path(figures_dir) / profile / "ablation_shared.csv").is_file():
        return ablation(profile, figures_dir)
    df = load(profile, figures_dir)
    cmp = comparisons(df)
    lens_cmp = lens_comparisons(profile, figures_dir)
    parts = [accuracy_table(df), claim_sentences(profile, df, cmp, lens_cmp, figures_dir)]
    if len(cmp):
        parts.append(power(cmp))
        parts.append(f"How stable each word is, from these CSVs alone: with one seed of each variant left out (every "
                     f"pair), and at other alphas. A word that comes back in fewer than {STABLE_SHARE:.0%} of the "
                     f"subsets, or that changes between α = {STABLE_ALPHAS[0]} and {STABLE_ALPHAS[-1]}, is unstable, "
                     f"and the claims grid says so.\n\n" + stability_table(profile, figures_dir))
    grid = grid_markdown(agreement_grid(cmp))
    if grid:
        parts.append("Which variant clusters better, per view and layer (Holm over the view's layers), and whether "
                     "the view agrees with the silhouette there:\n\n" + grid)
    parts.append("<details><summary>Every per-layer comparison: means ± std over seeds, Hedges' g with a noncentral-t "
                 "95% CI, Welch's p, Holm's p</summary>\n\n" + comparison_table(pd.concat([cmp, *lens_cmp.values()]))
                 + "\n\n</details>")
    return "\n\n".join(parts)


def claim_words(text: str) -> dict[int, str]:
    """{claim: its one-phrase verdict} from `verdicts` text: the bold phrase of each numbered sentence."""
    return {int(n): word for n, word in re.findall(r"^(\d)\. \*[^*]+\*: \*\*([^*]+)\*\*", text, flags=re.M)}


def profile_claims(profile: str, figures_dir=FIGURES_DIR) -> dict[int, str]:
    """The one-phrase verdict of each claim on a profile (an ablation profile: what each of BN's effects needs)."""
    folder = Path(figures_dir) / profile
    if (folder / "ablation_shared.csv").is_file():
        return ablation_claims(profile, figures_dir)
    try:
        df = load(profile, figures_dir)
    except SystemExit:  # a folder with notebooks but no measured CSVs yet: no verdict to show
        return {}
    return claim_words(claim_sentences(profile, df, comparisons(df), figures_dir=figures_dir))


def claim_sentences(profile: str, df: pd.DataFrame, cmp: pd.DataFrame, lens_cmp: dict | None = None,
                    figures_dir=FIGURES_DIR) -> str:
    """Every numbered claim's sentence of a profile, one a line: claims 1-3 from its measures (`df`, `cmp`), then
    those of the notebooks it has measured (matched accuracy, the lenses, fragmentation along training). The one
    chain behind both the Results block and the claims grid, so the two cannot disagree."""
    return (verdicts(df, cmp) + _matched(profile, figures_dir) + _lenses(profile, figures_dir, lens_cmp)
            + _along_training(profile, figures_dir))


def _matched(profile: str, figures_dir=FIGURES_DIR) -> str:
    """Claim 4's sentence (after a newline) when the profile has measured its training dynamics, else ""."""
    folder = Path(figures_dir) / profile
    if not (folder / "dynamics.csv").is_file():
        return ""
    return "\n" + matched_verdict(_read(folder, "dynamics"))


def lens_comparisons(profile: str, figures_dir=FIGURES_DIR) -> dict[int, pd.DataFrame]:
    """{claim: its BN vs no BN comparisons} for each lens (LENSES) the profile has measured."""
    folder = Path(figures_dir) / profile
    return {claim: comparisons(_read(folder, table)) for claim, (_, table, _) in LENSES.items()
            if (folder / f"{table}.csv").is_file()}


def _lenses(profile: str, figures_dir=FIGURES_DIR, lens_cmp: dict | None = None) -> str:
    """The sentences of claims 5 to 8 (after a newline each) for the lenses the profile has measured; those of
    GAP_CLAIMS end with what their measures say about the generalisation gap."""
    from .results import long_form

    folder = Path(figures_dir) / profile
    lens_cmp = lens_comparisons(profile, figures_dir) if lens_cmp is None else lens_cmp
    out = ""
    for claim, cmp in lens_cmp.items():
        out += "\n" + lens_verdict(claim, cmp)
        if claim in GAP_CLAIMS:
            metrics, table, _ = LENSES[claim]
            df = long_form(_read(folder, "accuracy"), _read(folder, table))
            out += " " + describe_gap(gap_correlations(df, metrics))
    return out


def _along_training(profile: str, figures_dir=FIGURES_DIR) -> str:
    """Claim 9's sentence (after a newline) when the profile has measured fragmentation along training, else ""."""
    folder = Path(figures_dir) / profile
    if not all((folder / f"{t}.csv").is_file() for t in ("fragmentation_dynamics", "dynamics")):
        return ""
    return "\n" + describe_fragmentation_dynamics(fragmentation_along_training(
        _read(folder, "fragmentation_dynamics"), _read(folder, "dynamics")))


ABLATION_CLAIM_METRICS = {1: ("channel_sparsity", "element_sparsity"), 3: ("silhouette", "silhouette_pooled")}


def ablation_claims(profile: str, figures_dir=FIGURES_DIR) -> dict[int, str]:
    """Per claim with a measured effect: how many of BN's significant effects need which ingredient."""
    from .files import read_csv

    shared = read_csv(Path(figures_dir) / profile / "ablation_shared.csv", keep_default_na=False)
    out = {}
    for claim, metrics in ABLATION_CLAIM_METRICS.items():
        rows = shared[shared.metric.isin(metrics)]
        needs = [ingredient(set() if r.shared_by == "none" else set(r.shared_by.split(", "))).split(" (")[0]
                 for r in rows.itertuples()]
        counts = pd.Series(needs, dtype=object).value_counts(sort=True)
        out[claim] = "; ".join(f"{k} ×{v}" for k, v in counts.items()) if len(counts) else "no effect of BN"
    return out


def ordered_profiles(found) -> list[str]:
    """Profiles in reading order: PROFILE_ORDER, then the others by name, the ablation profiles last."""
    found = set(found)
    ablations = sorted(p for p in found if "ablation" in p)
    rest = found - set(ablations)
    return [p for p in PROFILE_ORDER if p in rest] + sorted(rest - set(PROFILE_ORDER)) + ablations


@dataclass(frozen=True)
class Stability:
    """How one claim's word holds up on a profile: in how many leave-one-seed-out subsets it comes back, the most
    common word there, and the word at each alpha of ALPHAS."""
    word: str
    same: int
    subsets: int
    most_common: str
    at_alpha: dict

    @property
    def stable(self) -> bool:
        return (self.same >= STABLE_SHARE * self.subsets
                and all(self.at_alpha[a] == self.word for a in STABLE_ALPHAS))

    def cell(self) -> str:
        """The word as the grid and the pages print it: "word (k/n)", or what makes it unstable."""
        if self.stable:
            return f"{self.word} ({self.same}/{self.subsets})"
        moved = [f"α = {a}: {w}" for a, w in self.at_alpha.items() if a in STABLE_ALPHAS and w != self.word]
        most = f", most often {self.most_common}" if self.most_common != self.word else ""
        return f"{self.word}, unstable ({self.same}/{self.subsets}{most}{'; ' if moved else ''}{'; '.join(moved)})"


def _words(profile: str, figures_dir, claims) -> dict[int, str]:
    """The words of `claims` (None: every claim) on a profile, computing only what those claims read."""
    folder = Path(figures_dir) / profile
    wanted = set(CLAIMS) if claims is None else set(claims)
    text = ""
    if wanted & {1, 2, 3}:
        df = load(profile, figures_dir)
        text += verdicts(df, comparisons(df), claims=tuple(sorted(wanted & {1, 2, 3})))
    if 4 in wanted:
        text += _matched(profile, figures_dir)
    for claim, (_, table, _) in LENSES.items():
        if claim in wanted and (folder / f"{table}.csv").is_file():
            text += "\n" + lens_verdict(claim, comparisons(_read(folder, table)))
    if 9 in wanted:
        text += _along_training(profile, figures_dir)
    return claim_words(text)


def _under(rules: Rules, profile: str, figures_dir, claims) -> dict[int, str]:
    token = _RULES.set(rules)
    try:
        return _words(profile, figures_dir, claims)
    finally:
        _RULES.reset(token)


@lru_cache(maxsize=64)
def stability(profile: str, figures_dir=FIGURES_DIR, claims: tuple | None = None) -> dict[int, Stability]:
    """{claim: Stability} on a profile, from its CSVs alone: each claim's word with one usable seed of BN and one of
    no BN left out (every pair: 16 subsets with 4 seeds a side), and at each alpha of ALPHAS. `claims` (None:
    all) limits it to those a notebook prints."""
    words = _words(profile, figures_dir, claims)
    acc = stats.usable(load(profile, figures_dir))
    seeds = {n: sorted(set(acc[acc.norm == n].seed)) for n in ("batch", "none")}
    fast = Rules(intervals=False)
    subsets = [_under(replace(fast, left_out=frozenset({("batch", a), ("none", b)})), profile, figures_dir, claims)
               for a, b in itertools.product(seeds["batch"], seeds["none"])]
    at = {a: _under(replace(fast, alpha=a), profile, figures_dir, claims) for a in ALPHAS}
    out = {}
    for claim, word in words.items():
        counts = Counter(s.get(claim, "no verdict") for s in subsets)
        out[claim] = Stability(word, counts[word], len(subsets), counts.most_common(1)[0][0] if counts else word,
                               {a: at[a].get(claim, "no verdict") for a in ALPHAS})
    return out


def stability_table(profile: str, figures_dir=FIGURES_DIR, claims: tuple | None = None) -> str:
    """Markdown: per claim, its word, how often it comes back with one seed a side left out, and at each alpha."""
    rows = stability(profile, figures_dir, claims)
    lines = ["| claim | word | same word, one seed a side left out | most common there | "
             + " | ".join(f"α = {a}" for a in ALPHAS) + " |", "|---" * (4 + len(ALPHAS)) + "|"]
    for claim, s in rows.items():
        lines.append(f"| {claim} | {s.word}{'' if s.stable else ' (unstable)'} | {s.same}/{s.subsets} | "
                     f"{s.most_common} | " + " | ".join(s.at_alpha[a] for a in ALPHAS) + " |")
    return "\n".join(lines)


def stability_of(folder: Path, claims: tuple) -> str:
    """What a notebook prints under its verdicts: each of its claims' stability on the CSVs of `folder`."""
    folder = Path(folder)
    if not any(s.subsets for s in stability(folder.name, folder.parent, claims).values()):
        return "Stability: not computed (it needs 2 usable seeds a side after one is left out)."
    return (f"How stable these words are (one seed of each variant left out, every pair; and at other alphas; "
            f"unstable below {STABLE_SHARE:.0%} or when the word changes between α = {STABLE_ALPHAS[0]} and "
            f"{STABLE_ALPHAS[-1]}):\n" + "\n".join(f"  claim {c}: {s.cell()}" for c, s in
                                                    stability(folder.name, folder.parent, claims).items()))


def claims_grid(profiles, link, figures_dir=FIGURES_DIR) -> str:
    """Markdown: claims × profiles, each cell the one-phrase verdict linked by `link(profile)` to its full block.

    An ablation profile's column says which ingredient of BN each of its effects needs, counted over layers.
    """
    profiles = list(profiles)
    words = {p: profile_claims(p, figures_dir) for p in profiles}
    for p in profiles:
        if not (Path(figures_dir) / p / "ablation_shared.csv").is_file() and words[p]:
            words[p] = {n: s.cell() for n, s in stability(p, figures_dir).items()}
    head = ["claim"] + [f"[{p}]({link(p)})" for p in profiles]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for n, claim in CLAIMS.items():
        cells = [f"[{words[p][n]}]({link(p)})" if n in words[p] else "–" for p in profiles]
        lines.append(f"| {n}. {claim} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def profile_page(profile: str, made_by: str, figures_dir=FIGURES_DIR) -> str:
    """figures/<profile>/README.md: how the profile was made, its figures, and its full Results block."""
    folder = Path(figures_dir) / profile
    figures = [p.stem for p in sorted(folder.glob("*.png"))]
    return "\n".join([
        f"# Results: `{profile}`", "",
        f"Made by `{made_by}`. Every number below is computed by `python -m bnlib.report {profile}` from the CSVs "
        f"in this folder, and `make refresh` re-renders this page, the figures and the executed notebooks from "
        f"them; the verdicts use Holm's correction over layers (p < {ALPHA}).", "",
        " ".join(f"[![{f}]({f}.png)]({f}.csv)" for f in figures), "",
        "## Results", "", profile_report(profile, figures_dir), ""])


# ------------------------------------------------------------------ prose of the notebooks
def describe_exclusions(df: pd.DataFrame) -> str:
    """Which runs are left out of every statistic, from the per-model rows (accuracy.csv); every notebook prints it."""
    runs = len(df[(df.layer == "model") & (df.metric == measures.EXCLUDED)])
    out = stats.excluded_runs(df)
    if not out:
        return f"All {runs} runs are usable: none is excluded from the statistics."
    lines = [f"{len(out)} of {runs} runs are EXCLUDED from every statistic and figure (diverged or failed):"]
    lines += [f"  {norm}, seed {seed}" for norm, seed in out]
    return "\n".join(lines)


def describe_cka(cka: pd.DataFrame, a: str = "batch", b: str = "none") -> str:
    """Per layer: CKA of BN vs no BN (same seed) against the seed-to-seed baseline of each variant."""
    if cka.empty:
        return "No CKA to report: fewer than two usable models."
    lines = ["Linear CKA, mean ± std over pairs. A layer BN really changes sits far below both baselines:"]
    for (index, layer), g in cka.groupby(["layer_index", "layer"], sort=True):
        parts = []
        for pair in (f"{a} vs {b}", f"{a} vs {a}", f"{b} vs {b}"):
            v = g[g.pair == pair].cka
            parts.append(f"{pair} {v.mean():.3f} ± {v.std():.3f}" if len(v) > 1 else
                         f"{pair} {v.mean():.3f}" if len(v) else f"{pair} n/a")
        across = g[g.pair == f"{a} vs {b}"].cka
        baseline = g[g.pair != f"{a} vs {b}"].cka
        gap = baseline.min() - across.max() if len(across) and len(baseline) else float("nan")
        flag = "  <- below every seed-to-seed pair" if gap > 0 else ""
        lines.append(f"  {layer:>6}: " + "; ".join(parts) + flag)
    return "\n".join(lines)


def dataset_title(params) -> str:
    """The dataset's display name, for figure titles."""
    from .data import dataset_title as title

    return title(params.dataset)


def accuracy_summary(df: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over the usable seeds of each variant's train and test accuracy, and how many seeds."""
    acc = stats.usable(df)
    acc = acc[(acc.layer == "model") & acc.metric.isin(["train_accuracy", "test_accuracy"])]
    if acc.empty:
        return pd.DataFrame(columns=["norm", "metric", "mean", "std", "usable_seeds"])
    return (acc.groupby(["norm", "metric"])["value"].agg(mean="mean", std="std", usable_seeds="count")
            .reset_index())


def describe_accuracy(df: pd.DataFrame) -> str:
    """Mean ± std over the usable seeds of train and test accuracy per variant, and how many were excluded."""
    acc = df[df.layer == "model"].pivot_table(index=["norm", "seed"], columns="metric", values="value")
    lines = []
    for norm, g in acc.groupby("norm"):
        excluded = int(g[measures.EXCLUDED].sum())
        ok = g[g[measures.EXCLUDED] == 0]
        tail = f"; {excluded} run(s) excluded (diverged or failed)" if excluded else ""
        if len(ok) == 0:
            lines.append(f"{norm:>5}: no usable run{tail}")
            continue
        lines.append(f"{norm:>5}: test accuracy {ok.test_accuracy.mean():.4f} ± {ok.test_accuracy.std():.4f}, "
                     f"train accuracy {ok.train_accuracy.mean():.4f} ± {ok.train_accuracy.std():.4f} "
                     f"over {len(ok)} usable seed(s){tail}")
    return "\n".join(lines)


def embedding_silhouettes(embedding: pd.DataFrame) -> pd.DataFrame:
    """Silhouette (classes as clusters) of each 2-D UMAP panel."""
    import torch

    from .metrics import silhouette_score

    rows = []
    for (norm, layer), g in embedding.groupby(["norm", "layer"], sort=False):
        xy = torch.from_numpy(g[["umap_x", "umap_y"]].to_numpy(copy=True))
        rows.append({"norm": norm, "layer": layer, "umap_silhouette": silhouette_score(xy, g["label"].to_numpy())})
    return pd.DataFrame(rows)


def describe_embedding_silhouettes(scores: pd.DataFrame, norms=("batch", "none")) -> str:
    """Per layer, which variant's 2-D picture separates the classes more; no comparison when a panel is missing."""
    if scores.empty:
        return "No UMAP panel to compare: no usable model for the chosen seed."
    wide = scores.pivot(index="layer", columns="norm", values="umap_silhouette")
    missing = [n for n in norms if n not in wide.columns]
    lines = ["Silhouette of the 2-D UMAP embedding (classes as clusters), one seed:"]
    for layer, r in wide.reindex(list(dict.fromkeys(scores.layer))).iterrows():
        parts = ", ".join(f"{n} {r[n]:.3f}" for n in wide.columns)
        if missing:
            lines.append(f"  {layer:>6}: {parts} -> no comparison: no usable {'/'.join(missing)} model")
            continue
        better = "BN" if r["batch"] > r["none"] else "no BN"
        lines.append(f"  {layer:>6}: {parts} -> {better} separates the classes more in this picture")
    return "\n".join(lines)


README = Path(__file__).resolve().parent.parent / "README.md"


def replace_block(text: str, tag: str, content: str) -> str:
    """`text` with the lines between `<!-- tag -->` and `<!-- /tag -->` replaced by `content`."""
    start, end = f"<!-- {tag} -->", f"<!-- /{tag} -->"
    if start not in text or end not in text:
        raise SystemExit(f"no {start} ... {end} block to update")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{content}\n{end}{tail}"


def describe_trees(trees: pd.DataFrame, params) -> str:
    """What the trees of notebook 07 were asked, and how many model-layers never reached the target fidelity."""
    depth = trees[trees.metric == "tree_depth_to_target"]
    missed = depth[depth.value > params.tree_max_depth]  # censored: scored tree_max_depth + 1
    models = trees.groupby(["norm", "seed"]).ngroups
    where = "" if missed.empty else ": " + ", ".join(
        f"{layer} ({stats.prose_list(sorted(set(g.norm)))})" for layer, g in missed.groupby("layer", sort=False))
    return (f"{models} models: one tree a layer over its binary code, grown to depth {params.tree_max_depth}; "
            f"measures at depth {params.tree_depth}. {len(missed)} of {len(depth)} model-layers never reach a test "
            f"fidelity of {params.tree_fidelity_target:g}{where} (scored {params.tree_max_depth + 1}, deeper than any "
            f"that does, in the depth comparison).")


def describe_translation(maps: pd.DataFrame) -> str:
    """The grid of the translation maps of notebook 08, and the mean prediction agreement of each variant."""
    if maps.empty:
        return "No translation map: no usable model."
    grid = sorted(set(maps.dx))
    agree = maps[(maps.metric == "agreement") & ((maps.dx != 0) | (maps.dy != 0))]
    per_norm = agree.groupby(["norm", "seed"]).value.mean().groupby("norm")
    return (f"{maps.groupby(['norm', 'seed']).ngroups} models; shifts dx, dy in {grid[0]}..{grid[-1]} "
            f"({len(grid) ** 2} in all). Prediction unchanged by a shift, mean ± std over seeds: "
            + ", ".join(f"{n} {g.mean():.3f} ± {g.std():.3f}" for n, g in per_norm) + ".")


def describe_margins(margins: pd.DataFrame) -> str:
    """What notebook 09 measured: samples a model, and how many DeepFool left unflipped."""
    if margins.empty:
        return "No margins: no usable model."
    inputs = margins[margins.layer == "input"]
    unflipped = inputs.groupby("kind").unflipped.sum()
    return (f"{margins.groupby(['norm', 'seed']).ngroups} models; margins of {int(inputs.samples.min())} to "
            f"{int(inputs.samples.max())} correctly classified samples a model. Not flipped within the step limit "
            f"(left out of the quartiles): " + ", ".join(f"{k} {int(v)}" for k, v in unflipped.items()) + ".")


def describe_fragmentation(regions: pd.DataFrame) -> str:
    """What notebook 10 measured: the triplets and spaces, and the mean regions of each variant in the input."""
    if regions.empty:
        return "No fragmentation: no usable model."
    first = regions[(regions.norm == regions.norm.iloc[0]) & (regions.seed == regions.seed.iloc[0])]
    inputs = regions[regions.layer == "input"].groupby(["norm", "seed"]).regions.mean().groupby("norm")
    triplets = first.groupby(["source", "kind"]).triplet.nunique().sum()
    spaces = ", ".join(dict.fromkeys(first.layer))
    return (f"{regions.groupby(['norm', 'seed']).ngroups} models; {triplets} triplets a space, spaces: {spaces}. "
            "Class regions on an input-space plane, mean ± std over seeds: "
            + ", ".join(f"{n} {g.mean():.2f} ± {g.std():.2f}" for n, g in inputs) + ".")


def fragmentation_along_training(regions: pd.DataFrame, dynamics: pd.DataFrame) -> pd.DataFrame:
    """Per model and snapshot: the mean class regions over its input-space planes (fragmentation_dynamics.csv), its
    test accuracy at that snapshot (dynamics.csv) and the test error."""
    keys = ["dataset", "arch", "norm", "seed", "epoch", "step"]
    mean = regions.groupby(keys, as_index=False).regions.mean()
    acc = dynamics[(dynamics.layer == "model") & (dynamics.metric == "test_accuracy")]
    out = mean.merge(acc[["norm", "seed", "step", "value"]].rename(columns={"value": "test_accuracy"}),
                     on=["norm", "seed", "step"], how="left", validate="one_to_one")
    return out.assign(test_error=1 - out.test_accuracy)


def fragmentation_tracking(along: pd.DataFrame) -> pd.DataFrame:
    """Per model: Spearman's rho between its mean class regions and its test error over its snapshots after the
    initialisation (epoch 0 is left out: an untrained network's planes say nothing of learning), and how many
    snapshots it had; rho is NaN with fewer than 3 or a constant series."""
    from scipy.stats import spearmanr

    rows = []
    for (norm, seed), g in along[along.epoch > 0].groupby(["norm", "seed"]):
        constant = g.regions.nunique() < 2 or g.test_error.nunique() < 2
        rho = float("nan") if len(g) < 3 or constant else float(spearmanr(g.regions, g.test_error).statistic)
        rows.append({"norm": norm, "seed": seed, "snapshots": len(g), "rho": rho})
    return pd.DataFrame(rows, columns=["norm", "seed", "snapshots", "rho"])


def describe_fragmentation_dynamics(along: pd.DataFrame) -> str:
    """Claim 9: does a model's fragmentation track its test error along training (the fragmentation paper's
    observation)? Input-space planes; class regions at the initialisation and at the end per variant, and Spearman's
    rho per model over its snapshots after the initialisation: **supported** when rho > 0 in every model of both
    variants, **the opposite** when rho < 0 in every one, else **mixed**. A sign test over models, not a p value: a
    model has only its snapshots (5 to 10 here) to correlate."""
    head = f"9. *{CLAIMS[9]}*"
    if along.empty:
        return f"{head}: **no verdict** (no usable model)."
    names = {"batch": "BN", "none": "no BN"}
    per_model = along.groupby(["norm", "seed"])
    planes_at = {"the initialisation": along[along.epoch == 0],
                 "the end": along.loc[per_model.epoch.idxmax()]}
    said = []
    for when, rows in planes_at.items():
        if len(rows):
            said.append(f"at {when} " + ", ".join(f"{names.get(n, n)} {g.regions.mean():.2f} ± {g.regions.std():.2f}"
                                                   for n, g in rows.groupby("norm")))
    track = fragmentation_tracking(along)
    where = (f"Input-space planes, {per_model.ngroups} models, {int(per_model.size().max())} points a model; class "
             f"regions (mean ± std over seeds) {'; '.join(said)}.")
    if track.empty or not np.isfinite(track.rho).any():
        return f"{head}: **no verdict**: too few snapshots after the initialisation to correlate. {where}"
    rho = track.dropna(subset=["rho"])
    verdict = ("**supported**" if (rho.rho > 0).all() else "**the opposite**" if (rho.rho < 0).all()
               else "**mixed**")
    per_norm = "; ".join(f"{names.get(n, n)} median {g.rho.median():+.2f} ({g.rho.min():+.2f} to {g.rho.max():+.2f})"
                         for n, g in rho.groupby("norm"))
    return (f"{head}: {verdict}. Spearman's rho between a model's class regions and its test error over its "
            f"snapshots after the initialisation: {per_norm}; {int((rho.rho > 0).sum())} of {len(rho)} models "
            f"positive. {where}")


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bnlib.report", description=__doc__.splitlines()[0])
    parser.add_argument("profile", help="a folder of figures/ (quick, mnist, cifar10-cpu, ablation, ...)")
    args = parser.parse_args(argv)
    if not (FIGURES_DIR / args.profile).is_dir():
        found = ", ".join(sorted(p.name for p in FIGURES_DIR.iterdir() if p.is_dir()))
        parser.error(f"no figures/{args.profile}/ folder; committed profiles: {found}")
    if (FIGURES_DIR / args.profile / "ablation_shared.csv").is_file():
        print(ablation(args.profile))
    else:
        print(profile_report(args.profile))
    return 0


if __name__ == "__main__":
    sys.exit(main())
