"""Re-render everything committed from the committed CSVs: `python -m bnlib.refresh [--check] [PROFILE ...]`.

Measuring (training, capture, the measures) ends in each profile's measured
CSVs (`bnlib.tables.TABLES`). Everything after it is analysis, and this
re-makes all of it from those CSVs alone, with no model and no cache: every
executed notebook in figures/<profile>/ (run again with `from_csvs`, with the
profile and overrides its own parameters cell records), the paired
notebooks/NN.ipynb, the figures, the derived CSVs, figures/<profile>/README.md,
and the README's generated blocks (claims grid, quickstart numbers).

`--check` renders into a temporary folder instead and lists every committed
file that differs from what the current code makes, or that no code makes any
more; it exits 1 if there is one. `--check ablation` renders that profile only and
checks every other committed profile by its stamp: each render writes
figures/<profile>/RENDERED.json, the digest of the code that rendered it
(bnlib, notebooks, params, the lock) and of the CSVs it read. A stamp that does
not match the current code or CSVs is stale, as are a profile page or README
block that differ from what the CSVs make. `make test` runs `--check ablation` (the
smallest profile; tests/test_fresh.py renders the smoke profile's every notebook).
"""

from __future__ import annotations

import argparse
import filecmp
import hashlib
import json
import shlex
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import nbformat

from . import comparisons, pages
from .files import atomic_write_text
from .params import DEFAULT_PROFILE, resolve
from .paths import FIGURES_DIR, REPO_ROOT
from .runner import _source_notebook, is_own_run, read_parameters, run_notebook
from .tables import TABLES

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
README = REPO_ROOT / "README.md"
INPUTS = tuple(TABLES)  # the measured CSVs: read, never re-made here
WORKERS = 2  # one notebook kernel per core of the 2-core reference machine
STAMP = "RENDERED.json"
# What a render depends on besides the CSVs: any change here can change a committed file, so it re-stamps them all
RENDERING_CODE = ("bnlib/*.py", "bnlib/*.json", "notebooks/*.py", "notebooks/jupytext.toml", "params/*.yaml",
                  "requirements-lock.txt")


def code_digest() -> str:
    """sha256 over every file of RENDERING_CODE (path and bytes), in path order."""
    h = hashlib.sha256()
    for path in sorted({p for pattern in RENDERING_CODE for p in REPO_ROOT.glob(pattern)}):
        h.update(f"{path.relative_to(REPO_ROOT)}\0".encode() + path.read_bytes() + b"\0")
    return h.hexdigest()


def stamp(folder: Path) -> dict:
    """What rendered this folder: the code's digest and each measured CSV's sha256."""
    inputs = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.csv"))
              if p.stem in INPUTS}
    return {"code": code_digest(), "inputs": inputs}


def stamp_problems(name: str, figures_dir: Path = FIGURES_DIR) -> list[str]:
    """Why figures/<name>/ may not be what the current code makes from its CSVs, by its stamp; [] if it is."""
    path = Path(figures_dir) / name / STAMP
    if not path.is_file():
        return [f"figures/{name}/{STAMP}: missing (run `make refresh`)"]
    recorded, now = json.loads(path.read_text()), stamp(Path(figures_dir) / name)
    problems = [] if recorded["code"] == now["code"] else \
        [f"figures/{name}: rendered by other code than the current bnlib, notebooks, params or lock"]
    for csv in sorted(set(recorded["inputs"]) | set(now["inputs"])):
        if recorded["inputs"].get(csv) != now["inputs"].get(csv):
            problems.append(f"figures/{name}/{csv}: changed since the profile was rendered")
    return problems


def committed_profiles(figures_dir: Path = FIGURES_DIR) -> list[str]:
    """Every figures/<profile>/ folder holding executed notebooks, in reading order."""
    found = [p.name for p in figures_dir.iterdir() if p.is_dir() and any(p.glob("[0-9]*.ipynb"))]
    return pages.ordered_profiles(found)


