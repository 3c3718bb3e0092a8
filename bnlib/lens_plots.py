"""The figures of the group's other lenses (notebooks 07-11), in the style of bnlib.plots and saved by its
`save_figure`."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from .boundaries import count_regions
from .lenses import chebyshev_radius
from . import measures
from .measures import axis
from .plots import NORM_PALETTE, layer_metric_plot, nothing_to_plot, variants_present, with_labels
from .stats import sparsity_vs_generalisation


def trees_figure(curves: pd.DataFrame, trees: pd.DataFrame, layers: list[str], title: str | None = None):
    """Decision trees over binary codes (notebook 07): (top) test fidelity of the tree's depth-d prefix against d
    at each of `layers`, mean ± std over seeds; (bottom) per layer, the tree measures at the depth budget."""
    data = with_labels(curves)
    bottom = ["tree_fidelity", "tree_accuracy", "tree_depth_to_target", "tree_codes"]
    ncols = max(len(layers), len(bottom))
    fig, axes = plt.subplots(2, ncols, figsize=(3.4 * ncols, 6.4), squeeze=False)
    variants = variants_present(data) if len(data) else []
    for j, ax in enumerate(axes[0]):
        if j >= len(layers):
            ax.remove()
            continue
        part = data[data.layer == layers[j]]
        if part.empty:
            nothing_to_plot(ax, layers[j])
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
    data = with_labels(maps)
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
            nothing_to_plot(ax, layer)
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
    rows = summary if layer is None else summary[summary.layer == layer]
    per_model = sparsity_vs_generalisation(pd.concat([accuracy, rows], ignore_index=True), metric)
    if per_model.empty:
        nothing_to_plot(ax, axis(metric))
        return
    data = with_labels(per_model)
    sns.scatterplot(data=data, x=f"mean_{metric}", y="generalisation_gap", hue="variant",
                    hue_order=variants_present(data), palette=NORM_PALETTE, s=40, ax=ax)
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
    inputs = with_labels(summary[summary.metric.isin(["margin_input", "margin_input_pca"])])
    if inputs.empty:
        nothing_to_plot(axes[1, 0], "input margins")
    else:
        inputs = inputs.assign(search=inputs.metric.map(measures.label))
        sns.stripplot(data=inputs, x="search", y="value", hue="variant", hue_order=variants_present(inputs),
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
    data = with_labels(planes)
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
        ax.set_title(f"{variant} · {layer}: {count_regions(cells.to_numpy())} regions", fontsize=9)
        ax.set(xticks=[], yticks=[])
        if j == 0:
            ax.set_xlabel("colour: predicted class; rings: the 3 images", fontsize=8, loc="left")
    ax = fig.add_subplot(grid[1, :2])
    long = summary[summary.metric.isin(["fragmentation_within", "fragmentation_across"])]
    if long.empty:
        nothing_to_plot(ax, "fragmentation")
    else:
        long = with_labels(long.sort_values("layer_index"))
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
    """Fragmentation along training (notebook 11; `along` from bnlib.analyses.fragmentation_along_training): (left)
    input-space class regions against the epoch, mean ± std over seeds, the test error dashed on the right axis;
    (right) regions against the test error, one line a model from its first snapshot (x)."""
    fig, (by_epoch, by_error) = plt.subplots(1, 2, figsize=(14, 5))
    if along.empty:
        for ax in (by_epoch, by_error):
            nothing_to_plot(ax, "fragmentation along training")
        return fig
    data = with_labels(along)
    variants = variants_present(data)
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
