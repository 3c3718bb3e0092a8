"""How each verdict word holds up: recomputed with one seed of each variant left out, and at other alphas.

It is stable when it comes back in STABLE_SHARE of the subsets and is the same at every alpha of STABLE_ALPHAS;
otherwise every place that shows it says "unstable".
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

from . import stats
from .claims import CLAIMS, LENSES, along_training_sentence, claim_words, lens_verdict, matched_sentence, verdicts
from .comparisons import Rules, comparisons, load, read, under_rules
from .paths import FIGURES_DIR

# A verdict word's stability (`stability`): recomputed with one seed of each variant left out (16 subsets with 4
# seeds a side, 64 with 8) and at each alpha. It is stable when it comes back in STABLE_SHARE of the subsets and
# the same at every alpha of STABLE_ALPHAS; otherwise every place that shows it says "unstable".
ALPHAS = (0.01, 0.025, 0.05, 0.1)
STABLE_ALPHAS = (0.025, 0.05, 0.1)
STABLE_SHARE = 14 / 16


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


def words(profile: str, figures_dir, claims) -> dict[int, str]:
    """The words of `claims` (None: every claim) on a profile, computing only what those claims read."""
    folder = Path(figures_dir) / profile
    wanted = set(CLAIMS) if claims is None else set(claims)
    text = ""
    if wanted & {1, 2, 3}:
        df = load(profile, figures_dir)
        text += verdicts(df, comparisons(df), claims=tuple(sorted(wanted & {1, 2, 3})))
    if 4 in wanted:
        text += matched_sentence(profile, figures_dir)
    for claim, (_, table, _) in LENSES.items():
        if claim in wanted and (folder / f"{table}.csv").is_file():
            text += "\n" + lens_verdict(claim, comparisons(read(folder, table)))
    if 9 in wanted:
        text += along_training_sentence(profile, figures_dir)
    return claim_words(text)


def _under(rules: Rules, profile: str, figures_dir, claims) -> dict[int, str]:
    with under_rules(rules):
        return words(profile, figures_dir, claims)


@lru_cache(maxsize=64)
def stability(profile: str, figures_dir=FIGURES_DIR, claims: tuple | None = None) -> dict[int, Stability]:
    """{claim: Stability} on a profile, from its CSVs alone: each claim's word with one usable seed of BN and one of
    no BN left out (every pair: 16 subsets with 4 seeds a side), and at each alpha of ALPHAS. `claims` (None:
    all) limits it to those a notebook prints."""
    found = words(profile, figures_dir, claims)
    acc = stats.usable(load(profile, figures_dir))
    seeds = {n: sorted(set(acc[acc.norm == n].seed)) for n in ("batch", "none")}
    fast = Rules(intervals=False)
    subsets = [_under(replace(fast, left_out=frozenset({("batch", a), ("none", b)})), profile, figures_dir, claims)
               for a, b in itertools.product(seeds["batch"], seeds["none"])]
    at = {a: _under(replace(fast, alpha=a), profile, figures_dir, claims) for a in ALPHAS}
    out = {}
    for claim, word in found.items():
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
