"""What the browser tests look at: the pages of the built site, and one visit to a page in Chromium."""

from __future__ import annotations

import functools
import io
import json
import os
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
from PIL import Image
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Request, Response, Route

from browser_tests.chromium import WAIT_FOR_RENDERING_JS
from scripts.print_book import print_loaded_page, toc_documents

ROOT = Path(__file__).resolve().parent.parent
MODES = ("light", "dark")
SITE = Path(os.environ.get("BOOK_HTML", ROOT / "_build" / "html")).resolve()
SCREENSHOTS = SITE.parent / "screenshots"
# Each page of the toc, printed at the end of its desktop visit (browser_tests/test_print.py joins them into a book).
PRINTED = SITE.parent / "pdf" / "pages"
VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
# Folders of the build that hold assets and notebook sources, not pages.
NOT_PAGES = {"_static", "_sources", "_images"}

# The figures of a page: images and plotly figures big enough to be read.
FIGURES = "article img, .plotly-graph-div"
# What a keyboard must reach in a widget: its controls.
WIDGET_CONTROLS = "input, select, textarea, button, [role=slider]"

# Waits (in the page) until everything has drawn (WAIT_FOR_RENDERING_JS), then reports what is on the page. Text
# inside code, scripts and typeset math is not searched for raw TeX delimiters.
INSPECT_JS = r"""
async () => {
  await (%(wait)s)();
  const all = (selector, root = document) => Array.from(root.querySelectorAll(selector));
  const views = () => all('script[type="application/vnd.jupyter.widget-view+json"]');
  const isRendered = (view) => {
    const area = view.previousElementSibling;
    return !!area && area.classList.contains("widget-subarea") && area.childElementCount > 0
      && area.getBoundingClientRect().height > 0;
  };
  const plots = () => all(".plotly-graph-div");
  const isDrawn = (plot) => plot.querySelector(".main-svg") !== null;
  const mathjax = window.MathJax;
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
  // Keyboard: an element is reachable when Tab can land on it: focusable, enabled and shown.
  const shown = (el) => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== "hidden";
  const tabbable = (el) => el.tabIndex >= 0 && !el.disabled && shown(el) && !el.closest("[inert]");
  const describe = (el) => `${el.tagName.toLowerCase()}${el.id ? "#" + el.id : ""}.${el.className}`.slice(0, 100);
  const unreachable = [];
  plots().filter((plot) => !tabbable(plot)).forEach((plot) => unreachable.push(`plotly figure ${plot.id}`));
  all(".widget-subarea").forEach((area) => {
    all(%(controls)s, area).filter(shown).filter((el) => !tabbable(el))
      .forEach((el) => unreachable.push(`widget control ${describe(el)}`));
  });
  // Sideways scrolling inside a code cell: any element of a cell wider than its box that scrolls or clips.
  const sideways = [];
  const boxes = ":scope, div.highlight, pre, .cell_output, .cell_output > *, .output, .text_html, .widget-subarea, table";
  all(".cell").forEach((cell, number) => {
    [cell, ...all(boxes, cell)].forEach((el) => {
      const overflow = getComputedStyle(el).overflowX;
      if (el.scrollWidth > el.clientWidth + 1 && overflow !== "visible" && shown(el)) {
        sideways.push(`cell ${number + 1}: ${describe(el)} is ${el.scrollWidth} px wide in ${el.clientWidth} px: `
          + JSON.stringify(el.innerText.split("\n").reduce((a, b) => (b.length > a.length ? b : a), "").slice(0, 90)));
      }
    });
  });
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
    imagesWithoutAlt: all("img").filter((img) => {
      const alt = (img.getAttribute("alt") || "").trim();
      return !alt || /\.(png|jpe?g|svg|gif)$/i.test(alt) || /^(image|figure|png|output)$/i.test(alt);
    }).map((img) => `${img.getAttribute("src").slice(0, 90)} (alt=${JSON.stringify(img.getAttribute("alt"))})`),
    widgetViews: views().length,
    unrenderedWidgets: views().filter((view) => !isRendered(view)).map((view) => view.textContent.trim().slice(0, 120)),
    plots: plots().length,
    undrawnPlots: plots().filter((plot) => !isDrawn(plot)).map((plot) => plot.id),
    unreachable: unreachable,
    sideways: sideways,
    outputText: all(".cell_output").map((el) => el.innerText).join("\n"),
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
  };
}
""" % {"wait": WAIT_FOR_RENDERING_JS.strip(), "controls": json.dumps(WIDGET_CONTROLS)}

