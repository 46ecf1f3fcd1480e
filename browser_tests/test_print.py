"""The printed book (make pdf): the built site printed to one PDF by scripts/print_book.py, read back with pypdf.

The PDF is made here from the already built _build/html into _build/pdf/book.pdf, the file `make pdf` writes. To
save loading every page twice, each page of the toc is printed at the end of its desktop visit (pages.py) with the
function `make pdf` uses after loading a page, and the pages are joined by the same function as in `make pdf`.
"""

from __future__ import annotations

import re
import unicodedata

import pytest
from pypdf import PdfReader

from browser_tests.pages import SITE, title_and_lead
from scripts.print_book import OUT, assemble, toc_documents

DOCUMENTS = toc_documents()


def _plain(text: str) -> str:
    """Text with its whitespace collapsed, ligatures undone (fi) and quotes and hyphens made plain, for comparing."""
    text = unicodedata.normalize("NFKC", text)
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u2010", "-").replace("\u00ad", "")
    return " ".join(text.split())


@pytest.fixture(scope="module")
def printed(browser, visit):
    """The chapters as printed (title, first page), the PDF, and the text of each of its pages."""
    missing = [path for path in DOCUMENTS if not (SITE / path).is_file()]
    assert not missing, f"pages of _toc.yml missing from {SITE} (an old build? run 'make book'): {missing}"
    parts = [(path, *visit(path).printed) for path in DOCUMENTS]
    context = browser.new_context()
    try:
        chapters = assemble(context, parts, OUT)
    finally:
        context.close()
    reader = PdfReader(OUT)
    # pypdf reads text slowly (about 0.1 s a page): only each chapter's first two pages and the last page.
    wanted = {len(reader.pages) - 1} | {c.first_page - 1 + k for c in chapters for k in (0, 1)}
    pages = {n: _plain(reader.pages[n].extract_text() or "") for n in sorted(wanted) if n < len(reader.pages)}
    return chapters, reader, pages


def test_every_page_of_the_toc_is_printed_in_order(printed):
    chapters, reader, _ = printed
    assert [c.path for c in chapters] == DOCUMENTS
    starts = [c.first_page for c in chapters]
    assert starts[0] == 1 and all(a < b for a, b in zip(starts, starts[1:])), f"documents do not follow each other: {starts}"
    # Each chapter fills several pages; a page that failed to render would print as one nearly blank sheet.
    assert len(reader.pages) >= 3 * sum(1 for d in DOCUMENTS if re.search(r"/\d\d-", d)), len(reader.pages)


def test_text_is_searchable_and_has_every_title(printed):
    chapters, _, pages = printed
    for chapter in chapters:
        title = _plain(title_and_lead(chapter.path)[0])
        assert title == _plain(chapter.title)
        assert title in pages[chapter.first_page - 1], f"'{title}' is not on page {chapter.first_page}"
        opening = re.sub(r"\s", "", pages[chapter.first_page - 1] + pages.get(chapter.first_page, ""))
        lead = _plain(title_and_lead(chapter.path)[1])[:60]
        assert re.sub(r"\s", "", lead) in opening, f"the first words of {chapter.path} ('{lead}') are not on its first pages"


def test_pages_are_numbered(printed):
    chapters, reader, pages = printed
    total = len(reader.pages)
    for number in (1, chapters[-1].first_page, total):
        assert f"page {number} of {total}" in pages[number - 1], f"page {number} has no number: {pages[number - 1][-200:]}"


def _images(resources, seen: set[int]) -> int:
    """The raster images a page's resources draw, counting those inside form XObjects (each image once)."""
    found = 0
    for ref in (resources or {}).get("/XObject", {}).values():
        xobject = ref.get_object()
        if id(xobject) not in seen:
            seen.add(id(xobject))
            if xobject.get("/Subtype") == "/Image":
                found += 1
            elif xobject.get("/Subtype") == "/Form":
                found += _images(xobject.get("/Resources"), seen)
    return found


def test_math_is_typeset_and_figures_are_in(printed):
    _, reader, pages = printed
    raw_tex = [n + 1 for n, text in pages.items() if re.search(r"\$\$|\\begin\{|\\frac|\\mathbf", text)]
    assert not raw_tex, f"pages with raw TeX (MathJax did not typeset before printing): {raw_tex}"
    site_images = sum(
        len(re.findall(r'<img[^>]+src="[^"]*_images/', (SITE / d).read_text(encoding="utf-8"))) for d in DOCUMENTS
    )
    seen: set[int] = set()
    pdf_images = sum(_images(page.get("/Resources"), seen) for page in reader.pages)
    assert pdf_images >= site_images > 0, f"{pdf_images} images in the PDF, {site_images} figures on the site"


def test_outline_lists_the_chapters(printed):
    chapters, reader, _ = printed
    assert [item.title for item in reader.outline] == [c.title for c in chapters]
