"""Figures in the paper's style, saved with the numbers behind them.

`save_figure` writes PNG, SVG and the CSV of plotted numbers to a temporary
file each and renames them into place, so a failed run leaves nothing half
written.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from . import measures
from .files import atomic_path, write_csv
from .measures import axis

# Stable element ids: an SVG regenerated from the same numbers is byte-identical, so git shows real changes only.
plt.rcParams["svg.hashsalt"] = "bnrep"

NORM_LABELS = {"batch": "BN", "none": "no BN", "batch_noaffine": "BN, no affine", "batch_after_relu": "BN after ReLU",
               "group": "GroupNorm", "layer": "LayerNorm", "instance": "InstanceNorm"}
NORM_PALETTE = dict(zip(NORM_LABELS.values(),
                        ["#1f77b4", "#d62728", "#17becf", "#9467bd", "#2ca02c", "#ff7f0e", "#8c564b"]))

def _with_labels(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    out["variant"] = out["norm"].map(NORM_LABELS).fillna(out["norm"])
    return out


def _variants(data: pd.DataFrame) -> list[str]:
    """The variants present, in the factory's order (BN, no BN, then the ablation norms)."""
    present = set(data["variant"])
    return [v for v in NORM_LABELS.values() if v in present]


def _nothing_to_plot(ax, what: str) -> None:
    ax.text(0.5, 0.5, f"no usable run: nothing to plot for {what}", ha="center", va="center", transform=ax.transAxes)
    ax.set(xticks=[], yticks=[])


def layer_metric_plot(df: pd.DataFrame, metric: str, ax=None, kind: str = "bar", title: str | None = None):
    """One metric per layer, BN vs no-BN: bars (or points) = mean over seeds, error bars = std over seeds."""
    data = _with_labels(df[df.metric == metric].sort_values("layer_index"))
    ax = ax or plt.subplots(figsize=(7, 3.5))[1]
    if data.empty:
        _nothing_to_plot(ax, axis(metric))
        ax.legend([], frameon=False)
        return ax
    order = list(dict.fromkeys(data.layer))
    hue_order = _variants(data)
    common = dict(data=data, x="layer", y="value", hue="variant", order=order, hue_order=hue_order,
                  palette=NORM_PALETTE, errorbar="sd", ax=ax)
    if kind == "bar":
        sns.barplot(capsize=0.15, err_kws={"linewidth": 1}, **common)
    else:
        # seaborn divides the dodge by (variants - 1): one usable variant (the other excluded) gets none
        dodge = False if len(hue_order) == 1 else min(0.3, 0.15 * len(hue_order)) if len(hue_order) == 2 else 0.45
        sns.pointplot(dodge=dodge, linestyles="-", markers="o", capsize=0.1, err_kws={"linewidth": 1}, **common)
    ax.set_xlabel("layer")
    if len(order) > 8:  # VGG-16's 14 layer names overlap when upright, and at 60 degrees conv13 runs into fc1
        ax.tick_params(axis="x", labelrotation=90)
    ax.set_ylabel(axis(metric))
    ax.legend(title=None, frameon=False)
    if title:
        ax.set_title(title)
    return ax


