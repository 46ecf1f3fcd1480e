"""Format the code cells of the chapter notebooks so that every line fits the website's code column (88 characters).

At 1280 px the book's content column shows about 90 characters of code; longer lines make readers scroll sideways.
`python scripts/format_notebooks.py` runs the ruff formatter (pinned in requirements.txt) on book/*.ipynb;
`--check` changes nothing and lists every code line that is still too long (ruff does not split long strings or
comments: shorten those by hand). `make format` and `make format-check` run these; tests/ runs the check.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_LINE = 88


def chapter_notebooks() -> list[Path]:
    """The notebooks of the book's chapters."""
    return sorted((ROOT / "book").glob("*.ipynb"))


def long_code_lines(notebook: Path, limit: int = MAX_LINE) -> list[str]:
    """Every line of a code cell longer than `limit`, as 'file, cell N, line M (K chars): text'."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    found = []
    for number, cell in enumerate(cells, start=1):
        if cell["cell_type"] != "code":
            continue
        for line_number, line in enumerate("".join(cell["source"]).splitlines(), start=1):
            if len(line) > limit:
                found.append(f"{notebook.name}, cell {number}, line {line_number} ({len(line)} chars): {line.strip()[:60]}")
    return found


def format_notebooks(notebooks: list[Path]) -> int:
    """Run ruff's formatter on the notebooks' code cells; its exit code."""
    command = [sys.executable, "-m", "ruff", "format", "--no-cache", f"--line-length={MAX_LINE}", *map(str, notebooks)]
    return subprocess.run(command, cwd=ROOT).returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; list code lines that are too long")
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: book/*.ipynb")
    args = parser.parse_args()
    notebooks = args.notebooks or chapter_notebooks()
    if not args.check and format_notebooks(notebooks) != 0:
        sys.exit("error: ruff could not format the notebooks (see above); is it installed? (make install)")
    too_long = [line for notebook in notebooks for line in long_code_lines(notebook)]
    if too_long:
        print(f"{len(too_long)} code lines are longer than {MAX_LINE} characters:", *too_long, sep="\n  ")
        sys.exit(1)
    print(f"{len(notebooks)} notebooks: every code line has at most {MAX_LINE} characters")


if __name__ == "__main__":
    main()
