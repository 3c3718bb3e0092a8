"""The GPU bundle's dependency walk (tools/gpu_bundle.py), on synthetic wheels: no network."""
import importlib.util
import zipfile
from pathlib import Path

import pytest

from bnlib.paths import REPO_ROOT

spec = importlib.util.spec_from_file_location("gpu_bundle", REPO_ROOT / "tools" / "gpu_bundle.py")
gpu_bundle = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gpu_bundle)


def fake_wheel(folder: Path, name: str, requires: list[str]) -> Path:
    path = folder / f"{name}-1.0-py3-none-any.whl"
    meta = "Metadata-Version: 2.1\nName: %s\nVersion: 1.0\n" % name + "".join(f"Requires-Dist: {r}\n" for r in requires)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{name}-1.0.dist-info/METADATA", meta)
    return path


def test_requirements_follow_the_device_markers(tmp_path):
    wheel = fake_wheel(tmp_path, "pkg", ["Numpy>=1.0", "tomli; python_version < '3.11'", "typing_Extensions",
                                         "pytest; extra == 'test'", "pywin32; sys_platform == 'win32'",
                                         "exceptiongroup; python_version < '3.13'"])
    assert gpu_bundle.wheel_requirements(wheel) == ["numpy", "typing-extensions", "exceptiongroup"]


def test_closure_stops_at_the_device_and_fails_on_a_missing_pin(tmp_path):
    graph = {"app": ["lib-a", "torch"], "lib-a": ["lib_b", "numpy"], "lib-b": ["app"]}  # a cycle, and device packages

    def fetch(name, version):
        return fake_wheel(tmp_path, name, graph[name])

    pins = {"app": "1", "lib-a": "1", "lib-b": "1"}
    carried = gpu_bundle.closure(["App"], {"torch", "numpy"}, pins, fetch)
    assert sorted(carried) == ["app", "lib-a", "lib-b"]
    with pytest.raises(SystemExit, match="lib-b is needed on the device but has no pin"):
        gpu_bundle.closure(["app"], {"torch", "numpy"}, {"app": "1", "lib-a": "1"}, fetch)


def test_every_needed_package_is_pinned_or_on_the_device():
    pins, on_device = gpu_bundle.lock_pins(), gpu_bundle.device_packages()
    assert {"torch", "numpy", "scikit-learn", "numba"} <= on_device
    missing = [n for n in map(gpu_bundle.canonical, gpu_bundle.NEEDED) if n not in pins and n not in on_device]
    assert missing == []
