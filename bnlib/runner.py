"""Run the figure notebooks headless with papermill: `python -m bnlib.runner --profile quick`.

Each jupytext source `notebooks/NN_name.py` is converted to a fresh notebook
and executed with the profile name and any overrides as parameters. The
executed notebook is then put back into the shape of its source: papermill's
injected cell is dropped and every cell keeps its source's metadata, so the
output holds exactly the source's cells plus their outputs. For the default
profile it replaces the paired `notebooks/NN_name.ipynb` (and takes the
source's timestamp, so jupytext opens the pair without complaint); for every
other run it goes to `figures/<profile>/NN_name.ipynb`, with the parameters
cell rewritten to say which profile and overrides made it.

The kernel is pinned to this checkout (PYTHONPATH and $BNLIB_CHECKOUT), a
SIGTERM cleans up the kernel and temporary files, and a failure names the
notebook, the cell and the error, and keeps the partial notebook beside the output.
"""

from __future__ import annotations

import argparse
import copy
import logging
import os
import resource
import shutil
import signal
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import jupytext
import nbformat
import papermill
import torch
import yaml
from nbclient.exceptions import DeadKernelError

from .config import PORTABLE_ENV, ConfigError
from .distributed import run_grid
from .drift import how_it_compares, snapshot
from .estimate import estimate, format_duration
from .files import atomic_path
from .params import CHECKOUT_ENV, DEFAULT_PROFILE, NOTEBOOKS, PLACEMENT_KEYS, ExperimentParams, resolve
from .paths import REPO_ROOT, resolve_cache_dir

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
KERNEL = "python3"
# ipykernel warns on every start that loopback TCP is unencrypted, and logs a zmq traceback when a SIGTERM
# closes its sockets mid-reply: nothing a user can act on (a cell's error and a dead kernel still reach
# papermill). Its fd capture would copy the progress lines meant for the terminal into the notebook: off.
KERNEL_ARGS = ["--IPKernelApp.log_level=CRITICAL", "--IPKernelApp.capture_fd_output=False"]


class NotebookFailed(RuntimeError):
    """A notebook stopped with an error. The message names the notebook, the cell and the partial output."""


def default_profile(source) -> str:
    """The profile a notebook's own `parameters` cell names: the run its paired .ipynb holds."""
    try:
        return read_parameters(source)[0]
    except ValueError:  # no parameters cell
        return DEFAULT_PROFILE


def is_own_run(source, params: ExperimentParams, overrides: dict) -> bool:
    """The notebook's own run: its parameters cell's profile with no override but placement keys. Its paired
    notebooks/NN.ipynb holds this run."""
    return params.profile == default_profile(source) and set(overrides) <= PLACEMENT_KEYS


def executed_paths(name: str, source, params: ExperimentParams, overrides: dict) -> dict[Path, bool]:
    """{path: is the pair}: figures/<profile>/NN.ipynb always; also notebooks/NN.ipynb for the notebook's own run."""
    paths = {params.figures_dir() / f"{name}.ipynb": False}
    if is_own_run(source, params, overrides):
        paths[NOTEBOOK_DIR / f"{name}.ipynb"] = True
    return paths


def _source_notebook(name: str):
    source = NOTEBOOK_DIR / f"{name}.py"
    if not source.is_file():
        raise FileNotFoundError(f"no notebook source {source}; available: {', '.join(NOTEBOOKS)}")
    notebook = jupytext.read(source)
    notebook.metadata["kernelspec"] = {"name": KERNEL, "display_name": "Python 3", "language": "python"}
    notebook.metadata["language_info"] = {"name": "python"}
    return notebook


def parameters_source(profile: str, overrides: dict) -> str:
    """The parameters cell of an executed notebook: the profile and each override that changes results, as Python.

    Placement keys (where it ran, where files went, `from_csvs`) are left out: the same numbers make the same
    notebook wherever they were made, which is what lets `make refresh` re-render it byte for byte."""
    lines = [f"profile = {profile!r}  # params/{profile}.yaml"]
    lines += [f"{key} = {value!r}" for key, value in overrides.items() if key not in PLACEMENT_KEYS]
    return "\n".join(lines)


def read_parameters(notebook) -> tuple[str, dict]:
    """(profile, overrides) from an executed notebook's parameters cell: the record of how it was made."""
    for cell in notebook.cells:
        if "parameters" in cell.metadata.get("tags", []):
            namespace: dict = {}
            exec(cell.source, namespace)  # a cell `parameters_source` wrote: assignments of literals
            namespace.pop("__builtins__", None)
            return namespace.pop("profile", DEFAULT_PROFILE), namespace
    raise ValueError("the notebook has no cell tagged 'parameters'")


