"""Debian's Chromium driven by Playwright, and the built website served on 127.0.0.1: shared by the browser tests
and scripts/print_book.py (make pdf), so that both see the site the same way, offline.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from playwright.sync_api import Browser, Playwright

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# Headless, with every background service off and a fresh profile (Playwright makes one).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Waits (in the page) until MathJax has typeset, the widgets have rendered, the plotly figures are drawn and the
# images have loaded, or about 15 s have passed.
WAIT_FOR_RENDERING_JS = r"""
async () => {
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const all = (selector) => Array.from(document.querySelectorAll(selector));
  const isRendered = (view) => {
    const area = view.previousElementSibling;
    return !!area && area.classList.contains("widget-subarea") && area.childElementCount > 0
      && area.getBoundingClientRect().height > 0;
  };
  all("img").forEach((img) => { img.loading = "eager"; });
  const done = () => all('script[type="application/vnd.jupyter.widget-view+json"]').every(isRendered)
    && all(".plotly-graph-div").every((plot) => plot.querySelector(".main-svg") !== null)
    && all("img").every((img) => img.complete);
  const mathjax = window.MathJax;
  if (mathjax && mathjax.startup && mathjax.startup.promise) {
    await Promise.race([mathjax.startup.promise, sleep(15000)]);
  }
  for (let i = 0; i < 150 && !done(); i++) await sleep(100);
}
"""


def launch(playwright: Playwright) -> Browser:
    """Start Debian's Chromium (never a browser Playwright would download)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class's name)
        """Keep the output free of one line per request."""


@contextmanager
def serve(site: Path) -> Iterator[str]:
    """Serve the folder `site` from a thread on 127.0.0.1 at a free port; yields its root URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
