"""Copy the JavaScript the website serves itself into book/assets/vendor/, so that it works offline.

Run by `make book` after `npm ci` (which installs the versions pinned in package-lock.json into node_modules/).
Sources: MathJax 3 (only the TeX-to-CommonHTML component, its fonts and the parts it loads on demand), the
ipywidgets embed manager (@jupyter-widgets/html-manager), RequireJS, and plotly.js from the Python plotly package
(so that it always matches the plotly that made the figures). axe-core, which only the browser tests inject into
the pages (accessibility checks), goes to browser_tests/vendor/ instead, so the website does not ship it.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NODE_MODULES = ROOT / "node_modules"
VENDOR = ROOT / "book" / "assets" / "vendor"
TEST_VENDOR = ROOT / "browser_tests" / "vendor"

# (source relative to node_modules, destination relative to VENDOR); a directory is copied whole.
NPM_FILES = [
    ("mathjax/LICENSE", "mathjax/LICENSE"),
    ("mathjax/es5/tex-chtml.js", "mathjax/tex-chtml.js"),
    ("mathjax/es5/output/chtml", "mathjax/output/chtml"),  # the woff-v2 fonts
    ("mathjax/es5/input/tex/extensions", "mathjax/input/tex/extensions"),  # loaded by \require and autoload
    ("mathjax/es5/ui", "mathjax/ui"),  # the right-click menu
    ("mathjax/es5/a11y", "mathjax/a11y"),  # accessibility options of the menu
    ("mathjax/es5/sre", "mathjax/sre"),  # the speech rule engine those options need
    ("requirejs/require.js", "require.js"),
    ("@jupyter-widgets/html-manager/dist/embed-amd.js", "html-manager/embed-amd.js"),
    ("@jupyter-widgets/html-manager/dist/embed.js.LICENSE.txt", "html-manager/THIRD-PARTY-LICENSES.txt"),
]
# (source relative to node_modules, destination relative to TEST_VENDOR): for the browser tests only.
NPM_TEST_FILES = [
    ("axe-core/axe.min.js", "axe.min.js"),
    ("axe-core/LICENSE", "axe-core-LICENSE"),
]
# The embed manager's stylesheet points at its Font Awesome files next to embed-amd.js.
FONT_SUFFIXES = (".eot", ".svg", ".ttf", ".woff", ".woff2")


def copy(source: Path, destination: Path) -> None:
    """Copy a file or a directory tree, failing loudly when the source is missing."""
    if not source.exists():
        sys.exit(f"error: {source} is missing; run 'npm ci' first (make book does)")
    destination.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, destination)
    else:
        shutil.copy2(source, destination)


def plotly_js() -> Path:
    """The plotly.min.js that ships inside the installed Python plotly package."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("error: the Python package plotly is not installed; run this script with .venv/bin/python")
    return Path(spec.submodule_search_locations[0]) / "package_data" / "plotly.min.js"


def main() -> None:
    """Rebuild VENDOR and TEST_VENDOR from scratch and print the size of VENDOR."""
    shutil.rmtree(VENDOR, ignore_errors=True)
    shutil.rmtree(TEST_VENDOR, ignore_errors=True)
    for source, destination in NPM_TEST_FILES:
        copy(NODE_MODULES / source, TEST_VENDOR / destination)
    (TEST_VENDOR / ".gitignore").write_text("# Copied by scripts/vendor_assets.py from node_modules: not committed.\n*\n")
    for source, destination in NPM_FILES:
        copy(NODE_MODULES / source, VENDOR / destination)
    dist = NODE_MODULES / "@jupyter-widgets/html-manager/dist"
    for font in sorted(dist.iterdir()):
        if font.suffix in FONT_SUFFIXES:
            copy(font, VENDOR / "html-manager" / font.name)
    copy(plotly_js(), VENDOR / "plotly" / "plotly.min.js")
    size = sum(f.stat().st_size for f in VENDOR.rglob("*") if f.is_file())
    print(f"{VENDOR.relative_to(ROOT)}: {size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
