"""The site as a whole: its search, its redirects, its static files and the notebook outputs it was built from."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import Browser

from browser_tests.pages import SITE, all_pages, chapter_pages, content_pages, redirect_target, title_and_lead

CHAPTER_4 = "book/04-task-specific-embeddings.html"
# What myst-nb can show in a web page (its HTML render priority); other mime types are dropped silently.
SHOWABLE = {
    "application/vnd.jupyter.widget-view+json", "application/javascript", "text/html", "image/svg+xml",
    "image/png", "image/gif", "image/jpeg", "text/markdown", "text/latex", "text/plain",
}
# A script, stylesheet, font or preload that points to another host.
EXTERNAL_ASSET = re.compile(
    r"""<script[^>]*\ssrc="(?:https?:)?//[^"]+"|<link[^>]*\shref="(?:https?:)?//[^"]+"[^>]*>|url\(\s*['"]?(?:https?:)?//""",
    re.IGNORECASE,
)


def test_site_has_the_pages_of_the_toc():
    pages = set(content_pages())
    for page in ["book/index.html", CHAPTER_4, "book/labs.html", "book/bibliography.html", "search.html"]:
        assert page in pages, f"{page} is missing from the build"


def test_redirects_point_to_pages():
    for page in all_pages():
        target = redirect_target((SITE / page).read_text(encoding="utf-8"))
        if target is not None:
            assert (SITE / page).parent.joinpath(target).is_file(), f"{page} redirects to missing {target}"


def test_no_page_or_stylesheet_loads_from_another_host():
    files = [SITE / p for p in all_pages()] + sorted((SITE / "_static").rglob("*.css"))
    offenders = {}
    for file in files:
        found = [m.group(0)[:150] for m in EXTERNAL_ASSET.finditer(file.read_text(encoding="utf-8", errors="replace"))]
        found = [f for f in found if 'rel="canonical"' not in f]
        if found:
            offenders[str(file.relative_to(SITE))] = found
    assert not offenders, f"external scripts, stylesheets or fonts: {offenders}"


@pytest.fixture(scope="module")
def search(browser: Browser, base_url):
    """`search(word)`: the pages the site's own (offline) search lists for `word`."""
    context = browser.new_context()
    context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(base_url) else route.abort())
    page = context.new_page()

    def hits(word: str) -> list[str]:
        page.goto(base_url + "search.html?q=" + word)
        page.wait_for_function(
            "() => /Search finished/.test(document.querySelector('#search-results')?.innerText || '')",
            timeout=20000,
        )
        return page.eval_on_selector_all("#search-results li a", "links => links.map(a => a.href)")

    yield hits
    context.close()


def test_search_finds_the_cosine_chapter(search):
    hits = search("cosine")
    assert any(CHAPTER_4 in hit for hit in hits), f"searching 'cosine' did not list {CHAPTER_4}: {hits}"


def lead_word(chapter: str) -> str:
    """A word from the chapter's text: the longest plain word of its first paragraph."""
    words = re.findall(r"\b[a-z]{6,}\b", title_and_lead(chapter)[1])
    assert words, f"{chapter} has no first paragraph to take a word from"
    return max(words, key=len)


@pytest.mark.parametrize("chapter", chapter_pages())
def test_search_finds_a_word_from_each_chapter(search, chapter):
    word = lead_word(chapter)
    hits = search(word)
    assert any(chapter in hit for hit in hits), f"searching '{word}' (from its first paragraph) did not list {chapter}: {hits}"


def executed_notebooks():
    return sorted((SITE.parent / "jupyter_execute").rglob("*.ipynb"))


@pytest.mark.parametrize("notebook", executed_notebooks(), ids=lambda p: p.stem)
def test_every_output_can_be_shown(notebook):
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    lost, blank = [], []
    for number, cell in enumerate(cells):
        outputs = cell.get("outputs", [])
        for output in outputs:
            if output["output_type"] in ("display_data", "execute_result") and not SHOWABLE & set(output["data"]):
                lost.append(f"cell {number}: only {sorted(output['data'])}")
        images = [o for o in outputs if {"image/png", "image/svg+xml"} & set(o.get("data", {}))]
        if "plt.show()" in "".join(cell.get("source", "")) and not images:
            blank.append(f"cell {number}")
    assert not lost, f"{notebook.name}: outputs the website cannot show:\n  " + "\n  ".join(lost)
    assert not blank, (
        f"{notebook.name}: plt.show() showed no figure (was MPLBACKEND set to a non-inline backend for the "
        f"kernel?) in:\n  " + "\n  ".join(blank)
    )
