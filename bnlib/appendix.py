"""The paper's companion site, from the committed figures and executed notebooks: `python -m bnlib.appendix`.

Writes `html/` (or the folder given): a landing page with the paper, the
results and verdicts of each profile (printed by `bnlib.report` from the
committed CSVs, the same sentences as the README) and every figure, each
linking to its notebook page and its CSV; then one page per executed notebook,
with navigation between them. Parameter cells are hidden. Built with
nbconvert's own template, offline: no download, no node, no theme fetch.
"""

from __future__ import annotations

import argparse
import html
import re
import shutil
import sys
from pathlib import Path

import mistune
import nbformat
from nbconvert import HTMLExporter
from nbconvert.preprocessors import TagRemovePreprocessor

from . import pages
from .files import atomic_write_text
from .params import NOTEBOOKS
from .paths import FIGURES_DIR, REPO_ROOT
from .refresh import committed_profiles

OUT = REPO_ROOT / "html"
PAPER = {
    "title": "Impact of Batch Normalization on Convolutional Network Representations",
    "authors": "Hermanus L. Potgieter, Coenraad Mouton, Marelie H. Davel",
    "year": "2025",
    "arxiv": "https://arxiv.org/abs/2501.14441",
    # Our summary of the paper's abstract; the abstract itself is at the arXiv link.
    "summary": ("BatchNorm speeds up training and improves accuracy, but why is debated. The paper looks at what "
                "BatchNorm does to the hidden representations of convolutional image classifiers: how sparse the "
                "post-ReLU activation vectors are, and how they cluster by class. Comparing models trained with and "
                "without BatchNorm, it reports that BatchNorm's effect on sparsity is not what drives "
                "generalisation, and that BatchNorm representations cluster more advantageously."),
}
STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:1100px;margin:0 auto;padding:0 1.5rem 4rem;
 color:#1d1d1f;line-height:1.5}
