"""A Sphinx extension for this book: the website must work offline, from its own files only, and for every reader.

It stops the build early when the JavaScript the site serves itself is missing, and leaves sphinx-thebe's scripts
out of the pages: the book does not use Thebe (live code needs a server), and with Sphinx 7.4 sphinx-thebe writes
its inline configuration twice, which is a JavaScript error on every page. It also gives the bibliography's entries
the ARIA role their list needs (docutils marks them doc-biblioentry, a role ARIA 1.2 dropped).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sphinx.application import Sphinx
from sphinx.errors import ExtensionError

# Written by scripts/vendor_assets.py; the site cannot show formulas without it.
REQUIRED_ASSET = Path("book/assets/vendor/mathjax/tex-chtml.js")


def check_assets(app: Sphinx) -> None:
    """Fail with the command to run when the vendored JavaScript has not been fetched."""
    if not (Path(app.confdir) / REQUIRED_ASSET).is_file():
        raise ExtensionError(
            f"{REQUIRED_ASSET} is missing: run 'make book' (it runs 'npm ci' and scripts/vendor_assets.py)"
        )


def _is_thebe(asset: Any) -> bool:
    """Whether a page asset (script or stylesheet) belongs to sphinx-thebe."""
    return "sphinx-thebe" in str(asset.filename) or "THEBE_JS_URL" in asset.attributes.get("body", "")


def drop_thebe(app: Sphinx, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    """Remove sphinx-thebe's scripts and stylesheet from the page about to be written."""
    for key in ("script_files", "css_files"):
        if key in context:
            context[key] = [asset for asset in context[key] if not _is_thebe(asset)]


def list_citations(app: Sphinx, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    """Entries of a citation list (role="list") are list items, which screen readers announce as such."""
    if "body" in context:
        context["body"] = context["body"].replace('role="doc-biblioentry"', 'role="listitem"')


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the event handlers."""
    app.connect("builder-inited", check_assets)
    app.connect("html-page-context", drop_thebe, priority=900)
    app.connect("html-page-context", list_citations)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
