"""What the browser tests look at: the pages of the built site, and one visit to a page in Chromium."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Request, Response, Route

ROOT = Path(__file__).resolve().parent.parent
SITE = Path(os.environ.get("BOOK_HTML", ROOT / "_build" / "html")).resolve()
SCREENSHOTS = SITE.parent / "screenshots"
VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
# Folders of the build that hold assets and notebook sources, not pages.
NOT_PAGES = {"_static", "_sources", "_images"}

# Waits (in the page) until MathJax has typeset, the widgets have rendered and the plotly figures are drawn, or
# 15 s have passed; then reports what is on the page. Text inside code, scripts and typeset math is not searched for
# raw TeX delimiters.
INSPECT_JS = r"""
async () => {
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const all = (selector, root = document) => Array.from(root.querySelectorAll(selector));
  const views = () => all('script[type="application/vnd.jupyter.widget-view+json"]');
  const isRendered = (view) => {
    const area = view.previousElementSibling;
    return !!area && area.classList.contains("widget-subarea") && area.childElementCount > 0
      && area.getBoundingClientRect().height > 0;
  };
  const plots = () => all(".plotly-graph-div");
  const isDrawn = (plot) => plot.querySelector(".main-svg") !== null;
  all("img").forEach((img) => { img.loading = "eager"; });
  const imagesDone = () => all("img").every((img) => img.complete);
  const mathjax = window.MathJax;
  if (mathjax && mathjax.startup && mathjax.startup.promise) {
    await Promise.race([mathjax.startup.promise, sleep(15000)]);
  }
  for (let i = 0; i < 150; i++) {
    if (views().every(isRendered) && plots().every(isDrawn) && imagesDone()) break;
    await sleep(100);
  }
  const skip = new Set(["PRE", "CODE", "SCRIPT", "STYLE", "TEXTAREA", "MJX-CONTAINER"]);
  const rawTex = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT, {
    acceptNode: (node) => {
      for (let el = node.parentElement; el; el = el.parentElement) {
        if (skip.has(el.tagName) || el.classList.contains("highlight")) return NodeFilter.FILTER_REJECT;
      }
      return NodeFilter.FILTER_ACCEPT;
    },
  });
  while (walker.nextNode()) {
    const text = walker.currentNode.textContent;
    if (/\$\$|\\\(|\\\)|\\\[|\\\]|\\begin\{/.test(text)) rawTex.push(text.trim().slice(0, 120));
  }
  return {
    links: all("a[href]").map((a) => a.href),
    mathElements: all(".math").length,
    untypesetMath: all(".math").filter((el) => !el.querySelector("mjx-container"))
      .map((el) => el.textContent.trim().slice(0, 80)),
    mathjaxVersion: (mathjax && mathjax.version) || null,
    mathErrors: all("mjx-merror, [data-mjx-error]").map((el) => el.getAttribute("data-mjx-error") || el.textContent),
    rawTex: rawTex,
    brokenImages: all("img").filter((img) => !(img.complete && img.naturalWidth > 0))
      .map((img) => img.currentSrc || img.src),
    widgetViews: views().length,
    unrenderedWidgets: views().filter((view) => !isRendered(view)).map((view) => view.textContent.trim().slice(0, 120)),
    plots: plots().length,
    undrawnPlots: plots().filter((plot) => !isDrawn(plot)).map((plot) => plot.id),
    outputText: all(".cell_output").map((el) => el.innerText).join("\n"),
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
  };
}
"""


@dataclass
class Visit:
    """What one page showed in one viewport: problems seen while loading it, and what `INSPECT_JS` reports."""

    path: str
    device: str
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    external_requests: list[str] = field(default_factory=list)
    report: dict = field(default_factory=dict)
    screenshot: Path | None = None


def redirect_target(html: str) -> str | None:
    """The target of a page that only redirects (`<meta http-equiv="Refresh" ...>`), else None."""
    match = re.search(r'<meta http-equiv="Refresh" content="\d+;\s*url=([^"]+)"', html, re.IGNORECASE)
    return match.group(1) if match else None


def all_pages() -> list[str]:
    """Every .html file of the site, as a path relative to its root."""
    pages = (p.relative_to(SITE).as_posix() for p in SITE.rglob("*.html"))
    return sorted(p for p in pages if p.split("/")[0] not in NOT_PAGES)


def content_pages() -> list[str]:
    """The pages a reader sees: all but the ones that only redirect elsewhere."""
    return [p for p in all_pages() if redirect_target((SITE / p).read_text(encoding="utf-8")) is None]


class _Anchors(HTMLParser):
    """Collects the `id` and `name` attributes of an HTML page: the targets a `#fragment` can point to."""

    def __init__(self) -> None:
        super().__init__()
        self.anchors: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for key, value in attrs:
            if key in ("id", "name") and value:
                self.anchors.add(value)


def anchors(html: str) -> set[str]:
    """The fragment targets of a page."""
    parser = _Anchors()
    parser.feed(html)
    return parser.anchors


def screenshot_path(path: str, device: str) -> Path:
    """Where the screenshot of a page in a viewport goes: _build/screenshots/<device>/<page>.png."""
    return SCREENSHOTS / device / (path.removesuffix(".html").replace("/", "__") + ".png")


def new_context(browser: Browser, device: str) -> BrowserContext:
    """A browser context (its own profile and cache) with the viewport of `device`."""
    phone = device == "phone"
    return browser.new_context(viewport=VIEWPORTS[device], is_mobile=phone, has_touch=phone, service_workers="block")


def visit_page(context: BrowserContext, base_url: str, path: str, device: str) -> Visit:
    """Open `path` in a page cut off from every host but `base_url`; inspect it; screenshot it."""
    visit = Visit(path, device)

    def block(route: Route) -> None:
        visit.external_requests.append(route.request.url)
        route.abort("blockedbyclient")

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            visit.console_errors.append(f"{message.text} ({message.location.get('url', '')})")

    def on_failed(request: Request) -> None:
        if request.url.startswith(base_url):
            visit.failed_requests.append(f"{request.url}: {request.failure}")

    def on_response(response: Response) -> None:
        if response.status >= 400:
            visit.failed_requests.append(f"{response.url}: HTTP {response.status}")

    page = context.new_page()
    # Matched inside the browser, so requests to the local server do not pay a round trip to Python.
    page.route(re.compile("^(?!" + re.escape(base_url) + ")"), block)
    page.on("console", on_console)
    page.on("pageerror", lambda error: visit.page_errors.append(str(error)))
    page.on("requestfailed", on_failed)
    page.on("response", on_response)
    try:
        page.goto(base_url + path, wait_until="load")
        visit.report = page.evaluate(INSPECT_JS)
        page.wait_for_load_state("networkidle")
        visit.screenshot = screenshot_path(path, device)
        visit.screenshot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=visit.screenshot, full_page=True)
    finally:
        page.close()
    return visit
