"""Every command of the README's papermill section runs as written."""

import os
import re
import subprocess

import pytest

from bnlib.paths import REPO_ROOT

pytestmark = pytest.mark.slow


def readme_block(heading: str) -> list[str]:
    text = (REPO_ROOT / "README.md").read_text()
    section = text.split(heading, 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, flags=re.S).group(1)
    return [line for line in block.splitlines() if line.strip() and not line.startswith("#")]


def test_readme_papermill_commands_run_as_written(tmp_path, isolated_cache):
    commands = readme_block("### One notebook with papermill")
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


def test_readme_results_blocks_are_the_report_of_the_committed_csvs():
    """Numbers in the README's Results come from bnlib.report, never typed: every block matches a fresh report."""
    from bnlib import report
    text = (REPO_ROOT / "README.md").read_text()
    blocks = re.findall(r"<!-- report:(\S+) -->\n(.*?)\n<!-- /report:\1 -->", text, flags=re.S)
    assert {"quick", "mnist", "cifar10-cpu", "ablation"} <= {profile for profile, _ in blocks}
    for profile, block in blocks:
        assert block == report.profile_report(profile), \
            f"README block {profile} is stale: run `python -m bnlib.report {profile} --update-readme`"
