"""Print the built website (_build/html) to one PDF, in the order of _toc.yml, with Debian's Chromium, offline.

`make pdf` runs it after `make book`. Each page is printed as the browser shows it once MathJax has typeset and the
figures and widgets have drawn (widgets print in the state the notebook saved); the pages are joined with pypdf,
which adds one bookmark per page of the toc and the page numbers ("title · page n of N") at the foot of each page.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from dataclasses import dataclass
from html import escape
from pathlib import Path

import yaml
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright
from pypdf import PdfReader, PdfWriter

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: browser_tests is a package of the repository

from browser_tests.chromium import WAIT_FOR_RENDERING_JS, launch, serve  # noqa: E402

SITE = ROOT / "_build" / "html"
OUT = ROOT / "_build" / "pdf" / "book.pdf"
# A4, with room at the foot for the page number. The viewport is as wide as the printed column (180 mm at 96 px
# per inch), so that plotly figures and widgets lay themselves out for the paper, not for a wider screen.
MARGIN = {"top": "14mm", "bottom": "16mm", "left": "15mm", "right": "15mm"}
PRINT_VIEWPORT = {"width": 680, "height": 960}
TITLE_JS = "() => (document.querySelector('article h1') || document.querySelector('h1')).innerText.replace(/#$/, '').trim()"

FOOTERS_HTML = """<!DOCTYPE html><html><head><meta charset="utf-8"><style>
@page {{ size: A4; margin: 0; }}
body {{ margin: 0; }}
.sheet {{ height: 296mm; position: relative; break-after: page; overflow: hidden; }}
.foot {{ position: absolute; bottom: 6mm; left: 15mm; right: 15mm; text-align: center;
        font: 8.5pt sans-serif; color: #444; }}
</style></head><body>{sheets}</body></html>"""


@dataclass
class Chapter:
    """One document of the toc in the printed book: its title and its first page (counted from 1)."""

    path: str
    title: str
    first_page: int


def toc_documents(toc_file: Path = ROOT / "_toc.yml") -> list[str]:
    """The documents of a Jupyter Book toc in reading order, as paths of their pages ('book/index.html')."""
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key in ("root", "file"):
                if key in node:
                    found.append(re.sub(r"\.(md|ipynb|rst)$", "", str(node[key])) + ".html")
            for key in ("parts", "chapters", "sections"):
                for child in node.get(key, []):
                    walk(child)

    walk(yaml.safe_load(toc_file.read_text(encoding="utf-8")))
    return found


def print_context(browser: Browser, base_url: str) -> BrowserContext:
    """A light-mode browser context that can reach nothing but `base_url`."""
    context = browser.new_context(viewport=PRINT_VIEWPORT, color_scheme="light", service_workers="block")
    context.add_init_script("try { localStorage.setItem('mode', 'light'); localStorage.setItem('theme', 'light'); } catch (e) {}")
    context.route(re.compile("^(?!" + re.escape(base_url) + ")"), lambda route: route.abort("blockedbyclient"))
    return context


# Lays plotly figures out again for the new width (they follow the window's size, not the paper's) and waits.
RELAYOUT_JS = """
async () => {
  const plots = Array.from(document.querySelectorAll(".plotly-graph-div"));
  if (window.Plotly) await Promise.all(plots.map((plot) => window.Plotly.Plots.resize(plot)));
  await new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
}
"""


def print_loaded_page(page: Page, out: Path) -> str:
    """Print a page that has loaded and drawn everything (in light mode) to `out`; returns its title.

    The page is narrowed to the paper's column first, so that figures and widgets lay themselves out for it.
    """
    page.set_viewport_size(PRINT_VIEWPORT)
    page.emulate_media(media="print")
    page.evaluate(RELAYOUT_JS)
    out.parent.mkdir(parents=True, exist_ok=True)
    page.pdf(path=out, format="A4", margin=MARGIN, print_background=True, tagged=True)
    return page.evaluate(TITLE_JS)


def print_page(context: BrowserContext, url: str, out: Path) -> str:
    """Open one page of the site, wait until everything on it has drawn, and print it to `out`; returns its title."""
    page = context.new_page()
    try:
        page.goto(url, wait_until="load")
        page.evaluate(WAIT_FOR_RENDERING_JS)
        return print_loaded_page(page, out)
    finally:
        page.close()


def print_footers(context: BrowserContext, footers: list[str], out: Path) -> None:
    """A PDF of blank A4 pages that carry only the given footers, one per page, to lay over the book's pages."""
    sheets = "".join(f'<div class="sheet"><div class="foot">{escape(text)}</div></div>' for text in footers)
    page = context.new_page()
    try:
        page.set_content(FOOTERS_HTML.format(sheets=sheets))
        page.pdf(path=out, prefer_css_page_size=True, print_background=False)
    finally:
        page.close()


def assemble(context: BrowserContext, parts: list[tuple[str, str, Path]], out: Path) -> list[Chapter]:
    """Join printed pages (path, title, PDF) into the book `out`: numbered pages, one bookmark per part."""
    writer = PdfWriter()
    chapters: list[Chapter] = []
    for path, title, pdf in parts:
        chapters.append(Chapter(path, title, len(writer.pages) + 1))
        writer.append(PdfReader(pdf))
    total = len(writer.pages)
    footers = []
    for chapter, following in zip(chapters, chapters[1:] + [None]):
        last = following.first_page - 1 if following else total
        footers += [f"{chapter.title} · page {n} of {total}" for n in range(chapter.first_page, last + 1)]
    with tempfile.TemporaryDirectory() as scratch:
        numbers = Path(scratch) / "footers.pdf"
        print_footers(context, footers, numbers)
        for page, footer in zip(writer.pages, PdfReader(numbers).pages, strict=True):
            page.merge_page(footer)
    for chapter in chapters:
        writer.add_outline_item(title=chapter.title, page_number=chapter.first_page - 1)
    writer.add_metadata({"/Title": chapters[0].title if chapters else "", "/Creator": "scripts/print_book.py"})
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("wb") as file:
        writer.write(file)
    return chapters


def print_book(browser: Browser, base_url: str, documents: list[str], out: Path) -> list[Chapter]:
    """Print `documents` (paths below `base_url`) into the one PDF `out`; returns where each begins."""
    context = print_context(browser, base_url)
    try:
        with tempfile.TemporaryDirectory() as scratch:
            parts = []
            for number, path in enumerate(documents):
                pdf = Path(scratch) / f"{number:03d}.pdf"
                parts.append((path, print_page(context, base_url + path, pdf), pdf))
            return assemble(context, parts, out)
    finally:
        context.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", type=Path, default=SITE, help=f"the built website (default: {SITE.relative_to(ROOT)})")
    parser.add_argument("--out", type=Path, default=OUT, help=f"the PDF to write (default: {OUT.relative_to(ROOT)})")
    args = parser.parse_args()
    if not (args.site / "index.html").is_file():
        sys.exit(f"error: no built website in {args.site}: run 'make book' first")
    documents = toc_documents()
    missing = [d for d in documents if not (args.site / d).is_file()]
    if missing:
        sys.exit(f"error: pages of _toc.yml missing from {args.site}: {missing}; run 'make book'")
    with sync_playwright() as playwright, serve(args.site) as base_url:
        browser = launch(playwright)
        try:
            chapters = print_book(browser, base_url, documents, args.out)
        finally:
            browser.close()
    pages = len(PdfReader(args.out).pages)
    print(f"{args.out}: {pages} pages", *(f"  p. {c.first_page:>3}  {c.title}" for c in chapters), sep="\n")


if __name__ == "__main__":
    main()
