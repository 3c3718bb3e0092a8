"""The sentences the notebooks print under their tables and figures, each from the measured numbers."""

from __future__ import annotations

import pandas as pd

from . import measures, stats
from .analyses import accuracy_by_run
from .comparisons import per_view, per_view_layers, view_table
from .data import dataset_title as title


def views_say(cmp: pd.DataFrame) -> str:
    """Per clustering view in `cmp`: where BN and where no BN is better (Holm over the view's layers), and which
    variant it leans to."""
    views = view_table(cmp)
    if views.empty or (views.better == "no verdict").all():
        return "No clustering view to compare (fewer than 2 usable seeds a side)."
    leaning = per_view(views)
    leans = "; ".join(f"{v} leans to {lean}" for v, lean, *_ in leaning)
    return f"{per_view_layers(leaning)}. So: {leans}."


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


def power(cmp: pd.DataFrame) -> str:
    """`stats.describe_power` for the fewest seeds any comparison in `cmp` had, or why there is none."""
    n_a, n_b = (cmp[c].min() if len(cmp) else float("nan") for c in ("n_batch", "n_none"))
    if not (n_a >= 2 and n_b >= 2):  # also NaN: no usable seed on a side
        return "Power: not computed (fewer than 2 usable seeds a side)."
    return stats.describe_power(int(n_a), int(n_b), cmp.layer.nunique())


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
    return title(params.dataset)


def describe_accuracy(df: pd.DataFrame) -> str:
    """Mean ± std over the usable seeds of train and test accuracy per variant, and how many were excluded."""
    acc = accuracy_by_run(df)
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
