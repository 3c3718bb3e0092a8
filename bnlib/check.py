"""Re-run a profile from scratch and compare it with the committed numbers: `python -m bnlib.check PROFILE`.

Trains every model again into an empty temporary cache, runs the profile's
notebooks into a temporary folder (the committed figures, notebooks and the
user's cache are not touched), then compares every number of every CSV with
`figures/<profile>/`. Prints the largest drift per metric and whether any
verdict of the README (`bnlib.claims`) or any per-layer "which variant is
higher" answer flips. Exits 1 when a verdict flips, 0 otherwise.

    python -m bnlib.check quick            # re-run and compare
    python -m bnlib.check quick --rerun-dir DIR   # compare a finished re-run in DIR, no training
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from .drift import drift, flips, markdown_table
from .params import resolve
from .paths import FIGURES_DIR
from .runner import run_notebook


def rerun(profile: str, out: Path, notebooks: list[str] | None = None) -> None:
    """Every notebook of the profile into `out`, trained from an empty cache in `out/cache`."""
    overrides = {"cache_dir": str(out / "cache"), "output_dir": str(out / "figures")}
    names = notebooks or resolve(profile, **overrides).notebook_list()
    for name in names:
        run_notebook(name, profile, overrides, output=out / "figures" / f"{name}.ipynb")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("profile")
    ap.add_argument("--rerun-dir", type=Path, help="compare this finished re-run folder instead of re-running")
    ap.add_argument("--keep", action="store_true", help="keep the re-run folder (printed) for inspection")
    args = ap.parse_args(argv)
    committed = FIGURES_DIR / args.profile
    if not any(committed.glob("*.csv")):
        raise SystemExit(f"no committed CSVs in {committed}: nothing to check against")
    t0 = time.perf_counter()
    tmp = None
    if args.rerun_dir is None:
        tmp = Path(tempfile.mkdtemp(prefix=f"bnlib-check-{args.profile}-"))
        print(f"re-running profile {args.profile} from an empty cache in {tmp}", file=sys.stderr)
        rerun(args.profile, tmp)
        fresh = tmp / "figures"
    else:
        fresh = args.rerun_dir
    # comparisons.load reads <dir>/<profile>: give the fresh folder that shape
    shaped = fresh.parent / "_check" / args.profile
    if fresh.name != args.profile:
        shaped.parent.mkdir(parents=True, exist_ok=True)
        if not shaped.exists():
            shaped.symlink_to(fresh.resolve(), target_is_directory=True)
        fresh = shaped
    table = drift(committed, fresh)
    print(f"## Drift of a re-run of `{args.profile}` against the committed CSVs\n")
    print(markdown_table(table) if len(table) else "no CSV in common")
    flipped, layers = flips(args.profile, committed, fresh)
    print(f"\nVerdicts that flip: {'; '.join(flipped) if flipped else 'none'}.")
    print(f"Per-layer answers (which variant is higher, Holm-corrected) that flip: "
          f"{'; '.join(layers) if layers else 'none'}.")
    print(f"(checked in {time.perf_counter() - t0:.0f}s{'; re-run kept in ' + str(tmp) if tmp and args.keep else ''})")
    if tmp is not None and not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if flipped else 0


if __name__ == "__main__":
    sys.exit(main())
