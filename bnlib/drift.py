"""How a run's measured CSVs compare with another's: the drift of every number, and which verdict words change.

`bnlib.check` uses it on a fresh re-run of a profile; the runner uses it to close a run over a folder that held
CSVs before (a user's rerun on another CPU: `snapshot` before, `how_it_compares` after).
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from . import claims, comparisons, stability

# Columns that say which run, layer, point or measure a row is (every other numeric column is a measured number), in
# every CSV the tables write; "metric" also groups the drift report.
IDENTIFIERS = ["dataset", "arch", "norm", "seed", "status", "layer", "layer_index", "epoch", "step", "metric", "pair",
               "seed_1", "seed_2", "sample", "class", "dx", "dy", "source", "kind", "triplet", "depth", "anchor"]
SKIP = {"training_time"}  # wall-clock seconds: never reproducible


def drift(committed: Path, fresh: Path) -> pd.DataFrame:
    """One row per CSV and metric (or measured column): how many values, how many moved, the largest and the mean
    |difference|. Rows are matched on their identifier columns; `unmatched_rows` counts those in only one folder."""
    rows = []
    for path in sorted(committed.glob("*.csv")):
        name = path.stem
        if name in SKIP or not (fresh / path.name).is_file():
            continue
        a, b = pd.read_csv(path), pd.read_csv(fresh / path.name)
        keys = [k for k in IDENTIFIERS if k in a.columns and k in b.columns]
        values = [c for c in a.columns if c not in keys and c in b.columns and pd.api.types.is_numeric_dtype(a[c])]
        # several rows may share their identifiers (a tree's depths, a plane's points): number them in order
        a, b = (t.assign(_row=t.groupby(keys, dropna=False).cumcount()) for t in (a, b))
        merged = a.merge(b, on=[*keys, "_row"], how="outer", suffixes=("_committed", "_fresh"), indicator=True)
        unmatched = int((merged["_merge"] != "both").sum())
        merged = merged[merged["_merge"] == "both"]
        groups = merged.groupby("metric") if "metric" in keys else [(None, merged)]
        for metric, g in groups:
            for col in values:
                d = (g[f"{col}_committed"].astype(float) - g[f"{col}_fresh"].astype(float)).abs()  # bools too
                rows.append({"csv": name, "metric": metric if metric is not None else col, "values": len(d),
                             "moved": int((d > 0).sum()), "max_abs_drift": float(d.max()) if len(d) else np.nan,
                             "mean_abs_drift": float(d.mean()) if len(d) else np.nan,
                             "unmatched_rows": unmatched})
    return pd.DataFrame(rows)


def snapshot(folder: Path) -> Path | None:
    """A copy of the CSVs in `folder`, taken before a run writes over them, in a temporary folder of the same name
    (None when `folder` holds none). The caller removes it: `shutil.rmtree(copy.parent)`."""
    csvs = sorted(Path(folder).glob("*.csv"))
    if not csvs:
        return None
    copy = Path(tempfile.mkdtemp(prefix="bnlib-before-")) / Path(folder).name
    copy.mkdir()
    for path in csvs:
        shutil.copy2(path, copy / path.name)
    return copy


def how_it_compares(before: Path, after: Path, shown: str) -> str:
    """The block a run prints when its output folder held CSVs before it (`snapshot`): how many numbers moved, and
    by how much at most, per table; and every claim word that changed, old -> new, each with its stability."""
    table = drift(before, after)
    per = table.groupby("csv").agg(values=("values", "sum"), moved=("moved", "sum"), largest=("max_abs_drift", "max"))
    moved = per[per.moved > 0]
    lines = [f"compared with the CSVs that were in {shown}/ before this run:"]
    if moved.empty:
        lines.append(f"  numbers: all {int(per['values'].sum())} identical")
    else:
        lines.append(f"  numbers: {int(moved.moved.sum())} of {int(per['values'].sum())} moved: "
                     + "; ".join(f"{csv} {int(r.moved)}/{int(r['values'])} (largest |Δ| {r.largest:.2g})"
                                 for csv, r in moved.iterrows()))
    old, new = (stability.stability(d.name, d.parent) for d in (Path(before), Path(after)))
    changed = [c for c in new if c in old and old[c].word != new[c].word]
    if not changed:
        lines.append(f"  claim words: none of {len(new)} changed")
    else:
        lines += [f"  claim {c} CHANGED: {old[c].cell()} -> {new[c].cell()}" for c in changed]
        lines.append(f"  the files in {shown}/ now hold this run's words; `git checkout -- {shown}` restores the "
                     f"committed ones")
    return "\n".join(lines)


def markdown_table(df: pd.DataFrame) -> str:
    cells = [[f"{v:.2g}" if isinstance(v, float) else str(v) for v in row] for row in df.itertuples(index=False)]
    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in cells])


def _verdict_words(text: str) -> list[str]:
    """The bold verdict of each claim, e.g. ['supported', 'consistent', 'mixed']."""
    return re.findall(r"^\d\. \*[^*]+\*: \*\*([^*]+)\*\*", text, flags=re.M)


def flips(profile: str, committed: Path, fresh: Path) -> tuple[list[str], list[str]]:
    """(claim verdicts that differ, per-layer answers that differ) between the two folders."""
    if (committed / "ablation_shared.csv").is_file():
        a, b = (pd.read_csv(d / "ablation_shared.csv", keep_default_na=False) for d in (committed, fresh))
        key = ["metric", "layer"]
        merged = a[key + ["shared_by"]].merge(b[key + ["shared_by"]], on=key, how="outer")
        changed = merged[merged.shared_by_x != merged.shared_by_y]
        return ([f"ablation {r.metric} {r.layer}: shared by {r.shared_by_x} -> {r.shared_by_y}"
                 for r in changed.itertuples()], [])
    texts, answers = [], []
    for folder in (committed, fresh):
        df = comparisons.load(profile, folder.parent)  # both folders are named after the profile
        cmp = comparisons.comparisons(df)
        texts.append(claims.verdicts(df, cmp))
        answers.append({(r.metric, r.layer): comparisons.better(r) for r in cmp.itertuples()})
    changed = [f"claim {i + 1}: {x} -> {y}" for i, (x, y) in enumerate(zip(*map(_verdict_words, texts))) if x != y]
    layers = [f"{m} {layer}: {answers[0][(m, layer)]} -> {answers[1].get((m, layer), 'missing')}"
              for (m, layer) in answers[0] if answers[0][(m, layer)] != answers[1].get((m, layer))]
    return changed, layers
