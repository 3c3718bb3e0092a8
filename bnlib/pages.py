"""Markdown pages made from the committed CSVs: each profile's Results block and page, the claims grid, the ablation
table and the README's generated blocks (`make refresh` writes them all)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from . import stats
from .analyses import accuracy_by_run
from .claims import CLAIMS, claim_sentences, claim_words, lens_comparisons
from .comparisons import ALPHA, agreement_grid, comparisons, load
from .files import read_csv
from .measures import label
from .data import dataset_sizes, dataset_title
from .models import NORM_LABELS
from .params import DEFAULT_PROFILE, resolve
from .paths import FIGURES_DIR, PARAMS_DIR
from .prose import power
from .stability import STABLE_ALPHAS, STABLE_SHARE, stability, stability_table
from .stats import format_p

# Profiles in reading order (README grid, appendix); any other folder of figures follows, the ablation last.
PROFILE_ORDER = ("quick", "quick-8seeds", "mnist", "cifar10-cpu", "cifar10", "cifar10-jpeg")
# What each profile of the README's table is for; every number beside it is read from params/<profile>.yaml.
PROFILE_PURPOSE = {
    "smoke": "every code path in a few minutes; the test suite's shared grid",
    "quick": "the main job (`make figures`), offline",
    "mnist": "the paper's MNIST experiment",
    "ablation": "notebook 05: which ingredient of BN does it",
    "cifar10-cpu": "the paper's CIFAR-10 design at a width a 2-core CPU trains",
    "cifar10": "the paper's CIFAR-10 experiment; wants a GPU",
    "cifar10-jpeg": "the same on the JPEG copy; wants a GPU",
}


def run_status(profile: str, figures_dir=FIGURES_DIR) -> str:
    """Which of the profile's notebooks are committed, and on what machine its models trained (training_time.csv):
    'none committed', 'every notebook, trained on ...' or 'notebooks 00, 01 of its 11, on ...'."""
    folder = Path(figures_dir) / profile
    executed = sorted(p.stem for p in folder.glob("[0-9][0-9]_*.ipynb") if not p.stem.endswith(".failed"))
    # A folder of overrides (quick-8seeds) has no params file: its notebooks are what it has.
    names = resolve(profile).notebook_list() if (PARAMS_DIR / f"{profile}.yaml").is_file() else executed
    done = [n for n in names if n in executed]
    if not done:
        return "none committed"
    times = folder / "training_time.csv"
    logged = read_csv(times) if times.is_file() else pd.DataFrame()
    machines = sorted(logged["machine"].dropna().unique()) if "machine" in logged else []  # older runs: none
    where = f", trained on {' and '.join(machines)}" if machines else ""
    if len(done) == len(names):
        return f"every notebook{where}"
    return f"notebooks {', '.join(n[:2] for n in done)} of its {len(names)}{where}"


def accuracy_table(df: pd.DataFrame) -> str:
    acc = accuracy_by_run(df, usable_only=True)
    excluded = stats.excluded_runs(df)
    lines = ["| variant | test accuracy | train accuracy | min test accuracy | usable seeds |", "|---|---|---|---|---|"]
    for norm, g in acc.groupby("norm", sort=False):
        lines.append(f"| {NORM_LABELS[norm] if norm in ('batch', 'none') else norm} | "
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
                     f"{_num(r.mean_none)} ± {_num(r.std_none)} | {_num(r.diff, '+')} | {_g(r)} | {format_p(r.p)} | "
                     f"{format_p(r.p_holm)} |")
    return "\n".join(lines)


def _num(v: float, sign: str = "") -> str:
    """4 decimals for values below 10 (rates, scores); 4 significant digits for indices like Calinski–Harabasz."""
    return f"{v:{sign}.4f}" if abs(v) < 10 or not np.isfinite(v) else f"{v:{sign}.4g}"


def _g(r) -> str:
    if not np.isfinite(r.hedges_g):
        return "n/a"
    ci = f" [{r.g_low:+.1f}, {r.g_high:+.1f}]" if np.isfinite(r.g_low) else " [n/a]"
    return f"{r.hedges_g:+.1f}{ci}"


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
    shared = read_csv(folder / "ablation_shared.csv", keep_default_na=False)
    lines = [accuracy_table(load(profile, figures_dir)), ""]
    lines += ["| effect of BN over no BN | layer | BN − no BN | p (Holm) | also shown by | the ingredient it needs |",
             "|---|---|---|---|---|---|"]
    for r in shared.itertuples():
        sharers = set() if r.shared_by == "none" else set(r.shared_by.split(", "))
        lines.append(f"| {r.metric.replace('_', ' ')} | {r.layer} | {r.batch_diff:+.4f} | {format_p(r.batch_p_holm)} | "
                     f"{r.shared_by} | {ingredient(sharers)} |")
    return "\n".join(lines)


def grid_markdown(grid: pd.DataFrame) -> str:
    if grid.empty:
        return ""
    lines = ["| view | " + " | ".join(grid.columns) + " |", "|---|" + "---|" * len(grid.columns)]
    lines += [f"| {view} | " + " | ".join(str(v) for v in row) + " |" for view, row in grid.iterrows()]
    return "\n".join(lines)


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


ABLATION_CLAIM_METRICS = {1: ("channel_sparsity", "element_sparsity"), 3: ("silhouette", "silhouette_pooled")}


def ablation_claims(profile: str, figures_dir=FIGURES_DIR) -> dict[int, str]:
    """Per claim with a measured effect: how many of BN's significant effects need which ingredient."""
    shared = read_csv(Path(figures_dir) / profile / "ablation_shared.csv", keep_default_na=False)
    out = {}
    for claim, metrics in ABLATION_CLAIM_METRICS.items():
        rows = shared[shared.metric.isin(metrics)]
        needs = [ingredient(set() if r.shared_by == "none" else set(r.shared_by.split(", "))).split(" (")[0]
                 for r in rows.itertuples()]
        counts = pd.Series(needs, dtype=object).value_counts(sort=True)
        out[claim] = "; ".join(f"{k} ×{v}" for k, v in counts.items()) if len(counts) else "no effect of BN"
    return out


