"""The nine claims and the sentence of each verdict, computed from a profile's measured CSVs.

1-3 are the paper's, 4 the reviewer's question (claim 3 at matched accuracy), 5-8 the group's other lenses and 9
the fragmentation paper's observation. Every clause of a sentence is derived from the numbers (`claim_sentences`);
the word in bold is what the claims grid shows (`claim_words`), and bnlib.stability says how stable it is.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from . import stats
from .analyses import (
    fragmentation_along_training,
    fragmentation_tracking,
    gap_correlations,
    matched_models,
    matched_pairs,
)
from .comparisons import ALPHA, alpha, better, comparisons, per_view, per_view_layers, read, view_table, voting
from .measures import label
from .models import NORM_LABELS
from .paths import FIGURES_DIR
from .stats import format_p
from .tables import long_form

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
MATCH_TOLERANCE = 0.015  # the largest test-accuracy gap a matched pair may have
# Claim 1's "small": a layer's mean channel sparsity within 0.05 (5% of its channels) of the other variant's,
# shown by TOST. Claim 2's "does not explain": a within-variant |r| shown below 0.5 (under a quarter of the
# variance in test accuracy). Both fixed before the full-width CIFAR-10 profile runs.
SPARSITY_MARGIN = 0.05
CORRELATION_MARGIN = 0.5


def claim3(cmp: pd.DataFrame) -> str:
    """Claim 3 from every clustering view present: per view, does BN cluster better in more layers than not?"""
    views = view_table(cmp)
    if views.empty or (views.better == "no verdict").all():
        return f"3. *{CLAIMS[3]}*: **no verdict** (fewer than 2 usable seeds a side)."
    leaning = per_view(views)
    favour = [v for v, lean, *_ in leaning if lean == "BN"]
    against = [v for v, lean, *_ in leaning if lean == "no BN"]
    if favour and not against and len(favour) > len(leaning) / 2:
        verdict = "**supported**"
    elif favour and len(favour) > len(against):
        verdict = "**mostly supported, not in every view**"
    elif favour or against:
        verdict = "**mixed**" if favour else "**not supported**"
    else:
        verdict = "**not supported** (no view differs after Holm's correction)"
    layers = per_view_layers(leaning)
    fc = views[views.layer == views.layer.iloc[views.layer_index.argmax()]]
    last = f" In the last hidden layer ({fc.layer.iloc[0]}), {(fc.better == 'BN').sum()} of {len(fc)} views favour BN."
    return (f"3. *{CLAIMS[3]}*: {verdict}. {len(favour)} of {len(leaning)} views favour BN "
            f"over more layers than not ({stats.prose_list(favour, 'none')}), {len(against)} favour no BN "
            f"({stats.prose_list(against, 'none')}); Holm-corrected over each view's layers. {layers}.{last}")


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


def describe_gap(gap: pd.DataFrame) -> str:
    """Which measures track the generalisation gap (Holm p < ALPHA), across all models and within a variant."""
    if gap.empty or not np.isfinite(gap.r).any():
        return "No measure can be correlated with the generalisation gap (fewer than 3 usable models)."
    names = {"all": "all models", **NORM_LABELS}
    hits = gap[gap.p_holm < alpha()]
    says = ("none tracks it (Holm over the table)" if hits.empty else "; ".join(
        f"{label(r.metric)} across {names.get(r.models, r.models)} (r = {r.r:.2f}, Holm p = {format_p(r.p_holm)})"
        for r in hits.itertuples()))
    within = gap[gap.models != "all"]
    return (f"Against the generalisation gap (train − test accuracy), per model: {says}. Within a variant, "
            f"|r| is at most {within.r.abs().max():.2f} over {int(within.n.max())} models.")


def lens_verdict(claim: int, cmp: pd.DataFrame) -> str:
    """Claim 5 or 6 (LENSES) from the BN vs no BN comparison of each of its measures, Holm over each measure's
    layers: **supported** when every measure that differs anywhere leans to BN and they are most of the
    measures, **the opposite** when they all lean to no BN, **mixed** otherwise, and **no difference** when none
    differs."""
    metrics, _, meaning = LENSES[claim]
    head = f"{claim}. *{CLAIMS[claim]}*"
    rows = voting(cmp[cmp.metric.isin(metrics)])
    if rows.empty or not rows.testable.any():
        return f"{head}: **no verdict** (fewer than 2 usable seeds a side)."
    views = rows.assign(better=[better(r) for r in rows.itertuples()])
    leaning = per_view(views)
    favour = [v for v, lean, *_ in leaning if lean == "BN"]
    against = [v for v, lean, *_ in leaning if lean == "no BN"]
    if not favour and not against:
        verdict = "**no difference**"
    elif favour and not against:
        verdict = "**supported**" if len(favour) > len(leaning) / 2 else "**mixed**"
    elif against and not favour:
        verdict = "**the opposite**" if len(against) > len(leaning) / 2 else "**mixed**"
    else:
        verdict = "**mixed**"
    return (f"{head}: {verdict}. Better here means {meaning}; per measure, Holm over its layers: "
            f"{per_view_layers(leaning)}. {len(favour)} of {len(leaning)} measures lean to BN, {len(against)} to "
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
    big = "; ".join(f"{r.layer}: BN {r.mean_batch:.3f} vs no BN {r.mean_none:.3f} (Holm p = {format_p(r.p_holm)})"
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
    name = NORM_LABELS
    return (f"2. *{CLAIMS[2]}*: **{verdict}**. Within a variant, a model's mean channel sparsity against its test "
            f"accuracy: " + "; ".join(f"{name.get(v, v)}: r = {r:.2f} [{intervals[v][0]:+.2f}, {intervals[v][1]:+.2f}]"
                                      f" over {n[v]} models, Holm p = {format_p(holm_p[v])}"
                                      for v, (r, p) in within.items())
            + f". \"Does not explain\" needs every interval inside ±{CORRELATION_MARGIN}; \"explains\" a Holm p < "
            f"{ALPHA}. Across all {len(per_model)} models r = {r_all:.2f} (p = {format_p(p_all)}), which mixes in the "
            f"BN effect itself.")


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


def claim_words(text: str) -> dict[int, str]:
    """{claim: its one-phrase verdict} from `verdicts` text: the bold phrase of each numbered sentence."""
    return {int(n): word for n, word in re.findall(r"^(\d)\. \*[^*]+\*: \*\*([^*]+)\*\*", text, flags=re.M)}


def claim_sentences(profile: str, df: pd.DataFrame, cmp: pd.DataFrame, lens_cmp: dict | None = None,
                    figures_dir=FIGURES_DIR) -> str:
    """Every numbered claim's sentence of a profile, one a line: claims 1-3 from its measures (`df`, `cmp`), then
    those of the notebooks it has measured (matched accuracy, the lenses, fragmentation along training). The one
    chain behind both the Results block and the claims grid, so the two cannot disagree."""
    return (verdicts(df, cmp) + matched_sentence(profile, figures_dir) + lens_sentences(profile, figures_dir, lens_cmp)
            + along_training_sentence(profile, figures_dir))


def matched_sentence(profile: str, figures_dir=FIGURES_DIR) -> str:
    """Claim 4's sentence (after a newline) when the profile has measured its training dynamics, else ""."""
    folder = Path(figures_dir) / profile
    if not (folder / "dynamics.csv").is_file():
        return ""
    return "\n" + matched_verdict(read(folder, "dynamics"))


