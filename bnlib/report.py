"""A profile's Results, written from its committed CSVs: `python -m bnlib.report PROFILE`.

Prints markdown: accuracy per variant, every per-layer comparison with Welch's p and Holm's correction over the
layers of one metric, and a verdict on each of the nine claims (bnlib.claims), all computed from
`figures/<profile>/*.csv`. Nothing in a verdict is typed by hand: `make refresh` writes this into
`figures/<profile>/README.md`, and the claims grid of every profile into the README and the appendix.
"""

from __future__ import annotations

import argparse
import sys

from .pages import ablation, profile_report
from .paths import FIGURES_DIR


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bnlib.report", description=__doc__.splitlines()[0])
    parser.add_argument("profile", help="a folder of figures/ (quick, mnist, cifar10-cpu, ablation, ...)")
    args = parser.parse_args(argv)
    if not (FIGURES_DIR / args.profile).is_dir():
        found = ", ".join(sorted(p.name for p in FIGURES_DIR.iterdir() if p.is_dir()))
        parser.error(f"no figures/{args.profile}/ folder; committed profiles: {found}")
    if (FIGURES_DIR / args.profile / "ablation_shared.csv").is_file():
        print(ablation(args.profile))
    else:
        print(profile_report(args.profile))
    return 0


if __name__ == "__main__":
    sys.exit(main())