def metric_panels(df: pd.DataFrame, metrics: list[str], kind: str = "bar", title: str | None = None):
    """One panel per metric, stacked, sharing the layer axis."""
    fig, axes = plt.subplots(len(metrics), 1, figsize=(7.5, 2.9 * len(metrics)), squeeze=False, sharex=True)
    for ax, metric in zip(axes[:, 0], metrics):
        layer_metric_plot(df, metric, ax=ax, kind=kind)
        if ax is not axes[0, 0] and ax.get_legend() is not None:
            ax.get_legend().remove()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def training_curves(history: pd.DataFrame, title: str | None = None):
    """Test accuracy and training loss per epoch: mean over seeds, band = std over seeds."""
    data = _with_labels(history)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.3))
    for ax, (col, label) in zip(axes, [("test_acc", "test accuracy"), ("train_loss", "training loss")]):
        if data.empty:
            _nothing_to_plot(ax, label)
            continue
        sns.lineplot(data=data, x="epoch", y=col, hue="variant", hue_order=_variants(data), palette=NORM_PALETTE,
                     errorbar="sd", marker="o", ax=ax)
        ax.set_ylabel(label)
        ax.legend(title=None, frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def umap_grid(emb: pd.DataFrame, title: str | None = None):
    """One panel per (variant, layer): UMAP coordinates coloured by class."""
    emb = _with_labels(emb)
    if emb.empty:
        fig, ax = plt.subplots(figsize=(4, 3))
        _nothing_to_plot(ax, "UMAP")
        return fig
    layers = list(dict.fromkeys(emb.layer))
    variants = _variants(emb)
    fig, axes = plt.subplots(len(variants), len(layers), figsize=(3.2 * len(layers), 3.2 * len(variants)),
                             squeeze=False)
    classes = list(dict.fromkeys(emb.sort_values("label")["class"]))
    palette = dict(zip(classes, sns.color_palette("tab10", len(classes))))
    for i, variant in enumerate(variants):
        for j, layer in enumerate(layers):
            ax = axes[i, j]
            part = emb[(emb.variant == variant) & (emb.layer == layer)]
            sns.scatterplot(data=part, x="umap_x", y="umap_y", hue="class", hue_order=classes, palette=palette,
                            s=4, linewidth=0, ax=ax, legend=(i == 0 and j == len(layers) - 1), rasterized=True)
            ax.set(xticks=[], yticks=[], xlabel="", ylabel=variant if j == 0 else "")
            if i == 0:
                ax.set_title(layer)
    handles = axes[0, -1].get_legend()
    if handles is not None:
        sns.move_legend(axes[0, -1], "upper left", bbox_to_anchor=(1.02, 1), frameon=False, markerscale=3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def _shown(path: Path) -> str:
    """The file's name only: the notebook's P.figures_dir() says where, and the same numbers give the same
    notebook wherever it was written (no machine path, nothing that differs between a run and a refresh)."""
    return path.name


def save_figure(fig, data: pd.DataFrame, out_dir: str | Path, name: str) -> None:
    """Write `<name>.png`, `<name>.svg` and `<name>.csv` (the plotted numbers) atomically, and say where."""
    out_dir = Path(out_dir)
    paths = []
    for ext in ("png", "svg"):
        target = out_dir / f"{name}.{ext}"
        with atomic_path(target) as tmp:
            # Fixed metadata keeps the SVG byte-stable across runs, so git diffs show real changes.
            fig.savefig(tmp, format=ext, dpi=150, bbox_inches="tight",
                        metadata={"Date": None} if ext == "svg" else None)
        paths.append(target)
    paths.append(_write_csv(data, out_dir, name))
    print("saved " + ", ".join(_shown(p) for p in paths))


def save_table(data: pd.DataFrame, out_dir: str | Path, name: str) -> None:
    print(f"saved {_shown(_write_csv(data, out_dir, name))}")


def _write_csv(data: pd.DataFrame, out_dir: str | Path, name: str) -> Path:
    return write_csv(data, Path(out_dir) / f"{name}.csv")


def ablation_figure(df: pd.DataFrame, metrics: list[str], title: str | None = None):
    """One panel per metric, one colour per norm: test accuracy as bars, layer metrics as points per layer."""
    data = _with_labels(df)
    variants = _variants(data)
    fig, axes = plt.subplots(len(metrics), 1, figsize=(9, 2.8 * len(metrics)), squeeze=False)
    for ax, metric in zip(axes[:, 0], metrics):
        part = data[data.metric == metric]
        if metric in ("test_accuracy", "train_accuracy"):
            sns.barplot(data=part, x="variant", y="value", hue="variant", order=variants, hue_order=variants,
                        palette=NORM_PALETTE, errorbar="sd", capsize=0.15, err_kws={"linewidth": 1}, ax=ax,
                        legend=False)
            low = part.groupby("variant")["value"].mean().min()
            ax.set_ylim(max(0.0, low - 0.05), 1.0)
            ax.set_xlabel("")
        else:
            layer_metric_plot(df[df.metric == metric], metric, ax=ax, kind="point")
            if ax.get_legend() is not None:
                ax.get_legend().remove()
        ax.set_ylabel(axis(metric))
    handles = [plt.Line2D([], [], marker="o", linestyle="-", color=NORM_PALETTE[v], label=v) for v in variants]
    fig.legend(handles=handles, loc="upper center", ncol=min(len(variants), 7), frameon=False,
               bbox_to_anchor=(0.5, 1.0 if not title else 0.97))
    if title:
        fig.suptitle(title, y=1.0)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return fig


def views_figure(views: pd.DataFrame, cka: pd.DataFrame, title: str | None = None):
    """One panel per clustering view (mean ± std over seeds per layer), and the CKA heat-map last.

    The heat-map's rows are the pairs compared (BN vs no BN of one seed, and the
    seed-to-seed baselines), its columns the layers, its cells the mean CKA.
    """
    panels = measures.names(table="views", compared=True)
    metrics = [m for m in panels if (views.metric == m).any()] or panels[:1]
    ncols = 2
    nrows = (len(metrics) + 1 + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(6.2 * ncols, 2.9 * nrows), squeeze=False)
    flat = axes.ravel()
    for ax, metric in zip(flat, metrics):
        layer_metric_plot(views, metric, ax=ax, kind="point")
        if ax is not flat[0] and ax.get_legend() is not None:
            ax.get_legend().remove()
        if metric == "calinski_harabasz":
            ax.set_yscale("log")  # spans orders of magnitude from conv1 to fc1
        else:
            ax.ticklabel_format(axis="y", useOffset=False, style="plain")
    ax = flat[len(metrics)]
    if cka.empty:
        _nothing_to_plot(ax, "CKA")
    else:
        labelled = cka.assign(pair=cka.pair.map(lambda s: " vs ".join(NORM_LABELS.get(p, p) for p in s.split(" vs "))))
        grid = labelled.pivot_table(index="pair", columns="layer", values="cka", aggfunc="mean")
        grid = grid[list(dict.fromkeys(cka.sort_values("layer_index").layer))]
        low = max(0.0, float(grid.min().min()) - 0.05)  # the contrast is in the last few hundredths
        sns.heatmap(grid, annot=True, fmt=".2f", vmin=low, vmax=1, cmap="viridis", cbar=False, ax=ax)
        ax.set(xlabel="layer", ylabel="", title="linear CKA (mean over pairs)")
    for extra in flat[len(metrics) + 1:]:
        extra.set_visible(False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def dynamics_figure(dynamics: pd.DataFrame, pairs: pd.DataFrame, matched_cmp: pd.DataFrame, layers: list[str],
                    title: str | None = None):
    """Training dynamics, one row per measure taken along training (bnlib.measures, `dynamics`):

    (a) the measure against training progress, at each of `layers`: mean ± std over seeds;
    (b) the same against test accuracy, one line per model: where BN lies above no BN at equal accuracy, the
        difference is BatchNorm's own; the matched pairs are circled;
    (c, last row) the matched-accuracy comparison: Hedges' g (BN snapshot − no BN at the end) with its noncentral-t
        95% interval, per layer and clustering view.
    """
    data = _with_labels(dynamics)
    acc = data[(data.layer == "model") & (data.metric == "test_accuracy")][["norm", "seed", "step", "value"]]
    rows = [m for m in measures.names(dynamics=True) if (data.metric == m).any()]
    ncols = 2 * len(layers)
    fig, axes = plt.subplots(len(rows) + 1, ncols, figsize=(3.3 * ncols, 2.5 * (len(rows) + 1)), squeeze=False)
    variants = _variants(data) if len(data) else []
    matched = set()
    for r in pairs.itertuples():
        matched |= {("batch", r.seed, r.batch_step), ("none", r.seed, r.none_step)}
    for i, metric in enumerate(rows):
        for j, layer in enumerate(layers):
            part = data[(data.metric == metric) & (data.layer == layer)]
            ax = axes[i, j]
            sns.lineplot(data=part, x="epoch", y="value", hue="variant", hue_order=variants, palette=NORM_PALETTE,
                         errorbar="sd", marker="o", markersize=3, ax=ax, legend=(i == 0 and j == 0))
            ax.set(xlabel="epoch" if i == len(rows) - 1 else "", ylabel=axis(metric) if j == 0 else "")
            if i == 0:
                ax.set_title(f"(a) {layer}: along training")
            ax = axes[i, len(layers) + j]
            both = part.merge(acc, on=["norm", "seed", "step"], suffixes=("", "_acc"))
            for (variant, seed), g in both.groupby(["variant", "seed"]):
                ax.plot(g.value_acc, g.value, "-o", ms=2.5, lw=0.8, color=NORM_PALETTE.get(variant), alpha=0.8)
            hit = both[[(n, s, t) in matched for n, s, t in zip(both.norm, both.seed, both.step)]]
            ax.scatter(hit.value_acc, hit.value, s=40, facecolors="none", edgecolors="black", linewidths=0.8)
            ax.set(xlabel="test accuracy" if i == len(rows) - 1 else "", ylabel="")
            if i == 0:
                ax.set_title(f"(b) {layer}: against test accuracy")
    bottom = plt.subplot2grid((len(rows) + 1, ncols), (len(rows), 0), colspan=ncols, fig=fig)
    for ax in axes[len(rows)]:
        ax.remove()
    views = matched_cmp[matched_cmp.metric.isin(measures.names(votes=True)) & matched_cmp.testable]
    if views.empty:
        _nothing_to_plot(bottom, "the matched comparison")
    else:
        order = list(dict.fromkeys(views.sort_values("layer_index").layer))
        metrics = list(dict.fromkeys(views.metric))
        width = 0.8 / len(metrics)
        for k, metric in enumerate(metrics):
            g = views[views.metric == metric].set_index("layer").reindex(order)
            x = [order.index(layer) + (k - (len(metrics) - 1) / 2) * width for layer in order]
            g_, low, high = g.hedges_g, g.g_low, g.g_high
            if measures.lower_is_better(metric):  # flipped, so that above 0 always means BN clusters better
                g_, low, high = -g_, -high, -low
            bottom.errorbar(x, g_, yerr=[g_ - low, high - g_], fmt="o", capsize=3, label=measures.label(metric))
        bottom.axhline(0, color="grey", lw=0.8)
        bottom.set_xticks(range(len(order)), order)
        bottom.set(ylabel="Hedges' g, BN better > 0",
                   title=f"(c) at matched test accuracy: BN snapshot vs no BN at the end, {len(pairs)} seed pairs")
        bottom.legend(frameon=False, ncol=min(4, len(metrics)), fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, 1, 0.985))  # the title above the panels' own
    return fig


def trees_figure(curves: pd.DataFrame, trees: pd.DataFrame, layers: list[str], title: str | None = None):
    """Decision trees over binary codes (notebook 07): (top) test fidelity of the tree's depth-d prefix against d
    at each of `layers`, mean ± std over seeds; (bottom) per layer, the tree measures at the depth budget."""
    data = _with_labels(curves)
    bottom = ["tree_fidelity", "tree_accuracy", "tree_depth_to_target", "tree_codes"]
    ncols = max(len(layers), len(bottom))
    fig, axes = plt.subplots(2, ncols, figsize=(3.4 * ncols, 6.4), squeeze=False)
    variants = _variants(data) if len(data) else []
    for j, ax in enumerate(axes[0]):
        if j >= len(layers):
            ax.remove()
            continue
        part = data[data.layer == layers[j]]
        if part.empty:
            _nothing_to_plot(ax, layers[j])
            continue
        sns.lineplot(data=part, x="depth", y="fidelity", hue="variant", hue_order=variants, palette=NORM_PALETTE,
                     errorbar="sd", ax=ax, legend=j == 0)
        sns.lineplot(data=part, x="depth", y="accuracy", hue="variant", hue_order=variants, palette=NORM_PALETTE,
                     errorbar=None, ax=ax, legend=False, linestyle=":")
        ax.set(title=f"{layers[j]}: tree of depth d", xlabel="depth d", ylabel="test fidelity (accuracy dotted)"
               if j == 0 else "", ylim=(0, 1.02))
        if j == 0:
            ax.legend(title=None, frameon=False)
    for j, ax in enumerate(axes[1]):
        if j >= len(bottom):
            ax.remove()
            continue
        layer_metric_plot(trees, bottom[j], ax=ax, kind="point")
        if j:
            ax.get_legend().remove()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def translation_figure(maps: pd.DataFrame, invariance: pd.DataFrame, layers: list[str], title: str | None = None):
    """Translation sensitivity (notebook 08): (rows 1-2) the mean map over seeds of BN and of no BN at each of
    `layers` (cosine similarity to the unshifted image; the prediction agreement at "output"); (row 3) each map's
    mean on each ring max(|dx|, |dy|) = r, full (solid) and spatial-mean pooled (dashed), mean ± std over seeds;
    (row 4) the mean over every shift per layer, full and pooled."""
    from .lenses import chebyshev_radius

    data = _with_labels(maps)
    variants = [v for v in ("BN", "no BN") if v in set(data.variant)] if len(data) else []
    ncols = len(layers)
    fig = plt.figure(figsize=(2.9 * ncols + 0.6, 12))
    grid = fig.add_gridspec(4, ncols + 1, width_ratios=[1] * ncols + [0.06], height_ratios=[1, 1, 0.9, 0.9])
    image = None
    for i, variant in enumerate(variants):
        for j, layer in enumerate(layers):
            ax = fig.add_subplot(grid[i, j])
            metric = "agreement" if layer == "output" else "cosine"
            part = data[(data.variant == variant) & (data.layer == layer) & (data.metric == metric)]
            mean = part.groupby(["dy", "dx"]).value.mean().unstack("dx")
            low, high = mean.columns.min() - 0.5, mean.columns.max() + 0.5
            extent = (low, high, mean.index.max() + 0.5, mean.index.min() - 0.5)  # dy grows downwards
            image = ax.imshow(mean.to_numpy(), extent=extent, vmin=0, vmax=1, cmap="viridis")
            ax.set_title(f"{variant} · {layer}" + (" (prediction)" if layer == "output" else ""), fontsize=9)
            edge = int(mean.columns.max())
            ax.set(xticks=[-edge, 0, edge], yticks=[-edge, 0, edge], xlabel="dx" if i == len(variants) - 1 else "",
                   ylabel="dy (down)" if j == 0 else "")
    if image is not None:
        fig.colorbar(image, cax=fig.add_subplot(grid[0:2, ncols]), label="similarity to the unshifted image")
    rings = data.assign(radius=chebyshev_radius(data.dx, data.dy))
    rings = rings.groupby(["variant", "seed", "layer", "metric", "radius"], as_index=False).value.mean()
    for j, layer in enumerate(layers):
        ax = fig.add_subplot(grid[2, j])
        part = rings[rings.layer == layer]
        if part.empty:
            _nothing_to_plot(ax, layer)
            continue
        sns.lineplot(data=part, x="radius", y="value", hue="variant", hue_order=variants, palette=NORM_PALETTE,
                     style="metric", style_order=["cosine", "cosine_pooled", "agreement"], errorbar="sd",
                     marker="o", markersize=3, ax=ax, legend=j == 0)
        ax.set(title=layer, xlabel="shift radius max(|dx|, |dy|)", ylabel="mean similarity" if j == 0 else "",
               ylim=(0, 1.02))
        if j == 0:
            ax.legend(frameon=False, fontsize=7)
    for k, metric in enumerate(["shift_cosine", "shift_cosine_pooled"]):
        half = ncols // 2
        ax = fig.add_subplot(grid[3, k * half:(k + 1) * half if k == 0 else ncols])
        layer_metric_plot(invariance, metric, ax=ax, kind="point")
        if k:
            ax.get_legend().remove()
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, 1, 0.985))
    return fig


