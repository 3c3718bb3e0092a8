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


def test_readme_papermill_commands_run_as_written(tmp_path, smoke_cache):
    """On a copy of the smoke grid's cache: the commands that name the smoke profile find its models and tables (what
    is checked is that each runs as written and fills the notebook), and `-p epochs 2` trains four more."""
    commands = readme_block("**Batch, with make or papermill.**")
    assert len(commands) == 4 and any("jupytext --to ipynb" in c for c in commands)
    # A folder that looks like the checkout (its notebooks, params and venv), so out.ipynb lands here.
    for name in ("notebooks", "params", ".venv"):
        (tmp_path / name).symlink_to(REPO_ROOT / name)
    env = os.environ | {"BNLIB_CACHE_DIR": str(smoke_cache)}
    for command in commands:
        done = subprocess.run(command, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"{command}\n{done.stderr[-3000:]}"
        if "papermill" in command:
            assert "Sparsity per layer" in (tmp_path / "out.ipynb").read_text()
            (tmp_path / "out.ipynb").unlink()


def test_readme_is_user_documentation_with_the_claims_grid_at_its_top():
    """At most about 300 lines; the generated claims grid right under the quickstart, one row per claim; no diary."""
    from bnlib import claims

    text = (REPO_ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 300
    headings = re.findall(r"^## (.+)$", text, flags=re.M)
    assert headings[:2] == ["Quickstart", "The claims at a glance"]
    grid = re.search(r"<!-- claims -->\n(.*?)\n<!-- /claims -->", text, flags=re.S).group(1)
    assert all(f"| {n}. {claim} |" in grid for n, claim in claims.CLAIMS.items())
    assert "figures/quick/README.md#results" in grid and "figures/cifar10-cpu/README.md#results" in grid
    assert "in this session" not in text and "SIGSTOP" not in text


# The smoke design's size, on the command line as a user would shrink the template: what this test checks is that
# the README command runs as written on IDX files (named custom-..., every row present, the verdicts rendered), not
# how well eight models learn MNIST. No accuracy is asserted: at one epoch a no-BN run's accuracy is luck.
SMOKE_SIZED = ("seeds=[0,1]", "epochs=1", "batch_size=32", "train_subset=512", "lr={batch: 0.01, none: 0.05}",
               "n_represent=120", "umap_samples=100", "umap_layers=[conv1,fc1]", "probe_test_samples=100")


def test_readme_own_data_example_runs_as_written(tmp_path, isolated_cache, shared_data):
    """The "Your own data" command, as written, smoke-sized with `-p` overrides (figures to a temporary folder)."""
    import nbformat
    import pandas as pd

    (command,) = readme_block("## Your own data")
    assert command == ".venv/bin/python -m bnlib.runner --profile custom"
    # Notebooks 00 (training) and 01 (the measures and the verdicts); the other notebooks on own data are
    # tests/test_custom_data.py's (an image folder and an npz), and the IDX loader is checked against the built-in
    # MNIST there too
    first = " ".join(f"--notebook {name}" for name in list(NOTEBOOKS)[:2])
    sized = " ".join(f"-p '{o}'" for o in SMOKE_SIZED)
    out = tmp_path / "custom"
    done = subprocess.run(f"{command} {first} {sized} -p output_dir={out}", shell=True, cwd=REPO_ROOT,
                          env=os.environ | {"BNLIB_CACHE_DIR": str(isolated_cache)}, capture_output=True, text=True,
                          timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    acc = pd.read_csv(out / "accuracy.csv")
    assert acc.dataset.str.startswith("custom-").all()
    runs = acc[acc.metric == "test_accuracy"]
    assert sorted(zip(runs.norm, runs.seed)) == [("batch", 0), ("batch", 1), ("none", 0), ("none", 1)]
    assert runs.value.between(0, 1).all()
    # every usable run has all 5 layers x 3 sparsity measures; an excluded one (named in the notebooks) has none
    excluded = {(r.norm, r.seed) for r in acc[(acc.metric == "excluded") & (acc.value == 1)].itertuples()}
    rows = pd.read_csv(out / "sparsity.csv").groupby(["norm", "seed"]).size().to_dict()
    assert rows == {run: 5 * 3 for run in zip(runs.norm, runs.seed) if run not in excluded}
    assert {"training.png", "sparsity.png"} <= {p.name for p in out.iterdir()}
    printed = "".join(o.get("text", "") for c in nbformat.read(out / "01_sparsity.ipynb", as_version=4).cells
                      for o in c.get("outputs", []) if o.get("output_type") == "stream")
    assert re.search(r"^1\. \*", printed, flags=re.M) and re.search(r"^2\. \*", printed, flags=re.M), printed[-2000:]