def profiles_table(purposes: dict[str, str] = PROFILE_PURPOSE) -> str:
    """Markdown: each profile's data, model, training and measured samples, read from its params file."""
    lines = ["| profile | data | model, training | measured | what for |", "|---|---|---|---|---|"]
    for name, purpose in purposes.items():
        P = resolve(name)
        n_train, n_test = dataset_sizes(P.dataset)
        n_train = min(P.train_subset or n_train, n_train)
        width = "" if P.width == 1 else f" at width {P.width:g}"
        norms = ("{" + ", ".join(NORM_LABELS.get(n, n) for n in P.norms) + "}" if len(P.norms) <= 2
                 else f"{len(P.norms)} normalisations")
        rates = sorted(set(P.lr.values()))
        lr = f"lr {rates[0]:g}" if len(rates) == 1 else "lr " + " / ".join(f"{P.lr[n]:g}" for n in P.norms)
        lines.append(f"| `{name}`{' (default)' if name == DEFAULT_PROFILE else ''} | {dataset_title(P.dataset)}: "
                     f"{n_train:,} train / {n_test:,} test | {P.arch}{width}; {len(P.seeds)} seeds × {norms}; "
                     f"{P.optimizer.upper() if P.optimizer == 'sgd' else P.optimizer.title()}, {lr}, {P.epochs} "
                     f"epoch{'s' if P.epochs > 1 else ''} | {P.n_represent:,} training samples | {purpose}; "
                     f"{run_status(name)} |")
    return "\n".join(lines)


def ordered_profiles(found) -> list[str]:
    """Profiles in reading order: PROFILE_ORDER, then the others by name, the ablation profiles last."""
    found = set(found)
    ablations = sorted(p for p in found if "ablation" in p)
    rest = found - set(ablations)
    return [p for p in PROFILE_ORDER if p in rest] + sorted(rest - set(PROFILE_ORDER)) + ablations


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
        f"them; the verdicts use Holm's correction over layers (p < {ALPHA}). Committed: "
        f"{run_status(profile, figures_dir)}.", "",
        " ".join(f"[![{f}]({f}.png)]({f}.csv)" for f in figures), "",
        "## Results", "", profile_report(profile, figures_dir), ""])


README = Path(__file__).resolve().parent.parent / "README.md"


def replace_block(text: str, tag: str, content: str) -> str:
    """`text` with the lines between `<!-- tag -->` and `<!-- /tag -->` replaced by `content`."""
    start, end = f"<!-- {tag} -->", f"<!-- /{tag} -->"
    if start not in text or end not in text:
        raise SystemExit(f"no {start} ... {end} block to update")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{content}\n{end}{tail}"
