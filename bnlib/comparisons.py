"""BN against no BN, per measure and layer, under the rules a verdict is computed with.

`comparisons(df)` is the one table every verdict reads: Welch's test, Hedges' g with its interval and Holm's
correction over each measure's layers (bnlib.stats). `Rules` says which alpha decides, which runs are left out and
whether intervals are computed; `bnlib.stability` re-reads every table under other rules.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from . import measures, stats
from .measures import label
from .paths import FIGURES_DIR
from .tables import HEADLINE, long_form, read_measured

ALPHA = 0.05


@dataclass(frozen=True)
class Rules:
    """What a verdict is computed under: its alpha, the runs left out, whether intervals are computed (shown)."""
    alpha: float = ALPHA
    left_out: frozenset = frozenset()  # {(norm, seed)}
    intervals: bool = True


_RULES: ContextVar[Rules] = ContextVar("rules", default=Rules())


@contextmanager
def under_rules(rules: Rules):
    """Every verdict computed inside this block follows `rules` (bnlib.stability tries other alphas and subsets)."""
    token = _RULES.set(rules)
    try:
        yield
    finally:
        _RULES.reset(token)


def alpha() -> float:
    """The alpha every verdict word is decided at: ALPHA, or the one `stability` is trying."""
    return _RULES.get().alpha


@lru_cache(maxsize=256)
def _read_all(folder: Path, name: str, version: tuple) -> pd.DataFrame:
    return read_measured(folder, name)


def read(folder: Path, name: str) -> pd.DataFrame:
    """A measured table of `folder`, without the runs the current rules leave out (read once per version of the
    file and process: `stability` reads each table dozens of times)."""
    path = Path(folder) / f"{name}.csv"
    version = (path.stat().st_mtime_ns, path.stat().st_size) if path.is_file() else None
    table = _read_all(Path(folder), name, version).copy()
    out = _RULES.get().left_out
    if out and {"norm", "seed"} <= set(table.columns):
        table = table[[(n, s) not in out for n, s in zip(table.norm, table.seed)]]
    return table


# The columns of a comparison (`comparisons`) a notebook shows: the effect, its interval and both p values.
SHOWN = ["metric", "layer", "mean_batch", "mean_none", "diff", "hedges_g", "g_low", "g_high", "p", "p_holm"]


def load(profile: str, figures_dir=FIGURES_DIR) -> pd.DataFrame:
    """The measured long-form tables of figures/<profile>/ as one frame, as the notebooks read them."""
    folder = Path(figures_dir) / profile
    frames = [read(folder, name) for name in HEADLINE if (folder / f"{name}.csv").is_file()]
    if not frames:
        raise SystemExit(f"no CSVs in {folder}: run `make figures PROFILE={profile}` first")
    return long_form(*frames)


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


def voting(cmp: pd.DataFrame) -> pd.DataFrame:
    """The rows of `cmp` that may vote: a pooled measure only in a conv layer. In an fc layer (or at the output)
    there is nothing to pool, the pooled measure equals its unpooled twin, and the layer would vote twice."""
    pooled = cmp.metric.str.endswith("_pooled")
    return cmp[~pooled | cmp.layer.str.startswith("conv")]


def view_table(cmp: pd.DataFrame) -> pd.DataFrame:
    """Per clustering view and layer: which variant clusters better (Holm over the view's layers), and
    whether that agrees with the silhouette's answer for the layer."""
    rows = []
    sil = {r.layer: better(r) for r in cmp[cmp.metric == "silhouette"].itertuples()}
    for r in voting(cmp[cmp.metric.isin(measures.names(votes=True))]).itertuples():
        winner = better(r)
        rows.append({"view": label(r.metric), "metric": r.metric, "layer_index": r.layer_index, "layer": r.layer,
                     "better": winner, "hedges_g": r.hedges_g, "p_holm": r.p_holm,
                     "agrees_with_silhouette": (winner == sil[r.layer]) if r.layer in sil else np.nan})
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


def better(r) -> str:
    """"BN", "no BN", "no difference" (Holm p >= ALPHA) or "no verdict" (too few seeds), direction-aware."""
    if not r.testable:
        return "no verdict"
    if not r.p_holm < alpha():
        return "no difference"
    bn_higher = r.diff > 0
    return "BN" if bn_higher != measures.lower_is_better(r.metric) else "no BN"


def per_view(views: pd.DataFrame) -> list[tuple[str, str, list[str], list[str]]]:
    """(view label, which variant it leans to, layers where BN is better, layers where no BN is) per view."""
    rows = []
    for metric, g in views.groupby("metric", sort=False):
        bn, no = (g.better == "BN").sum(), (g.better == "no BN").sum()
        lean = "BN" if bn > no else "no BN" if no > bn else "neither"
        rows.append((label(metric), lean, g[g.better == "BN"].layer.tolist(), g[g.better == "no BN"].layer.tolist()))
    return rows


def per_view_layers(leaning) -> str:
    """Per view of `per_view`'s rows: the layers where BN and where no BN is better, as one clause."""
    return "; ".join(f"{v}: BN better in {stats.prose_list(hi)}, no BN better in {stats.prose_list(lo)}"
                     for v, _, hi, lo in leaning)
