"""Nothing stale: everything committed is what the current code makes from the committed CSVs.

`python -m bnlib.refresh --check` re-renders every committed profile into a temporary folder (every executed
notebook, figure, derived CSV, results page and README block) and compares byte for byte. These tests run it,
show that it catches a one-digit CSV edit, and that a measuring run and a refresh make the same notebooks.
"""

import re
import shutil
import subprocess
import sys

import nbformat
import pytest

from bnlib import refresh
from bnlib.paths import FIGURES_DIR, REPO_ROOT

pytestmark = pytest.mark.slow


def test_everything_committed_is_fresh():
    """ablation (the smallest profile: 2 notebooks) is rendered and compared byte for byte; every other committed
    profile by its stamp (the code and CSVs that rendered it), its results page and the README blocks. That a
    render makes the same bytes as the run that measured is the smoke test below, on every notebook."""
    done = subprocess.run([sys.executable, "-m", "bnlib.refresh", "--check", "ablation"], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, \
        f"stale files; run `make refresh` and commit:\n{done.stdout[-4000:]}{done.stderr[-2000:]}"
    assert "0 stale file(s)" in done.stdout


def test_a_stamp_catches_code_or_csvs_changed_since_the_render(tmp_path, monkeypatch):
    """What the check of an unrendered profile rests on: its stamp names the code and every CSV it was made from."""
    shutil.copytree(FIGURES_DIR / "mnist", tmp_path / "mnist")
    assert refresh.stamp_problems("mnist", tmp_path) == []
    _edit_one_digit(tmp_path / "mnist" / "sparsity.csv")
    assert refresh.stamp_problems("mnist", tmp_path) == ["figures/mnist/sparsity.csv: changed since the profile "
                                                         "was rendered"]
    monkeypatch.setattr(refresh, "code_digest", lambda: "another")
    assert "rendered by other code" in refresh.stamp_problems("mnist", tmp_path)[0]
    (tmp_path / "mnist" / refresh.STAMP).unlink()
    assert "missing" in refresh.stamp_problems("mnist", tmp_path)[0]


def _edit_one_digit(csv_path):
    """Change the first decimal digit of the first fc1 channel_sparsity value (e.g. 0.381 -> 0.481)."""
    lines = csv_path.read_text().splitlines()
    for i, line in enumerate(lines):
        if ",fc1," in line and ",channel_sparsity," in line:
            head, value = line.rsplit(",", 1)
            digit = re.search(r"\.(\d)", value)
            new = str((int(digit.group(1)) + 1) % 10)
            lines[i] = f"{head},{value[:digit.start(1)]}{new}{value[digit.end(1):]}"
            csv_path.write_text("\n".join(lines) + "\n")
            return lines[i]
    raise AssertionError("no fc1 channel_sparsity row")


def test_a_one_digit_edit_to_a_committed_csv_makes_the_check_fail(tmp_path):
    """Only what sparsity.csv feeds is rendered (notebook 01 and the page); that an unedited render equals the
    committed files is test_everything_committed_is_fresh."""
    committed = tmp_path / "committed"
    shutil.copytree(FIGURES_DIR / "quick", committed / "quick")
    _edit_one_digit(committed / "quick" / "sparsity.csv")
    refresh.render(["quick"], tmp_path / "made", log=lambda s: None, source=committed, notebooks=["01_sparsity"])
    made = tmp_path / "made" / "figures" / "quick"
    for name in ("sparsity.png", "sparsity.svg", "01_sparsity.ipynb", "README.md"):
        assert (made / name).read_bytes() != (FIGURES_DIR / "quick" / name).read_bytes(), name
    assert refresh.stamp_problems("quick", committed) == ["figures/quick/sparsity.csv: changed since the profile "
                                                          "was rendered"]


def test_a_measuring_run_and_a_refresh_of_its_csvs_make_identical_notebooks_and_figures(smoke_run, tmp_path):
    """The runner's notebooks (measured now) equal those re-rendered from their CSVs alone: `make figures` output is
    what `make refresh` keeps."""
    out, _, _ = smoke_run
    source = tmp_path / "source"
    shutil.copytree(out, source / "smoke")
    refresh.render(["smoke"], tmp_path / "made", log=lambda s: None, source=source)
    made = tmp_path / "made" / "figures" / "smoke"
    for path in sorted(out.glob("*")):
        if path.suffix in (".ipynb", ".png", ".svg", ".csv"):
            assert path.read_bytes() == (made / path.name).read_bytes(), path.name
    params = nbformat.read(out / "01_sparsity.ipynb", as_version=4).cells
    assert any("profile = 'smoke'" in c.source for c in params)
    assert not any("cache_dir" in c.source or "output_dir" in c.source for c in params)  # placement: not shown


def test_every_committed_notebook_prints_the_verdicts_of_its_profile_page():
    """A verdict sentence in an executed notebook is word for word the one in the profile's report (README grid,
    figures/<profile>/README.md, the appendix), so no reader gets a different answer."""
    from bnlib import pages

    checked = 0
    for folder in refresh.committed_profiles():
        if (FIGURES_DIR / folder / "ablation_shared.csv").is_file():
            continue
        page = pages.profile_report(folder)
        for path in sorted((FIGURES_DIR / folder).glob("*.ipynb")):
            text = "".join(o.get("text", "") for c in nbformat.read(path, as_version=4).cells
                           for o in c.get("outputs", []) if o.get("output_type") == "stream")
            for sentence in re.findall(r"^[123]\. \*.*$", text, flags=re.M):
                assert sentence in page, f"{folder}/{path.name} prints a verdict its page lacks: {sentence[:120]}"
                checked += 1
    assert checked >= 12  # claims 1 and 2 in 01, claim 3 in 04, for each of four profiles


def test_a_failed_runs_partial_notebook_is_neither_rendered_nor_read(tmp_path):
    for name in ("01_sparsity.ipynb", "07_decision_trees.failed.ipynb"):
        (tmp_path / name).write_text("{}")
    assert [p.name for p in refresh._notebooks(tmp_path)] == ["01_sparsity.ipynb"]