def lens_comparisons(profile: str, figures_dir=FIGURES_DIR) -> dict[int, pd.DataFrame]:
    """{claim: its BN vs no BN comparisons} for each lens (LENSES) the profile has measured."""
    folder = Path(figures_dir) / profile
    return {claim: comparisons(read(folder, table)) for claim, (_, table, _) in LENSES.items()
            if (folder / f"{table}.csv").is_file()}


def lens_sentences(profile: str, figures_dir=FIGURES_DIR, lens_cmp: dict | None = None) -> str:
    """The sentences of claims 5 to 8 (after a newline each) for the lenses the profile has measured; those of
    GAP_CLAIMS end with what their measures say about the generalisation gap."""
    folder = Path(figures_dir) / profile
    lens_cmp = lens_comparisons(profile, figures_dir) if lens_cmp is None else lens_cmp
    out = ""
    for claim, cmp in lens_cmp.items():
        out += "\n" + lens_verdict(claim, cmp)
        if claim in GAP_CLAIMS:
            metrics, table, _ = LENSES[claim]
            df = long_form(read(folder, "accuracy"), read(folder, table))
            out += " " + describe_gap(gap_correlations(df, metrics))
    return out


def along_training_sentence(profile: str, figures_dir=FIGURES_DIR) -> str:
    """Claim 9's sentence (after a newline) when the profile has measured fragmentation along training, else ""."""
    folder = Path(figures_dir) / profile
    if not all((folder / f"{t}.csv").is_file() for t in ("fragmentation_dynamics", "dynamics")):
        return ""
    return "\n" + describe_fragmentation_dynamics(fragmentation_along_training(
        read(folder, "fragmentation_dynamics"), read(folder, "dynamics")))


def describe_fragmentation_dynamics(along: pd.DataFrame) -> str:
    """Claim 9: does a model's fragmentation track its test error along training (the fragmentation paper's
    observation)? Input-space planes; class regions at the initialisation and at the end per variant, and Spearman's
    rho per model over its snapshots after the initialisation: **supported** when rho > 0 in every model of both
    variants, **the opposite** when rho < 0 in every one, else **mixed**. A sign test over models, not a p value: a
    model has only its snapshots (5 to 10 here) to correlate."""
    head = f"9. *{CLAIMS[9]}*"
    if along.empty:
        return f"{head}: **no verdict** (no usable model)."
    names = NORM_LABELS
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