def _notebooks(folder: Path) -> list[Path]:
    """The executed notebooks of a profile's folder; a failed run's partial `NN.failed.ipynb` is not one."""
    return sorted(p for p in folder.glob("[0-9]*.ipynb") if not p.stem.endswith(".failed"))


def made_by(folder: Path) -> tuple[str, dict]:
    """(profile, overrides) the folder's executed notebooks record in their parameters cells."""

    made = [read_parameters(nbformat.read(p, as_version=4)) for p in _notebooks(folder)]
    if any(m != made[0] for m in made):
        raise SystemExit(f"{folder}: its notebooks were made with different parameters ({made}); "
                         f"re-run the profile so they agree")
    profile, overrides = made[0]
    return profile, {k: v for k, v in overrides.items() if k not in ("output_dir", "notebooks")}


def command_of(folder_name: str, profile: str, overrides: dict) -> str:
    """The runner command that makes this folder, as a user types it."""
    words = ["python -m bnlib.runner --profile", profile]
    words += [f"-p {shlex.quote(f'{k}={v}'.replace(' ', ''))}" for k, v in overrides.items()]
    if folder_name != profile:
        words.append(f"-p output_dir=figures/{folder_name}")
    return " ".join(words)


def _render_notebook(job: tuple[str, str, dict, str, str | None]) -> str:
    name, profile, overrides, folder, pair = job
    run_notebook(name, profile, overrides | {"from_csvs": folder, "output_dir": folder},
                 output=Path(folder) / f"{name}.ipynb", pair=Path(pair) if pair else None, log=lambda s: None)
    return name


def render(profiles: list[str], root: Path, log=print, source: Path = FIGURES_DIR, notebooks=None) -> None:
    """Re-make every output of `profiles` under `root` (root/figures/<profile>/, root/notebooks/, root/README.md)
    from the measured CSVs in `source`/<profile>/. With root = the checkout, this rewrites the committed files in
    place. `notebooks` (names like "01_sparsity") renders only those, and writes no stamp."""


    jobs, commands = [], {}
    for name in profiles:
        src, dst = Path(source) / name, root / "figures" / name
        dst.mkdir(parents=True, exist_ok=True)
        if src.resolve() != dst.resolve():
            for table in INPUTS:
                if (src / f"{table}.csv").is_file():
                    shutil.copyfile(src / f"{table}.csv", dst / f"{table}.csv")
        profile, overrides = made_by(src)
        commands[name] = command_of(name, profile, overrides)
        for nb in _notebooks(src):
            if notebooks is not None and nb.stem not in notebooks:
                continue
            own = is_own_run(_source_notebook(nb.stem), resolve(profile, **overrides), overrides)
            pair = str(root / "notebooks" / nb.name) if own else None
            jobs.append((nb.stem, profile, overrides, str(dst), pair))
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=WORKERS) as pool:
        for i, done in enumerate(pool.map(_render_notebook, jobs), start=1):
            log(f"  [{i}/{len(jobs)}] {done} ({time.perf_counter() - t0:.0f}s)")
    for name in profiles:
        page = pages.profile_page(name, commands[name], root / "figures")
        atomic_write_text(root / "figures" / name / "README.md", page)
        if notebooks is None:
            atomic_write_text(root / "figures" / name / STAMP,
                              json.dumps(stamp(root / "figures" / name), indent=1, sort_keys=True) + "\n")
    if Path(source) == FIGURES_DIR and set(profiles) == set(committed_profiles()):  # its grid needs every profile
        atomic_write_text(root / "README.md", readme_text(README.read_text(), root / "figures"))


def readme_text(text: str, figures_dir: Path = FIGURES_DIR) -> str:
    """The README with its generated blocks made from the CSVs under `figures_dir`."""
    profiles = committed_profiles(figures_dir)
    grid = pages.claims_grid(profiles, lambda p: f"figures/{p}/README.md#results", figures_dir)
    text = pages.replace_block(text, "claims", grid)
    text = pages.replace_block(text, "profiles", pages.profiles_table())
    return pages.replace_block(text, f"expected:{DEFAULT_PROFILE}",
                               pages.accuracy_table(comparisons.load(DEFAULT_PROFILE, figures_dir)))