def _gap_scatter(ax, summary: pd.DataFrame, accuracy: pd.DataFrame, metric: str, layer: str | None = None):
    """Per usable model: the measure (its mean over layers, or at `layer`) against the generalisation gap."""
    from .stats import sparsity_vs_generalisation

    rows = summary if layer is None else summary[summary.layer == layer]
    per_model = sparsity_vs_generalisation(pd.concat([accuracy, rows], ignore_index=True), metric)
    if per_model.empty:
        _nothing_to_plot(ax, axis(metric))
        return
    data = _with_labels(per_model)
    sns.scatterplot(data=data, x=f"mean_{metric}", y="generalisation_gap", hue="variant",
                    hue_order=_variants(data), palette=NORM_PALETTE, s=40, ax=ax)
    ax.set(xlabel=axis(metric) + ("" if layer else " (mean over layers)"), ylabel="train − test accuracy")
    ax.legend(title=None, frameon=False, fontsize=8)


def margins_figure(summary: pd.DataFrame, accuracy: pd.DataFrame, title: str | None = None):
    """Margins (notebook 09): (top) the median hidden margin per layer, normalised by the layer's scale and raw
    (log axis), mean ± std over seeds; (bottom) the median input margins, full and constrained, one point a model,
    and each model's input margin against its generalisation gap."""
    fig, axes = plt.subplots(2, 2, figsize=(13, 8.5))
    layer_metric_plot(summary, "margin_hidden_normalised", ax=axes[0, 0], kind="point",
                      title="hidden margin, divided by the layer's scale")
    layer_metric_plot(summary, "margin_hidden", ax=axes[0, 1], kind="point", title="hidden margin, raw")
    axes[0, 1].set_yscale("log")
    inputs = _with_labels(summary[summary.metric.isin(["margin_input", "margin_input_pca"])])
    if inputs.empty:
        _nothing_to_plot(axes[1, 0], "input margins")
    else:
        inputs = inputs.assign(search=inputs.metric.map(measures.label))
        sns.stripplot(data=inputs, x="search", y="value", hue="variant", hue_order=_variants(inputs),
                      palette=NORM_PALETTE, dodge=True, jitter=False, size=6, ax=axes[1, 0])
        axes[1, 0].set(xlabel="", ylabel="median input margin (normalised input units)", title="input margins")
        axes[1, 0].legend(title=None, frameon=False)
    _gap_scatter(axes[1, 1], summary, accuracy, "margin_input", layer="input")
    axes[1, 1].set_title("input margin vs generalisation gap")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def fragmentation_figure(planes: pd.DataFrame, summary: pd.DataFrame, accuracy: pd.DataFrame,
                         title: str | None = None):
    """Fragmentation (notebook 10): (top) the predicted class over the example planes of one BN and one no-BN model,
    in the input and in a hidden layer, the three images marked; (bottom) class regions per space (the input, then
    the hidden layers), mean ± std over seeds, within and across classes; each model's input-space fragmentation
    against its generalisation gap."""
    data = _with_labels(planes)
    shown = list(dict.fromkeys(zip(data.variant, data.layer))) if len(data) else []
    fig = plt.figure(figsize=(14, 8.5))
    grid = fig.add_gridspec(2, max(4, len(shown)), height_ratios=[0.8, 1])
    cmap = plt.get_cmap("tab10")
    for j, (variant, layer) in enumerate(shown):
        ax = fig.add_subplot(grid[0, j])
        part = data[(data.variant == variant) & (data.layer == layer)]
        cells = part[part.anchor == 0].pivot(index="y", columns="x", values="label").sort_index(ascending=False)
        xs, ys = cells.columns.to_numpy(), cells.index.to_numpy()
        dx, dy = (xs[1] - xs[0]) / 2, (ys[0] - ys[1]) / 2
        ax.imshow(cells.to_numpy(), cmap=cmap, vmin=-0.5, vmax=9.5, interpolation="nearest",
                  extent=(xs[0] - dx, xs[-1] + dx, ys[-1] - dy, ys[0] + dy))
        for r in part[part.anchor > 0].itertuples():
            ax.plot(r.x, r.y, "o", mec="white", mfc=cmap(r.label % 10), ms=8, mew=1.5)
        from .boundaries import count_regions
        ax.set_title(f"{variant} · {layer}: {count_regions(cells.to_numpy())} regions", fontsize=9)
        ax.set(xticks=[], yticks=[])
        if j == 0:
            ax.set_xlabel("colour: predicted class; rings: the 3 images", fontsize=8, loc="left")
    ax = fig.add_subplot(grid[1, :2])
    long = summary[summary.metric.isin(["fragmentation_within", "fragmentation_across"])]
    if long.empty:
        _nothing_to_plot(ax, "fragmentation")
    else:
        long = _with_labels(long.sort_values("layer_index"))
        long = long.assign(series=long.variant + ", " + long.metric.map({"fragmentation_within": "within a class",
                                                                         "fragmentation_across": "across classes"}))
        palette = {s: NORM_PALETTE[s.split(",")[0]] for s in long.series.unique()}
        sns.pointplot(data=long, x="layer", y="value", hue="series", palette=palette, errorbar="sd", capsize=0.1,
                      linestyles=["-", "--"] * (len(palette) // 2 + 1), markers="o", dodge=0.3,
                      order=list(dict.fromkeys(long.layer)), err_kws={"linewidth": 1}, ax=ax)
        ax.set(xlabel="space (the input, then hidden layers)", ylabel="class regions on a plane",
               title="fragmentation, mean ± std over seeds")
        ax.legend(title=None, frameon=False, fontsize=8)
    _gap_scatter(fig.add_subplot(grid[1, 2:]), summary, accuracy, "fragmentation", layer="input")
    fig.axes[-1].set_title("input-space fragmentation vs generalisation gap")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def fragmentation_dynamics_figure(along: pd.DataFrame, title: str | None = None):
    """Fragmentation along training (notebook 11; `along` from bnlib.report.fragmentation_along_training): (left)
    input-space class regions against the epoch, mean ± std over seeds, the test error dashed on the right axis;
    (right) regions against the test error, one line a model from its first snapshot (x)."""
    fig, (by_epoch, by_error) = plt.subplots(1, 2, figsize=(14, 5))
    if along.empty:
        for ax in (by_epoch, by_error):
            _nothing_to_plot(ax, "fragmentation along training")
        return fig
    data = _with_labels(along)
    variants = _variants(data)
    sns.lineplot(data=data, x="epoch", y="regions", hue="variant", hue_order=variants, palette=NORM_PALETTE,
                 errorbar="sd", marker="o", markersize=4, ax=by_epoch)
    error = by_epoch.twinx()
    sns.lineplot(data=data, x="epoch", y="test_error", hue="variant", hue_order=variants, palette=NORM_PALETTE,
                 errorbar=None, linestyle="--", lw=1, ax=error, legend=False)
    error.set(ylabel="test error (dashed)")
    by_epoch.set(xlabel="epoch (0: the initialisation)", ylabel="class regions, input-space plane",
                 title="input-space fragmentation along training, mean ± std over seeds")
    handles, labels = by_epoch.get_legend_handles_labels()
    by_epoch.get_legend().remove()
    # on the twin axes, which is drawn last: a legend on by_epoch would sit under the dashed curves
    error.legend(handles, labels, title=None, frameon=False, fontsize=8, loc="upper right")
    for (variant, seed), g in data.sort_values("epoch").groupby(["variant", "seed"]):
        by_error.plot(g.test_error, g.regions, "-o", ms=3, lw=0.8, color=NORM_PALETTE.get(variant), alpha=0.8)
        start = g.iloc[0]
        by_error.plot(start.test_error, start.regions, "x", color=NORM_PALETTE.get(variant), ms=6)
    by_error.set(xlabel="test error", ylabel="class regions, input-space plane",
                 title="against the test error, one line a model (x: its first snapshot)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