# The boxes (in page coordinates) of the figures, and the colour of the page behind them.
FIGURE_BOXES_JS = """
(selector) => Array.from(document.querySelectorAll(selector)).map((el) => {
  const box = el.getBoundingClientRect();
  return {id: el.id || el.getAttribute("src") || el.tagName, x: box.left + scrollX, y: box.top + scrollY,
          width: box.width, height: box.height};
}).filter((box) => box.width >= 40 && box.height >= 40)
"""
PAGE_BACKGROUND_JS = "() => getComputedStyle(document.body).backgroundColor"

# Switches the colour mode with the theme's own button (light -> dark -> auto -> ...) until the page is in `mode`.
SWITCH_MODE_JS = """
async (mode) => {
  const button = Array.from(document.querySelectorAll(".theme-switch-button")).find((b) => b.getClientRects().length);
  if (!button) return "no visible theme switch button";
  for (let i = 0; i < 3 && document.documentElement.dataset.theme !== mode; i++) {
    button.click();
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
  return document.documentElement.dataset.theme;
}
"""

# axe-core (vendored by scripts/vendor_assets.py): the WCAG 2.1 A and AA rules and the best practices, on every page
# at both sizes. Colour contrast, the slowest rule, is checked at desktop size in both colour modes: the colours are
# the same on a phone, so there it is left out, as are the other rules in dark mode (they do not depend on colours).
AXE_JS = ROOT / "browser_tests" / "vendor" / "axe.min.js"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]
AXE_RUNS = {  # (device, mode) -> axe.run options; no entry: axe does not run
    ("desktop", "light"): {"runOnly": {"type": "tag", "values": AXE_TAGS}},
    ("phone", "light"): {"runOnly": {"type": "tag", "values": AXE_TAGS}, "rules": {"color-contrast": {"enabled": False}}},
    ("desktop", "dark"): {"runOnly": {"type": "rule", "values": ["color-contrast"]}},
}
AXE_RUN_JS = """
async (options) => {
  // Colours still fading (the theme animates some after a mode switch) would be measured half-way: let them end.
  const ended = Promise.all(document.getAnimations().map((animation) => animation.finished.catch(() => null)));
  await Promise.race([ended, new Promise((resolve) => setTimeout(resolve, 2000))]);  // an endless one: 2 s at most
  const result = await axe.run(document, {...options, resultTypes: ["violations"]});
  return result.violations.map((v) => ({id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map((n) => n.target.join(" ")).slice(0, 5), count: v.nodes.length}));
}
"""


@dataclass
class Visit:
    """What one page showed in one viewport: problems seen while loading it, what `INSPECT_JS` reports, and per
    colour mode the page's background, a screenshot, the axe violations and the figures' pixels."""

    path: str
    device: str
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    external_requests: list[str] = field(default_factory=list)
    report: dict = field(default_factory=dict)
    screenshot: Path | None = None
    mode_reached: str = ""
    background: dict[str, str] = field(default_factory=dict)
    screenshots: dict[str, Path] = field(default_factory=dict)
    axe: dict[str, list[dict]] = field(default_factory=dict)
    figures: dict[str, list[FigurePixels]] = field(default_factory=dict)
    printed: tuple[str, Path] | None = None  # (title, PDF) of a page of the toc, printed after its desktop visit


@dataclass
class FigurePixels:
    """How a figure looks in a screenshot: its most common colour, and the share of its pixels that stand out from
    that colour (its lines, marks and text: what a reader sees)."""

    id: str
    dominant: tuple[int, int, int]
    ink: float