def stale(profiles: list[str], root: Path, committed_dir: Path = FIGURES_DIR) -> list[str]:
    """Committed files that differ from the render under `root`, or that nothing renders any more."""
    out = []
    for name in profiles:
        made, committed = root / "figures" / name, Path(committed_dir) / name
        names = {p.name for p in made.iterdir() if p.is_file()} | {p.name for p in committed.iterdir() if p.is_file()}
        for f in sorted(names):
            a, b = committed / f, made / f
            if not b.is_file():
                out.append(f"figures/{name}/{f}: no code makes it any more")
            elif not a.is_file():
                out.append(f"figures/{name}/{f}: missing (the current code makes it)")
            elif not filecmp.cmp(a, b, shallow=False):
                out.append(f"figures/{name}/{f}: differs from what the current code makes{_first_difference(a, b)}")
    for made in sorted((root / "notebooks").glob("*.ipynb")):
        if not filecmp.cmp(made, NOTEBOOK_DIR / made.name, shallow=False):
            out.append(f"notebooks/{made.name}: differs from what the current code makes")
    if (root / "README.md").is_file() and (root / "README.md").read_text() != README.read_text():
        out.append("README.md: a generated block differs from what the current code makes")
    return out


def unrendered_problems(others: list[str]) -> list[str]:
    """The committed profiles `--check` did not render, checked cheaply: each stamp, each results page (made from
    the CSVs alone), and the README's generated blocks."""
    found = [problem for name in others for problem in stamp_problems(name)]
    for name in others:
        page = pages.profile_page(name, command_of(name, *made_by(FIGURES_DIR / name)), FIGURES_DIR)
        if page != (FIGURES_DIR / name / "README.md").read_text():
            found.append(f"figures/{name}/README.md: differs from what the current code makes from its CSVs")
    if others and readme_text(README.read_text()) != README.read_text():
        found.append("README.md: a generated block differs from what the current code makes")
    return found


def _first_difference(committed: Path, made: Path) -> str:
    """For a text file: the first line that differs, so a stale file says what moved."""
    if committed.suffix not in (".ipynb", ".csv", ".md", ".svg"):
        return ""
    old, new = committed.read_text().splitlines(), made.read_text().splitlines()
    for i, (x, y) in enumerate(zip(old, new), start=1):
        if x != y:
            return f" (line {i}: {x.strip()[:100]!r} -> {y.strip()[:100]!r})"
    return f" ({len(old)} lines -> {len(new)})"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("profiles", nargs="*", help="folders under figures/ (default: every one with notebooks)")
    ap.add_argument("--check", action="store_true", help="render into a temporary folder; exit 1 if anything is stale")
    args = ap.parse_args(argv)
    profiles = args.profiles or committed_profiles()
    t0 = time.perf_counter()
    if not args.check:
        render(profiles, REPO_ROOT)
        print(f"refresh: {len(profiles)} profile(s) re-rendered from their CSVs in {time.perf_counter() - t0:.0f}s: "
              f"{', '.join(profiles)}; `git status` shows what changed")
        return 0
    with tempfile.TemporaryDirectory(prefix="bnlib-refresh-") as tmp:
        render(profiles, Path(tmp))
        found = stale(profiles, Path(tmp))
    found += unrendered_problems([p for p in committed_profiles() if p not in profiles])
    for line in found:
        print(f"stale: {line}")
    print(f"refresh --check: {len(found)} stale file(s); {len(profiles)} profile(s) rendered, the others checked by "
          f"their stamps, pages and README blocks, "
          f"{time.perf_counter() - t0:.0f}s" + ("; run `make refresh` and commit" if found else ""))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
