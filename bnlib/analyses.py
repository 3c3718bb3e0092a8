"""Analyses the claims and the notebooks share, computed from measured tables: matched-accuracy pairs, correlations
with the generalisation gap, the UMAP pictures' silhouettes and fragmentation along training."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from scipy.stats import spearmanr

from . import stats
from .measures import EXCLUDED
from .metrics import silhouette_score


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


def accuracy_by_run(df: pd.DataFrame, usable_only: bool = False) -> pd.DataFrame:
    """Per run (norm, seed): its train and test accuracy and its exclusion flag, from the per-model rows of `df`;
    with `usable_only`, the usable runs only. Every accuracy summary (table, sentence, frame) starts here."""
    runs = df[df.layer == "model"].pivot_table(index=["norm", "seed"], columns="metric", values="value")
    return runs[runs[EXCLUDED] == 0] if usable_only and len(runs) else runs


def accuracy_summary(df: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over the usable seeds of each variant's train and test accuracy, and how many seeds."""
    runs = accuracy_by_run(df, usable_only=True)
    if runs.empty:
        return pd.DataFrame(columns=["norm", "metric", "mean", "std", "usable_seeds"])
    long = runs[["test_accuracy", "train_accuracy"]].reset_index().melt(id_vars=["norm", "seed"], var_name="metric")
    return long.groupby(["norm", "metric"])["value"].agg(mean="mean", std="std", usable_seeds="count").reset_index()


def embedding_silhouettes(embedding: pd.DataFrame) -> pd.DataFrame:
    """Silhouette (classes as clusters) of each 2-D UMAP panel."""

    rows = []
    for (norm, layer), g in embedding.groupby(["norm", "layer"], sort=False):
        xy = torch.from_numpy(g[["umap_x", "umap_y"]].to_numpy(copy=True))
        rows.append({"norm": norm, "layer": layer, "umap_silhouette": silhouette_score(xy, g["label"].to_numpy())})
    return pd.DataFrame(rows)


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
    rows = []
    for (norm, seed), g in along[along.epoch > 0].groupby(["norm", "seed"]):
        constant = g.regions.nunique() < 2 or g.test_error.nunique() < 2
        rho = float("nan") if len(g) < 3 or constant else float(spearmanr(g.regions, g.test_error).statistic)
        rows.append({"norm": norm, "seed": seed, "snapshots": len(g), "rho": rho})
    return pd.DataFrame(rows, columns=["norm", "seed", "snapshots", "rho"])
