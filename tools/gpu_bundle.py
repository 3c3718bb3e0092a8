"""Pack what a lent GPU machine lacks to run a profile: wheels into .whl/, the CIFAR-10 JPEG copy into .devdata/.

The device image has torch, numpy, pandas, sklearn, matplotlib, seaborn, numba, ... (device_packages.txt)
but not papermill, jupytext, ipykernel, umap-learn, pydantic or mlxtend. This downloads, for CPython 3.12 on
manylinux x86-64, the versions pinned in requirements-lock.txt of every package the notebooks need, following
each wheel's own Requires-Dist until everything is either carried or already on the device. It fails, naming
the package, when a dependency has no pin or no matching wheel, and when the bundle would not fit the
device's 64 MiB working-tree limit together with the tracked files.

    .venv/bin/python tools/gpu_bundle.py            # -> .whl/, .devdata/, and the device command prefix

Both folders are git-ignored; name them in the device call's `carry`.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name as canonical

ROOT = Path(__file__).resolve().parents[1]
# What the runner and notebooks import, beyond the device image (bnlib itself travels with the tree).
NEEDED = ["papermill", "jupytext", "ipykernel", "nbformat", "nbclient", "jupyter-client", "umap-learn",
          "pydantic", "mlxtend", "pyyaml", "safetensors", "filelock", "tqdm"]
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
             "manylinux1_x86_64", "manylinux_2_24_x86_64", "manylinux_2_31_x86_64", "manylinux_2_34_x86_64",
             "manylinux_2_35_x86_64"]
DEVICE_ENV = {**default_environment(), "python_version": "3.12", "python_full_version": "3.12.3",
              "sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64",
              "implementation_name": "cpython", "platform_python_implementation": "CPython", "os_name": "posix"}
TREE_LIMIT = 64 * 2**20  # the device's limit on what travels per call


def device_packages(path: Path = ROOT / "tools" / "device_packages.txt") -> set[str]:
    words = [w for line in path.read_text().splitlines() if not line.startswith("#") for w in line.split()]
    return {canonical(w) for w in words}


def lock_pins(path: Path = ROOT / "requirements-lock.txt") -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split(";")[0].strip().split("==")
            pins[canonical(name)] = version
    return pins


def wheel_requirements(wheel: Path) -> list[str]:
    """The names a wheel needs on the device: its Requires-Dist entries whose markers hold there (no extras)."""
    with zipfile.ZipFile(wheel) as zf:
        meta = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        lines = zf.read(meta).decode().splitlines()
    needs = []
    for line in lines:
        if line.startswith("Requires-Dist:"):
            req = Requirement(line.split(":", 1)[1].strip())
            if req.marker is None or req.marker.evaluate({**DEVICE_ENV, "extra": ""}):
                needs.append(canonical(req.name))
    return needs


def download(name: str, version: str, dest: Path) -> Path:
    before = set(dest.glob("*.whl"))
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
           "--python-version", "3.12", "--implementation", "cp", "-d", str(dest), f"{name}=={version}"]
    for p in PLATFORMS:
        cmd += ["--platform", p]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"gpu_bundle: no cp312 manylinux x86-64 wheel of {name}=={version}:\n{done.stderr.strip()[-800:]}")
    new = set(dest.glob("*.whl")) - before
    found = new or {w for w in dest.glob("*.whl") if canonical(w.name.split("-")[0]) == canonical(name)}
    return next(iter(found))


def closure(needed, on_device: set[str], pins: dict[str, str], fetch) -> dict[str, Path]:
    """Every package to carry: `needed` and, through each fetched wheel's requirements, what they need,
    stopping at what the device already has. `fetch(name, version)` returns the wheel's path."""
    todo, carried = [canonical(n) for n in needed], {}
    while todo:
        name = todo.pop()
        if name in carried or name in on_device:
            continue
        if name not in pins:
            sys.exit(f"gpu_bundle: {name} is needed on the device but has no pin in requirements-lock.txt; "
                     "add it there (or to device_packages.txt if the image has it).")
        carried[name] = fetch(name, pins[name])
        todo += wheel_requirements(carried[name])
    return carried


def bundle(wheels: Path, data: Path, data_source: Path) -> tuple[list[str], int]:
    on_device, pins = device_packages(), lock_pins()
    wheels.mkdir(exist_ok=True)
    for old in wheels.glob("*.whl"):
        old.unlink()  # one version of each: two stop the whole install on the device
    carried = closure(NEEDED, on_device, pins, lambda name, version: download(name, version, wheels))
    archive = data_source / "cifar10-jpeg" / "cifar10-jpeg.tar.gz"
    if not archive.exists():
        sys.exit(f"gpu_bundle: {archive} is missing; pass --data-source DIR holding cifar10-jpeg/cifar10-jpeg.tar.gz")
    (data / "cifar10-jpeg").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(archive, data / "cifar10-jpeg" / archive.name)
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    tree = sum((ROOT / p).stat().st_size for p in tracked.decode().split("\0") if p and (ROOT / p).exists())
    size = tree + sum(f.stat().st_size for d in (wheels, data) for f in d.rglob("*") if f.is_file())
    return sorted(w.name for w in carried.values()), size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--wheels", type=Path, default=ROOT / ".whl")
    ap.add_argument("--data", type=Path, default=ROOT / ".devdata")
    ap.add_argument("--data-source", type=Path, default=ROOT.parent / "shared" / "data")
    args = ap.parse_args()
    names, size = bundle(args.wheels, args.data, args.data_source)
    print(f"{len(names)} wheels in {args.wheels}:", ", ".join(names))
    print(f"what travels (tracked files + wheels + data): {size / 2**20:.1f} MiB of {TREE_LIMIT / 2**20:.0f} MiB")
    if size > TREE_LIMIT:
        sys.exit("gpu_bundle: over the device's limit; carry the data and the wheels in separate calls")
    print("device command prefix:\n  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir "
          "--upgrade "
          "--target .devsite .whl/*.whl && export PYTHONPATH=$PWD/.devsite BNLIB_DATA_DIR=$PWD/.devdata "
          "BNLIB_CACHE_DIR=$PWD/.cache/bnlib || exit;")


if __name__ == "__main__":
    main()