def restore_cells(executed, source, parameters: str | None = None):
    """The executed notebook with exactly the source's cells: injected cell gone, source metadata back."""
    papermill_tags = {"injected-parameters", "papermill-error-cell-tag"}
    cells = [c for c in executed.cells if not papermill_tags & set(c.metadata.get("tags", []))]
    if [c.source for c in cells] != [c.source for c in source.cells]:
        raise RuntimeError("executed notebook's cells do not match its source")  # papermill changed more than expected
    for index, (cell, original) in enumerate(zip(cells, source.cells)):
        cell.metadata = copy.deepcopy(original.metadata)
        cell.id = f"cell-{index}"  # nbformat draws random ids: a fixed one keeps a re-render byte-identical
        if "outputs" in cell:
            cell.outputs = _coalesced(cell.outputs)
        if parameters is not None and "parameters" in original.metadata.get("tags", []):
            cell.source = parameters
    executed.cells = cells
    executed.metadata = {k: v for k, v in executed.metadata.items() if k in ("kernelspec", "language_info")}
    return executed


def _coalesced(outputs: list) -> list:
    """Adjacent stdout (or stderr) messages joined into one output: how the kernel chunks a cell's prints depends on
    timing, and the same prints must make the same notebook."""
    merged = []
    for out in outputs:
        if (out.get("output_type") == "stream" and merged and merged[-1].get("output_type") == "stream"
                and merged[-1].get("name") == out.get("name")):
            merged[-1]["text"] += out["text"]
        else:
            merged.append(out)
    return merged


class _QuietPapermill(logging.Filter):
    """Profile keys are validated by bnlib; papermill's 'unknown parameter' note is noise."""

    def filter(self, record):
        return "Passed unknown parameter" not in record.getMessage()


class _QuietOrphanedCell(logging.Filter):
    """After a SIGTERM or Ctrl-C the interrupted cell's task can wake while the kernel is shut down, die with
    DeadKernelError, and be reported by asyncio as 'never retrieved' with a traceback: the run already says
    it stopped and how to resume, so that report is noise."""

    def filter(self, record):
        return not (record.exc_info and isinstance(record.exc_info[1], DeadKernelError))


QUIET_PAPERMILL, QUIET_ORPHANED_CELL = _QuietPapermill(), _QuietOrphanedCell()


def quiet_logs() -> None:
    """Drop the log records above that nobody can act on (idempotent)."""
    logging.getLogger("papermill").addFilter(QUIET_PAPERMILL)
    logging.getLogger("asyncio").addFilter(QUIET_ORPHANED_CELL)


@contextmanager
def _pinned_kernel_env(extra: dict[str, str] | None = None):
    """Kernels started in here import bnlib from this checkout, whatever the environment has installed."""
    extra = extra or {}
    saved = {k: os.environ.get(k) for k in ("PYTHONPATH", CHECKOUT_ENV, *extra)}
    os.environ.update(extra)
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), saved["PYTHONPATH"]) if p)
    os.environ[CHECKOUT_ENV] = str(REPO_ROOT)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def compiler_caches(params: ExperimentParams) -> None:
    """numba's and torch's compiler caches live in the bnlib cache, not in the working directory or $TMPDIR (torch
    makes $TMPDIR/torchinductor_<user> as soon as an optimizer step imports its compiler)."""
    root = resolve_cache_dir(params.cache_dir)
    os.environ.setdefault("NUMBA_CACHE_DIR", str(root / "numba"))
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(root / "torchinductor"))


