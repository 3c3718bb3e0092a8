"""Every command of the README's papermill section runs as written."""

import os
import re
import subprocess

import pytest

from bnlib.params import NOTEBOOKS
from bnlib.paths import REPO_ROOT

pytestmark = pytest.mark.slow


def readme_block(heading: str) -> list[str]:
    text = (REPO_ROOT / "README.md").read_text()
    section = text.split(heading, 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, flags=re.S).group(1)
    return [line for line in block.splitlines() if line.strip() and not line.startswith("#")]


def test_readme_papermill_commands_run_as_written(tmp_path, isolated_cache):
    commands = readme_block("**Batch, with make or papermill.**")
    assert len(commands) == 4 and any("jupytext --to ipynb" in c for c in commands)
    # A folder that looks like the checkout (its notebooks, params and venv), so out.ipynb lands here.
    for name in ("notebooks", "params", ".venv"):
        (tmp_path / name).symlink_to(REPO_ROOT / name)
    env = os.environ | {"BNLIB_CACHE_DIR": str(isolated_cache)}
    for command in commands:
        done = subprocess.run(command, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"{command}\n{done.stderr[-3000:]}"
        if "papermill" in command:
            assert "Sparsity per layer" in (tmp_path / "out.ipynb").read_text()
            (tmp_path / "out.ipynb").unlink()


def test_readme_is_user_documentation_with_the_claims_grid_at_its_top():
    """At most about 300 lines; the generated claims grid right under the quickstart, one row per claim; no diary."""
    from bnlib import report

    text = (REPO_ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 300
    headings = re.findall(r"^## (.+)$", text, flags=re.M)
    assert headings[:2] == ["Quickstart", "The claims at a glance"]
    grid = re.search(r"<!-- claims -->\n(.*?)\n<!-- /claims -->", text, flags=re.S).group(1)
    assert all(f"| {n}. {claim} |" in grid for n, claim in report.CLAIMS.items())
    assert "figures/quick/README.md#results" in grid and "figures/cifar10-cpu/README.md#results" in grid
    assert "in this session" not in text and "SIGSTOP" not in text


def test_readme_own_data_example_runs_as_written(tmp_path, isolated_cache, shared_data):
    """The "Your own data" command, as written (its figures redirected to a temporary folder)."""
    import pandas as pd

    (command,) = readme_block("## Your own data")
    assert command == ".venv/bin/python -m bnlib.runner --profile custom"
    # Notebooks 00-04 only: they train and measure on the custom data; 05-10 run the same code on any dataset and
    # the smoke test runs them all (with them this test took a third of `make test`)
    first = " ".join(f"--notebook {name}" for name in list(NOTEBOOKS)[:5])
    done = subprocess.run(f"{command} {first} -p output_dir={tmp_path / 'custom'}", shell=True, cwd=REPO_ROOT,
                          env=os.environ | {"BNLIB_CACHE_DIR": str(isolated_cache)}, capture_output=True, text=True,
                          timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    acc = pd.read_csv(tmp_path / "custom" / "accuracy.csv")
    assert acc.dataset.str.startswith("custom-").all() and len(acc[acc.metric == "test_accuracy"]) == 8
    test_acc = acc[acc.metric == "test_accuracy"]
    assert (acc[acc.metric == "excluded"].value == 0).all() and (test_acc.value > 0.5).all()  # every run usable
    assert test_acc[test_acc.norm == "batch"].value.min() > 0.95  # BN on MNIST read as IDX files: as on MNIST
    assert {f"{f}.png" for f in ("training", "sparsity", "silhouette", "umap", "views")} <= \
        {p.name for p in (tmp_path / "custom").iterdir()}
