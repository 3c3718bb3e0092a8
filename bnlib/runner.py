"""Run the figure notebooks headless with papermill: `python -m bnlib.runner --profile quick`.

Each jupytext source `notebooks/NN_name.py` is converted to a fresh notebook,
executed with the profile's keys injected as parameters, and renamed into
place only when it succeeded: `notebooks/NN_name.ipynb` for the default
profile, `figures/<profile>/NN_name.ipynb` for every other one.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml

from .io import atomic_path
from .params import load_profile, resolve
from .paths import REPO_ROOT, resolve_cache_dir

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
NOTEBOOKS = ("00_models", "01_sparsity", "02_silhouette", "03_umap")
DEFAULT_PROFILE = "quick"


def executed_path(name: str, profile: str, overrides: dict) -> Path:
    params = resolve(profile, **overrides)
    figures = params.figures_dir()
    if profile == DEFAULT_PROFILE and figures.name == DEFAULT_PROFILE and "output_dir" not in overrides:
        return NOTEBOOK_DIR / f"{name}.ipynb"  # the paired notebook is the default profile's run
    return figures / f"{name}.ipynb"


def run_notebook(name: str, profile: str = DEFAULT_PROFILE, overrides: dict | None = None,
                 output: Path | None = None, kernel: str = "python3", log=print) -> Path:
    import jupytext
    import papermill

    overrides = dict(overrides or {})
    source = NOTEBOOK_DIR / f"{name}.py"
    if not source.is_file():
        raise FileNotFoundError(f"no notebook source {source}; available: {', '.join(NOTEBOOKS)}")
    resolve(profile, **overrides)  # a bad key fails here, before a kernel starts
    output = Path(output) if output else executed_path(name, profile, overrides)
    parameters = load_profile(profile) | overrides | {"profile": profile}
    os.environ.setdefault("NUMBA_CACHE_DIR", str(resolve_cache_dir(parameters.get("cache_dir")) / "numba"))
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp) / f"{name}.ipynb"
        notebook = jupytext.read(source)
        notebook.metadata["kernelspec"] = {"name": kernel, "display_name": "Python 3", "language": "python"}
        notebook.metadata["language_info"] = {"name": "python"}
        jupytext.write(notebook, fresh)
        t0 = time.perf_counter()
        executed = Path(tmp) / "executed.ipynb"
        papermill.execute_notebook(str(fresh), str(executed), parameters=parameters,
                                   kernel_name=kernel, language="python", cwd=str(NOTEBOOK_DIR), progress_bar=False)
        with atomic_path(output) as out:  # only a notebook that ran to the end is put in place
            shutil.copyfile(executed, out)
    log(f"{name}: executed with profile {profile!r} in {time.perf_counter() - t0:.0f}s -> {output}")
    return output


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default=DEFAULT_PROFILE, help="a params/<profile>.yaml (default: quick)")
    ap.add_argument("--notebook", action="append", choices=NOTEBOOKS, help="run only these (repeatable)")
    ap.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE",
                    help="override one key; VALUE is read as YAML (e.g. -p epochs=3 -p seeds=[0,1])")
    args = ap.parse_args(argv)
    overrides = {}
    for item in args.param:
        key, sep, value = item.partition("=")
        if not sep:
            ap.error(f"-p {item!r}: expected KEY=VALUE")
        overrides[key] = yaml.safe_load(value)
    t0 = time.perf_counter()
    for name in args.notebook or NOTEBOOKS:
        run_notebook(name, args.profile, overrides)
    print(f"all notebooks: {time.perf_counter() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