nav.bn{position:sticky;top:0;background:#fff;border-bottom:1px solid #ddd;padding:.5rem 0;z-index:10;font-size:.95rem}
nav.bn a{margin-right:1rem;text-decoration:none;color:#0b57d0}
h1{font-size:1.7rem;margin-top:1.5rem}h2{border-bottom:1px solid #eee;padding-bottom:.2rem;margin-top:2.5rem}
table{border-collapse:collapse;font-size:.85rem;margin:1rem 0}td,th{border:1px solid #ddd;padding:.25rem .5rem}
th{background:#f6f8fa}.fig{display:grid;grid-template-columns:repeat(auto-fill,minmax(320px,1fr));gap:1.2rem}
.fig figure{margin:0;border:1px solid #eee;padding:.5rem}.fig img{width:100%}.fig figcaption{font-size:.85rem}
.paper{background:#f6f8fa;padding:1rem 1.2rem;border-left:4px solid #0b57d0}
"""


def profiles() -> list[str]:
    """Every figures/<profile>/ folder that holds executed notebooks, in reading order."""
    return committed_profiles() if FIGURES_DIR.is_dir() else []


def pages_of(profile: str, figures_dir: Path = FIGURES_DIR) -> list[Path]:
    folder = figures_dir / profile
    return [folder / f"{n}.ipynb" for n in NOTEBOOKS if (folder / f"{n}.ipynb").is_file()]


def _nav(profile_pages: dict[str, list[Path]], here: tuple[str, Path] | None, depth: int) -> str:
    up = "../" * depth
    links = [f'<a href="{up}index.html">bnrep appendix</a>']
    if here is not None:
        profile, page = here
        siblings = profile_pages[profile]
        i = siblings.index(page)
        links.append(f"<strong>{html.escape(profile)}</strong>")
        if i > 0:
            links.append(f'<a href="{siblings[i - 1].stem}.html">← {html.escape(siblings[i - 1].stem)}</a>')
        if i + 1 < len(siblings):
            links.append(f'<a href="{siblings[i + 1].stem}.html">{html.escape(siblings[i + 1].stem)} →</a>')
    return f'<nav class="bn">{" ".join(links)}</nav>'


def render_notebook(path: Path, nav: str) -> str:
    """One executed notebook as a page: parameter cells removed, the navigation bar on top."""
    nb = nbformat.read(path, as_version=4)
    exporter = HTMLExporter(template_name="lab")
    exporter.register_preprocessor(TagRemovePreprocessor(remove_cell_tags={"parameters"}, enabled=True), enabled=True)
    body, _ = exporter.from_notebook_node(nb)
    body = body.replace("</head>", f"<style>{STYLE}</style></head>", 1)
    return re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + nav, body, count=1)


def _markdown(text: str) -> str:
    return mistune.create_markdown(escape=False, plugins=["table"])(text)


def profile_section(profile: str, figures_dir: Path, out: Path) -> str:
    """Results, verdicts and figures of one profile, for the landing page."""
    folder = figures_dir / profile
    parts = [f'<h2 id="{html.escape(profile)}">Profile <code>{html.escape(profile)}</code></h2>']
    try:  # the README's Results block for this profile, from the same function
        parts.append(_markdown(pages.profile_report(profile, figures_dir)))
    except SystemExit as exc:  # a profile with notebooks but no result CSVs yet
        parts.append(f"<p>{html.escape(str(exc))}</p>")
    figures = []
    for page in pages_of(profile, figures_dir):
        name = NOTEBOOKS[page.stem][0] if page.stem in NOTEBOOKS else None
        png = folder / f"{name}.png"
        if not png.is_file():
            continue
        for ext in ("png", "csv"):
            if (folder / f"{name}.{ext}").is_file():
                shutil.copyfile(folder / f"{name}.{ext}", out / profile / f"{name}.{ext}")
        figures.append(f'<figure><a href="{profile}/{page.stem}.html"><img src="{profile}/{name}.png" alt="{name}"></a>'
                       f'<figcaption><a href="{profile}/{page.stem}.html">{html.escape(page.stem)}</a> · '
                       f'<a href="{profile}/{name}.csv">{name}.csv</a></figcaption></figure>')
    parts.append(f'<div class="fig">{"".join(figures)}</div>')
    return "\n".join(parts)


def build(out: Path = OUT, figures_dir: Path = FIGURES_DIR, only: list[str] | None = None) -> Path:
    """Write the site into `out`; returns the landing page."""
    chosen = only or profiles()
    profile_pages = {p: pages_of(p, figures_dir) for p in chosen}
    for profile, notebooks in profile_pages.items():
        (out / profile).mkdir(parents=True, exist_ok=True)
        for page in notebooks:
            atomic_write_text(out / profile / f"{page.stem}.html",
                              render_notebook(page, _nav(profile_pages, (profile, page), 1)))

    toc = " · ".join(f'<a href="#{p}">{html.escape(p)}</a>' for p in chosen)
    grid = _markdown(pages.claims_grid(chosen, lambda p: f"#{p}", figures_dir))
    sections = "\n".join(profile_section(p, figures_dir, out) for p in chosen)
    index = (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>bnrep: {html.escape(PAPER['title'])}"
             f"</title><style>{STYLE}</style></head><body>{_nav(profile_pages, None, 0)}"
             f"<h1>{html.escape(PAPER['title'])}</h1><div class='paper'><p><strong>{html.escape(PAPER['authors'])}"
             f"</strong> ({PAPER['year']}), <a href='{PAPER['arxiv']}'>arXiv:2501.14441</a></p>"
             f"<p>{html.escape(PAPER['summary'])}</p></div>"
             f"<h2 id='claims'>The claims at a glance</h2><p>The verdict on each of the paper's claims per profile "
             f"(Welch's t-test over seeds, Holm-corrected over layers, p &lt; 0.05), computed from the committed CSVs; "
             f"the ablation column says which ingredient of BN each of BN's effects needs.</p>{grid}"
             f"<p>This appendix re-runs the paper's experiments with <code>bnrep</code>. Each profile below gives "
             f"accuracy, the verdict on each claim (computed from the committed CSVs by "
             f"<code>bnlib.report</code>) and its figures; a figure opens its executed notebook.</p>"
             f"<p>Profiles: {toc}</p>{sections}</body></html>")
    atomic_write_text(out / "index.html", index)
    return out / "index.html"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bnlib.appendix", description=__doc__.splitlines()[0])
    ap.add_argument("out", nargs="?", type=Path, default=OUT, help=f"folder to write (default: {OUT.name}/)")
    out = ap.parse_args(argv).out
    index = build(out)
    n = sum(1 for _ in out.rglob("*.html")) - 1
    print(f"wrote {index} and {n} notebook pages; open it in a browser")
    return 0


if __name__ == "__main__":
    sys.exit(main())