def luminance(rgb: tuple[int, ...]) -> float:
    """The relative luminance of an sRGB colour (WCAG 2), from 0 (black) to 1 (white)."""
    channels = [c / 255 for c in rgb[:3]]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    """The WCAG contrast ratio of two colours, from 1 (none) to 21."""
    light, dark = sorted((luminance(a), luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def figure_pixels(image: Image.Image, box: dict) -> FigurePixels:
    """Sample a figure's pixels in a full-page screenshot: its dominant colour and its share of contrasting ink
    (pixels whose WCAG contrast with the dominant colour is at least 2)."""
    crop = image.crop((round(box["x"]), round(box["y"]), round(box["x"] + box["width"]), round(box["y"] + box["height"])))
    pixels = np.asarray(crop.convert("RGB"))[::2, ::2].reshape(-1, 3)
    levels = pixels.astype(np.int64) // 8  # 32 levels a channel: JPEG's noise does not split a colour
    code = np.bincount((levels[:, 0] << 10) | (levels[:, 1] << 5) | levels[:, 2], minlength=1 << 15).argmax()
    dominant = (int(code >> 10) * 8 + 4, int(code >> 5 & 31) * 8 + 4, int(code & 31) * 8 + 4)
    channels = pixels / 255
    linear = np.where(channels <= 0.04045, channels / 12.92, ((channels + 0.055) / 1.055) ** 2.4)
    lum = linear @ np.array([0.2126, 0.7152, 0.0722])
    base = luminance(dominant)
    ratio = (np.maximum(lum, base) + 0.05) / (np.minimum(lum, base) + 0.05)
    return FigurePixels(box["id"], dominant, float((ratio >= 2.0).mean()))


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


def screenshot_path(path: str, device: str, mode: str = "light") -> Path:
    """Where the screenshot of a page in a viewport and colour mode goes: _build/screenshots/<device>-<mode>/<page>.jpg
    (JPEG: a full page is up to 20,000 px high, and JPEG is several times faster to write than PNG)."""
    return SCREENSHOTS / f"{device}-{mode}" / (path.removesuffix(".html").replace("/", "__") + ".jpg")


def new_context(browser: Browser, device: str) -> BrowserContext:
    """A browser context (its own profile and cache) with the viewport of `device`, on a system in light mode.

    Every page opens as on a first visit, in the site's default mode ("auto", so light): the colour mode chosen
    on one page is forgotten before the next.
    """
    phone = device == "phone"
    context = browser.new_context(
        viewport=VIEWPORTS[device], is_mobile=phone, has_touch=phone, service_workers="block", color_scheme="light"
    )
    context.add_init_script("try { localStorage.removeItem('mode'); localStorage.removeItem('theme'); } catch (e) {}")
    return context


def look_in_mode(page: Page, visit: Visit, mode: str) -> None:
    """Screenshot the page, run axe on it (AXE_RUNS) and sample its figures' pixels, in the colour mode it is in."""
    page.wait_for_load_state("networkidle")
    visit.background[mode] = page.evaluate(PAGE_BACKGROUND_JS)
    shot = screenshot_path(visit.path, visit.device, mode)
    shot.parent.mkdir(parents=True, exist_ok=True)
    for _attempt in range(3):  # the figures' boxes must be where they were when the screenshot was taken
        boxes = page.evaluate(FIGURE_BOXES_JS, FIGURES)
        image = Image.open(io.BytesIO(page.screenshot(path=shot, full_page=True, type="jpeg", quality=90)))
        if page.evaluate(FIGURE_BOXES_JS, FIGURES) == boxes:
            break
    visit.screenshots[mode] = shot
    figures = []
    for box in boxes:
        if box["y"] + box["height"] <= image.height:
            figures.append(figure_pixels(image, box))
    visit.figures[mode] = figures
    options = AXE_RUNS.get((visit.device, mode))
    visit.axe[mode] = page.evaluate(AXE_RUN_JS, options) if options else []


@functools.cache
def _axe_source() -> str:
    """axe-core's script, read once."""
    if not AXE_JS.is_file():
        raise FileNotFoundError(f"{AXE_JS} is missing: run 'make assets' (npm ci and scripts/vendor_assets.py)")
    return AXE_JS.read_text(encoding="utf-8")


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
        page.add_script_tag(content=_axe_source())
        look_in_mode(page, visit, "light")
        visit.mode_reached = page.evaluate(SWITCH_MODE_JS, "dark")
        look_in_mode(page, visit, "dark")
        visit.screenshot = visit.screenshots["light"]
        if device == "desktop" and path in toc_documents():  # print it now: cheaper than loading it once more
            page.evaluate(SWITCH_MODE_JS, "light")
            pdf = PRINTED / path.replace("/", "__").replace(".html", ".pdf")
            visit.printed = (print_loaded_page(page, pdf), pdf)
    finally:
        page.close()
    return visit


class _Heading(HTMLParser):
    """Collects the text of a page's first <h1> and of the first paragraph of prose after it (eight words or more:
    not the title of a note), without the '#' links."""

    def __init__(self) -> None:
        super().__init__()
        self.title = ""
        self.paragraph = ""
        self._inside: str | None = None
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "h1" and not self.title:
            self._inside = "title"
        elif tag == "p" and self.title and not self.paragraph and self._inside is None:
            self._inside = "paragraph"
        elif tag == "a" and self._inside and "headerlink" in (dict(attrs).get("class") or ""):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._skip:
            self._skip -= 1
        elif (tag, self._inside) in (("h1", "title"), ("p", "paragraph")):
            if self._inside == "paragraph" and len(self.paragraph.split()) < 8:
                self.paragraph = ""
            self._inside = None

    def handle_data(self, data: str) -> None:
        if self._inside and not self._skip:
            setattr(self, self._inside, getattr(self, self._inside) + data)


def title_and_lead(path: str) -> tuple[str, str]:
    """A built page's title (its <h1>) and its first paragraph, whitespace collapsed."""
    parser = _Heading()
    parser.feed((SITE / path).read_text(encoding="utf-8"))
    return " ".join(parser.title.split()), " ".join(parser.paragraph.split())


def chapter_pages() -> list[str]:
    """The chapters of the book (book/NN-name.html), in order."""
    return [p for p in content_pages() if re.fullmatch(r"book/\d\d-[^/]+\.html", p)]