def run_notebook(name: str, profile: str = DEFAULT_PROFILE, overrides: dict | None = None,
                 output: Path | None = None, kernel: str = KERNEL, log=print, pair: Path | None = None) -> Path:
    """Execute notebook `name` headless; write it to `output` (default: executed_paths) and, with `pair`, also the
    paired form (the source's own parameters cell) there. Returns the last path written."""
    overrides = dict(overrides or {})
    params = resolve(profile, **overrides)  # a bad key fails here, before a kernel starts
    source = _source_notebook(name)
    outputs = {Path(output): False} if output else executed_paths(name, source, params, overrides)
    if pair is not None:
        outputs[Path(pair)] = True
    output = next(iter(outputs))
    compiler_caches(params)
    quiet_logs()
    t0 = time.perf_counter()
    log(f"{name}: started (profile {profile})")
    with tempfile.TemporaryDirectory(prefix="bnlib-run-") as tmp:
        fresh, executed = Path(tmp) / f"{name}.ipynb", Path(tmp) / "executed.ipynb"
        nbformat.write(source, fresh)
        try:
            with _pinned_kernel_env(PORTABLE_ENV if params.cpu_portable else None):
                papermill.execute_notebook(str(fresh), str(executed), parameters={"profile": profile} | overrides,
                                           kernel_name=kernel, language="python", cwd=str(NOTEBOOK_DIR),
                                           progress_bar=False, extra_arguments=KERNEL_ARGS)
        except DeadKernelError as exc:
            raise NotebookFailed(f"{name}: the kernel died ({exc}). Trained models are checkpointed every epoch: "
                                 f"re-running the same command resumes where it stopped.") from None
        except papermill.PapermillExecutionError as exc:
            partial = output.with_suffix(".failed.ipynb")
            if executed.is_file():
                partial.parent.mkdir(parents=True, exist_ok=True)
                nb = restore_cells(nbformat.read(executed, as_version=4), source, parameters_source(profile, overrides))
                nbformat.write(nb, partial)
            raise NotebookFailed(f"{name}: cell {exc.cell_index} failed with {exc.ename}: {exc.evalue}\n"
                                 f"The partial notebook is {partial}; re-running resumes from the cache.") from None
        for target, paired in outputs.items():
            nb = restore_cells(nbformat.read(executed, as_version=4), source,
                               None if paired else parameters_source(profile, overrides))
            with atomic_path(target) as out:  # only a notebook that ran to the end is put in place
                nbformat.write(nb, out)
            if paired and target.parent == NOTEBOOK_DIR:  # the source's time, as git would not keep it either
                stamp = (NOTEBOOK_DIR / f"{name}.py").stat().st_mtime
                os.utime(target, (stamp, stamp))
    output.with_suffix(".failed.ipynb").unlink(missing_ok=True)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20  # KiB -> GiB, largest kernel so far
    log(f"{name}: done in {time.perf_counter() - t0:.0f}s, peak kernel RSS so far {peak:.1f} GiB -> "
        f"{', '.join(_display(p) for p in outputs)}")
    return list(outputs)[-1]


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def _terminate(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")  # unwinds: the kernel is shut down and temporary files removed


def parse_overrides(items: list[str]) -> dict:
    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"-p {item!r}: expected KEY=VALUE")
        overrides[key] = yaml.safe_load(value)
    return overrides


def ray_overrides(profile: str, overrides: dict) -> dict:
    """A Ray run on CPU uses `cpu_portable` unless told otherwise: its bits then match a sequential portable run
    whatever thread count each task gets. The notebooks after it must use the same key to find its models."""
    params = resolve(profile, **overrides)
    on_cpu = params.device == "cpu" or (params.device == "auto" and not _cuda_available())
    if on_cpu and "cpu_portable" not in overrides and not params.cpu_portable:
        print("ray: cpu_portable on (bit-identical for any thread count); -p cpu_portable=false turns it off",
              file=sys.stderr)
        return overrides | {"cpu_portable": True}
    return overrides


def _cuda_available() -> bool:
    return torch.cuda.is_available()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", help="a params/<profile>.yaml (default: the profile the first notebook's parameters "
                                      "cell names with --notebook, else quick)")
    ap.add_argument("--notebook", action="append", choices=list(NOTEBOOKS), help="run only these (repeatable)")
    ap.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE",
                    help="override one key; VALUE is read as YAML (e.g. -p epochs=3 -p seeds=[0,1])")
    ap.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                    help="train and measure the missing models as Ray tasks first: no ADDRESS starts Ray locally; "
                         "'auto' or ray://host:10001 joins a cluster (needs: pip install -e '.[ray]')")
    args = ap.parse_args(argv)
    if args.profile is None:
        args.profile = default_profile(NOTEBOOK_DIR / f"{args.notebook[0]}.py") if args.notebook else DEFAULT_PROFILE
    signal.signal(signal.SIGTERM, _terminate)
    before = None
    try:
        overrides = parse_overrides(args.param)
        if args.ray:
            overrides = ray_overrides(args.profile, overrides)
        params = resolve(args.profile, **overrides)
        names = args.notebook or params.notebook_list()
        t0 = time.perf_counter()
        expected = None
        compiler_caches(params)
        if not args.ray:  # a few training steps on this machine, before the long work (a Ray grid trains elsewhere)
            try:
                expected = estimate(params, names)
                print(expected.describe(), flush=True)
            except RuntimeError as exc:  # e.g. device: cuda on a machine without one: the notebook says it plainly
                print(f"expected: no estimate ({exc})", flush=True)
        if args.ray:
            run_grid(params, None if args.ray == "local" else args.ray)
        before = snapshot(params.figures_dir())  # the committed CSVs, or a previous run's: what this run is against
        written = [run_notebook(name, args.profile, overrides) for name in names]
        figures = sorted({p.name for p in params.figures_dir().glob("*.png")})
        guess = f" (expected {format_duration(expected.total)})" if expected else ""
        print(f"summary: {len(written)} notebook(s) in {time.perf_counter() - t0:.0f}s{guess}; figures in "
              f"{_display(params.figures_dir())}/: {', '.join(figures) or 'none'}")
        if before is not None:
            print(how_it_compares(before, params.figures_dir(), _display(params.figures_dir())))
    except (ConfigError, NotebookFailed) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print(f"stopped ({exc or 'interrupted'}); re-running the same command resumes from the cache", file=sys.stderr)
        return 130
    finally:
        if before is not None:
            shutil.rmtree(before.parent, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
