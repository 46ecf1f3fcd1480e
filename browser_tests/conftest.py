"""Fixtures for the browser tests: the built website served on 127.0.0.1, and Chromium driven by Playwright.

The browser may reach nothing but that local server: every other request is aborted and recorded, so a page that
needs a CDN fails its test instead of quietly working on a connected machine. Set BOOK_HTML to test another build.
"""

from __future__ import annotations

import functools
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Playwright, sync_playwright

from browser_tests.chromium import CHROMIUM, launch, serve
from browser_tests.pages import AXE_JS, SITE, VIEWPORTS, Visit, content_pages, new_context, visit_page


def pytest_sessionstart(session: pytest.Session) -> None:
    """Stop at once, with the remedy, when there is no site or no browser to test."""
    if not (SITE / "index.html").is_file():
        pytest.exit(f"error: no built website in {SITE}: run 'make book' first ('make test' builds it)", returncode=1)
    if not Path(CHROMIUM).is_file() and shutil.which(CHROMIUM) is None:
        pytest.exit(f"error: {CHROMIUM} not found: run 'make browser' (apt-get install -y chromium)", returncode=1)
    if not AXE_JS.is_file():
        pytest.exit(f"error: {AXE_JS} is missing: run 'make assets' (npm ci and scripts/vendor_assets.py)", returncode=1)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run every test that takes `page_path` once per page of the site."""
    if "page_path" in metafunc.fixturenames:
        metafunc.parametrize("page_path", content_pages())


@pytest.fixture(scope="session")
def base_url() -> Iterator[str]:
    """The root URL of the site, served from a thread on 127.0.0.1 at a free port."""
    with serve(SITE) as url:
        yield url


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = launch(playwright)
    yield browser
    browser.close()


@pytest.fixture(scope="session")
def visit(browser: Browser, base_url: str) -> Iterator[Callable[..., Visit]]:
    """`visit(path, device="desktop")`: open a page once per device (cached) and report what it showed.

    The pages of one device share a browser context, so its HTTP cache: each shared file is fetched once.
    """
    contexts = {device: new_context(browser, device) for device in VIEWPORTS}

    @functools.cache
    def cached(path: str, device: str) -> Visit:
        return visit_page(contexts[device], base_url, path, device)

    yield lambda path, device="desktop": cached(path, device)
    for context in contexts.values():
        context.close()
