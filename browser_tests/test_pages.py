"""Every page of the built site, opened in Chromium without network: it loads cleanly and shows what it should."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from functools import cache
from urllib.parse import urldefrag

from browser_tests.pages import anchors

# The plain-text stand-in of a widget whose state was not saved: "VBox(children=(...", "IntSlider(value=3, ...".
WIDGET_REPR = re.compile(r"\b[A-Z][A-Za-z]*\((?:children=\(|value=)")


def problems(items: list[str]) -> str:
    """One problem a line, for a readable assertion message."""
    return "\n  " + "\n  ".join(items)


def test_no_javascript_errors(visit, page_path):
    page = visit(page_path)
    errors = [f"uncaught: {e}" for e in page.page_errors] + [f"console: {e}" for e in page.console_errors]
    assert not errors, f"{page_path} logged errors:{problems(errors)}"


def test_works_offline(visit, page_path):
    page = visit(page_path)
    assert not page.external_requests, f"{page_path} asked for files from other hosts:{problems(page.external_requests)}"


def test_every_request_succeeds(visit, page_path):
    page = visit(page_path)
    assert not page.failed_requests, f"{page_path} has failed requests:{problems(page.failed_requests)}"


@cache
def _fetch(url: str) -> tuple[int, str]:
    """Status and text of a URL on the local server (cached: many pages link to the same targets)."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            body = response.read()
            return response.status, body.decode("utf-8", "replace") if url.endswith(".html") else ""
    except urllib.error.HTTPError as error:
        return error.code, ""


def test_internal_links_resolve(visit, base_url, page_path):
    page = visit(page_path)
    broken = []
    for link in sorted(set(page.report["links"])):
        if not link.startswith(base_url):
            continue  # external links (repository, launch buttons) are not followed offline
        url, fragment = urldefrag(link)
        status, html = _fetch(url.split("?")[0])
        if status != 200:
            broken.append(f"{link}: HTTP {status}")
        elif fragment and url.endswith(".html") and fragment not in anchors(html):
            broken.append(f"{link}: no element with id '{fragment}'")
    assert not broken, f"{page_path} has broken links:{problems(broken)}"


def test_math_is_typeset(visit, page_path):
    report = visit(page_path).report
    if report["mathElements"]:
        assert report["mathjaxVersion"], f"{page_path} has math but MathJax did not load"
        assert report["mathjaxVersion"].startswith("3.")
    assert not report["untypesetMath"], f"{page_path} has math MathJax left alone:{problems(report['untypesetMath'])}"
    assert not report["mathErrors"], f"{page_path} has TeX errors:{problems(report['mathErrors'])}"
    assert not report["rawTex"], f"{page_path} shows raw TeX (a formula not marked up as math?):{problems(report['rawTex'])}"


def test_images_load(visit, page_path):
    broken = visit(page_path).report["brokenImages"]
    assert not broken, f"{page_path} has images that did not load:{problems(broken)}"


def test_widgets_render(visit, page_path):
    report = visit(page_path).report
    assert not report["unrenderedWidgets"], (
        f"{page_path}: {len(report['unrenderedWidgets'])} of {report['widgetViews']} widgets did not render "
        f"(was the widget state saved when the notebook ran?):{problems(report['unrenderedWidgets'])}"
    )
    assert "application/vnd.jupyter.widget-view+json" not in report["outputText"]
    fallbacks = WIDGET_REPR.findall(report["outputText"])
    assert not fallbacks, f"{page_path} shows widgets as plain text: {fallbacks}"


def test_plotly_figures_draw(visit, page_path):
    report = visit(page_path).report
    assert not report["undrawnPlots"], f"{page_path}: plotly figures not drawn:{problems(report['undrawnPlots'])}"


def test_fits_a_phone(visit, page_path):
    page = visit(page_path, "phone")
    report = page.report
    assert report["scrollWidth"] <= report["innerWidth"] + 1, (
        f"{page_path} is {report['scrollWidth']} px wide on a {report['innerWidth']} px phone screen "
        f"(see {page.screenshot})"
    )
    assert page.screenshot is not None and page.screenshot.stat().st_size > 0
