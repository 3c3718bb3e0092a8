"""Render the executed notebooks to HTML with an index page: `python -m bnlib.appendix`.

Writes `html/index.html` plus one page per executed notebook: the default
profile's from `notebooks/`, every other profile's from `figures/<profile>/`.
"""

from __future__ import annotations

import html
import sys
from pathlib import Path

from .io import atomic_write_text
from .paths import FIGURES_DIR, REPO_ROOT
from .runner import NOTEBOOK_DIR, NOTEBOOKS

OUT = REPO_ROOT / "html"


def executed_notebooks() -> dict[str, list[Path]]:
    found = {"quick (default)": [NOTEBOOK_DIR / f"{n}.ipynb" for n in NOTEBOOKS if (NOTEBOOK_DIR / f"{n}.ipynb").is_file()]}
    for folder in sorted(p for p in FIGURES_DIR.iterdir() if p.is_dir()) if FIGURES_DIR.is_dir() else []:
        pages = [folder / f"{n}.ipynb" for n in NOTEBOOKS if (folder / f"{n}.ipynb").is_file()]
        if pages:
            found[folder.name] = pages
    return found


def main() -> int:
    import nbformat
    from nbconvert import HTMLExporter

    exporter = HTMLExporter()
    sections = []
    for profile, pages in executed_notebooks().items():
        items = []
        for page in pages:
            body, _ = exporter.from_notebook_node(nbformat.read(page, as_version=4))
            name = f"{profile.split()[0]}-{page.stem}.html"
            atomic_write_text(OUT / name, body)
            items.append(f'<li><a href="{name}">{html.escape(page.stem)}</a></li>')
        sections.append(f"<h2>Profile: {html.escape(profile)}</h2><ul>{''.join(items)}</ul>")
    index = ("<!doctype html><meta charset='utf-8'><title>bnrep appendix</title>"
             "<h1>bnrep: executed notebooks</h1><p>Impact of Batch Normalization on Convolutional Network "
             "Representations (Potgieter, Mouton, Davel, 2025), reproduced.</p>" + "".join(sections))
    atomic_write_text(OUT / "index.html", index)
    print(f"wrote {OUT / 'index.html'} ({sum(len(p) for p in executed_notebooks().values())} notebooks)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
