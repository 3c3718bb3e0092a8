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
from .models import NORM_LABELS

# Stable element ids: an SVG regenerated from the same numbers is byte-identical, so git shows real changes only.
plt.rcParams["svg.hashsalt"] = "bnrep"

NORM_PALETTE = dict(zip(NORM_LABELS.values(),
                        ["#1f77b4", "#d62728", "#17becf", "#9467bd", "#2ca02c", "#ff7f0e", "#8c564b"]))


def with_labels(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    out["variant"] = out["norm"].map(NORM_LABELS).fillna(out["norm"])
    return out


def variants_present(data: pd.DataFrame) -> list[str]:
    """The variants present, in the factory's order (BN, no BN, then the ablation norms)."""
    present = set(data["variant"])
    return [v for v in NORM_LABELS.values() if v in present]


def nothing_to_plot(ax, what: str) -> None:
    ax.text(0.5, 0.5, f"no usable run: nothing to plot for {what}", ha="center", va="center", transform=ax.transAxes)
    ax.set(xticks=[], yticks=[])


def layer_metric_plot(df: pd.DataFrame, metric: str, ax=None, kind: str = "bar", title: str | None = None):
    """One metric per layer, BN vs no-BN: bars (or points) = mean over seeds, error bars = std over seeds."""
    data = with_labels(df[df.metric == metric].sort_values("layer_index"))
    ax = ax or plt.subplots(figsize=(7, 3.5))[1]
    if data.empty:
        nothing_to_plot(ax, axis(metric))
        ax.legend([], frameon=False)
        return ax
    order = list(dict.fromkeys(data.layer))
    hue_order = variants_present(data)
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
    data = with_labels(history)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.3))
    for ax, (col, label) in zip(axes, [("test_acc", "test accuracy"), ("train_loss", "training loss")]):
        if data.empty:
            nothing_to_plot(ax, label)
            continue
        sns.lineplot(data=data, x="epoch", y=col, hue="variant", hue_order=variants_present(data), palette=NORM_PALETTE,
                     errorbar="sd", marker="o", ax=ax)
        ax.set_ylabel(label)
        ax.legend(title=None, frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def umap_grid(emb: pd.DataFrame, title: str | None = None):
    """One panel per (variant, layer): UMAP coordinates coloured by class."""
    emb = with_labels(emb)
    if emb.empty:
        fig, ax = plt.subplots(figsize=(4, 3))
        nothing_to_plot(ax, "UMAP")
        return fig
    layers = list(dict.fromkeys(emb.layer))
    variants = variants_present(emb)
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
    data = with_labels(df)
    variants = variants_present(data)
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
        nothing_to_plot(ax, "CKA")
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
    data = with_labels(dynamics)
    acc = data[(data.layer == "model") & (data.metric == "test_accuracy")][["norm", "seed", "step", "value"]]
    rows = [m for m in measures.names(dynamics=True) if (data.metric == m).any()]
    ncols = 2 * len(layers)
    fig, axes = plt.subplots(len(rows) + 1, ncols, figsize=(3.3 * ncols, 2.5 * (len(rows) + 1)), squeeze=False)
    variants = variants_present(data) if len(data) else []
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
        nothing_to_plot(bottom, "the matched comparison")
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
