"""The appendix site and `make check`: built from the committed figures, offline, free of machine paths."""

import re
import shutil
import subprocess

import pandas as pd
import pytest

from bnlib import appendix, check, drift
from bnlib.params import resolve
from bnlib.paths import FIGURES_DIR, REPO_ROOT

# What would betray the machine that ran a notebook: its checkout, a home folder, a pathlib repr.
MACHINE_PATH = re.compile(r"(/work/|/home/[a-z]|/root/|/tmp/|PosixPath\(|[A-Z]:\\\\Users)")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("html")
    appendix.build(out, only=["quick", "ablation"])
    return out


def test_landing_page_has_the_paper_results_and_figures(site):
    index = (site / "index.html").read_text()
    assert appendix.PAPER["title"] in index and "arxiv.org/abs/2501.14441" in index
    assert "Potgieter" in index and "BN representations cluster better" in index  # a verdict from bnlib.claims
    assert "<table>" in index
    for fig in ("training", "sparsity", "silhouette", "umap", "views"):
        assert f'quick/{fig}.png' in index and f'quick/{fig}.csv' in index
        assert (site / "quick" / f"{fig}.png").is_file()
    assert 'href="quick/04_clustering_views.html"' in index
    # the claims grid comes first, each verdict linking to its profile's section
    assert index.index("The claims at a glance") < index.index('id="quick"')
    assert 'href="#quick"' in index and 'href="#ablation"' in index and "normalising at all" in index


def test_notebook_pages_navigate_and_hide_the_machinery(site):
    pages = sorted((site / "quick").glob("*.html"))
    assert [p.stem for p in pages] == resolve("quick").notebook_list()
    first, second = pages[0].read_text(), pages[1].read_text()
    assert 'href="../index.html"' in first and 'href="01_sparsity.html"' in first
    assert 'href="00_models.html"' in second and 'href="02_silhouette.html"' in second
    assert 'profile = &quot;quick&quot;' not in second and 'profile = "quick"' not in second  # parameters cell gone
    assert "Welch" in second  # the story stays


def test_no_machine_path_in_any_committed_notebook_or_page(site):
    committed = list(FIGURES_DIR.rglob("*.ipynb")) + list((REPO_ROOT / "notebooks").glob("*.ipynb"))
    assert committed
    for path in committed + list(site.rglob("*.html")):
        hit = MACHINE_PATH.search(path.read_text())
        assert hit is None, f"{path.relative_to(path.parents[1])}: {hit.group(0)!r}"


def test_site_renders_in_a_real_browser(site, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("Debian's chromium is not installed")
    shot = tmp_path / "index.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--screenshot={shot}", "--window-size=1200,1600", (site / "index.html").as_uri()],
                   check=True, capture_output=True, timeout=120)
    from PIL import Image

    img = Image.open(shot).convert("L")
    assert img.size == (1200, 1600)
    assert len(img.getcolors(maxcolors=1 << 16) or range(1 << 16)) > 50  # text and figures drawn, not a blank page


def test_check_reports_zero_drift_for_an_identical_rerun_and_flags_a_flipped_verdict(tmp_path, capsys):
    same = tmp_path / "same" / "quick"
    shutil.copytree(FIGURES_DIR / "quick", same)
    assert check.main(["quick", "--rerun-dir", str(same)]) == 0
    out = capsys.readouterr().out
    assert "| silhouette | silhouette | 40 | 0 |" in out and "Verdicts that flip: none." in out
    # BN's channel sparsity 0.2 higher in conv1: a large conv-layer effect, so claim 1 must flip.
    flipped = tmp_path / "flipped" / "quick"
    shutil.copytree(FIGURES_DIR / "quick", flipped)
    df = pd.read_csv(flipped / "sparsity.csv")
    df.loc[(df.norm == "batch") & (df.layer == "conv1") & (df.metric == "channel_sparsity"), "value"] += 0.2
    df.to_csv(flipped / "sparsity.csv", index=False)
    assert check.main(["quick", "--rerun-dir", str(flipped)]) == 1
    out = capsys.readouterr().out
    assert "claim 1: undetermined -> not supported" in out
    assert "channel_sparsity conv1: no difference -> BN" in out
    assert "| sparsity | channel_sparsity | 40 | 4 | 0.2 |" in out  # 40 values, the 4 BN seeds' conv1 moved


def test_a_rerun_over_committed_csvs_says_what_moved_and_which_words_changed(tmp_path):
    """The block `make figures` prints at its end when its folder held CSVs before it (issue 42)."""
    before = drift.snapshot(FIGURES_DIR / "quick")
    try:
        assert before.name == "quick" and {p.name for p in before.iterdir()} == \
            {p.name for p in (FIGURES_DIR / "quick").glob("*.csv")}
        text = drift.how_it_compares(before, FIGURES_DIR / "quick", "figures/quick")
        assert "numbers: all" in text and "identical" in text and "claim words: none of 9 changed" in text
        flipped = tmp_path / "quick"
        shutil.copytree(before, flipped)
        df = pd.read_csv(flipped / "sparsity.csv")
        df.loc[(df.norm == "batch") & (df.layer == "conv1") & (df.metric == "channel_sparsity"), "value"] += 0.2
        df.to_csv(flipped / "sparsity.csv", index=False)
        text = drift.how_it_compares(before, flipped, "figures/quick")
        assert "numbers: 4 of " in text and "sparsity 4/" in text and "(largest |Δ| 0.2)" in text
        assert re.search(r"claim 1 CHANGED: undetermined \(16/16\) -> not supported", text), text
        assert "`git checkout -- figures/quick` restores the committed ones" in text
    finally:
        shutil.rmtree(before.parent)
    assert drift.snapshot(tmp_path / "empty") is None


def test_drift_matches_rows_on_their_identifiers_and_compares_every_measured_column(tmp_path):
    """Rows that share their identifiers (a tree's depths, a plane's points) are matched in order; a boolean column is
    a measured number like any other."""
    rows = {"norm": ["batch", "batch", "none"], "seed": [0, 0, 0], "layer": ["conv1"] * 3, "depth": [1, 2, 1],
            "x": [0.5, 0.5, 0.5], "fits": [True, True, False]}
    for name, x in (("a", [0.5, 0.5, 0.5]), ("b", [0.5, 0.75, 0.5])):
        (tmp_path / name).mkdir()
        pd.DataFrame(rows | {"x": x}).to_csv(tmp_path / name / "trees.csv", index=False)
    table = drift.drift(tmp_path / "a", tmp_path / "b").set_index("metric")
    assert table.loc["x", "moved"] == 1 and table.loc["x", "max_abs_drift"] == 0.25
    assert table.loc["fits", "moved"] == 0 and table.loc["fits", "values"] == 3
    assert (table.unmatched_rows == 0).all()
