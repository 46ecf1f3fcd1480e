"""Every page of the built site, opened in Chromium without network: it loads cleanly and shows what it should."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from functools import cache
from urllib.parse import urldefrag

import pytest

from browser_tests.pages import MODES, anchors, contrast

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


# --- Accessibility, colour modes, code width -------------------------------------------------------------------

DEVICES = ["desktop", "phone"]
# axe violations the site still has, each with the reason it is accepted. Only minor or moderate ones may be here;
# a serious or critical violation always fails.
ACCEPTED_AXE = {
    "empty-table-header": (
        "minor",
        "pandas leaves the corner cell above a table's index empty; the index column is still read as row headers",
    ),
}


def _violations(violations: list[dict]) -> list[str]:
    return [f"{v['id']} ({v['impact']}, {v['count']} elements: {v['help']}): {v['nodes']}" for v in violations]


@pytest.mark.parametrize("device", DEVICES)
def test_accessible(visit, page_path, device):
    page = visit(page_path, device)
    found = [dict(v, mode=mode) for mode in MODES for v in page.axe[mode]]
    severe = [v for v in found if v["impact"] in ("serious", "critical")]
    unexplained = [v for v in found if v["impact"] not in ("serious", "critical") and v["id"] not in ACCEPTED_AXE]
    assert not severe, f"{page_path} ({device}) has serious or critical axe violations:{problems(_violations(severe))}"
    assert not unexplained, f"{page_path} ({device}) has axe violations not in ACCEPTED_AXE:{problems(_violations(unexplained))}"


def test_accepted_axe_violations_are_minor():
    assert all(impact in ("minor", "moderate") for impact, _ in ACCEPTED_AXE.values())


@pytest.mark.parametrize("device", DEVICES)
def test_theme_switch_changes_the_page(visit, page_path, device):
    page = visit(page_path, device)
    assert page.mode_reached == "dark", f"{page_path}: the theme switch did not reach dark mode: {page.mode_reached}"
    light, dark = (tuple(int(c) for c in re.findall(r"\d+", page.background[mode])[:3]) for mode in MODES)
    assert contrast(light, dark) > 10, f"{page_path}: the background hardly changed: {light} -> {dark}"
    for mode in MODES:
        assert page.screenshots[mode].stat().st_size > 0


@pytest.mark.parametrize("device", DEVICES)
def test_figures_stay_visible_in_dark_mode(visit, page_path, device):
    """Sample each figure's pixels in both modes: in dark mode its marks and text must stand out as much as in light."""
    page = visit(page_path, device)
    light, dark = page.figures["light"], page.figures["dark"]
    assert [f.id for f in light] == [f.id for f in dark]
    faded = [
        f"{before.id}: {before.ink:.1%} of its pixels stand out in light mode, {after.ink:.1%} in dark mode "
        f"(dominant colour {before.dominant} -> {after.dominant})"
        for before, after in zip(light, dark)
        if after.ink < 0.5 * before.ink or after.ink < 0.002
    ]
    assert not faded, f"{page_path} ({device}): figures fade in dark mode (see {page.screenshots['dark']}):{problems(faded)}"


def test_images_have_alt_text(visit, page_path):
    missing = visit(page_path).report["imagesWithoutAlt"]
    assert not missing, (
        f"{page_path} has images without alt text (add cell metadata "
        f'{{"mystnb": {{"image": {{"alt": "what the figure shows"}}}}}}):{problems(missing)}'
    )


def test_plots_and_widgets_reachable_by_keyboard(visit, page_path):
    unreachable = visit(page_path).report["unreachable"]
    assert not unreachable, f"{page_path}: Tab cannot reach:{problems(unreachable)}"


def test_code_does_not_scroll_sideways(visit, page_path):
    sideways = visit(page_path).report["sideways"]
    assert not sideways, f"{page_path}: code cells or outputs scroll sideways at 1280 px:{problems(sideways)}"
