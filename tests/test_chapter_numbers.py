"""No chapter types a result into its prose: every numeral in a chapter's markdown must come from glue.

A result typed by hand goes stale silently when the code changes; a glued one (`{glue:text}` role, myst-nb) is
recomputed at every build, and an asserted one fails the build. This test strips what is not prose (math, code,
roles such as glue, cite and doc, links) from every markdown cell and fails on any numeral left, unless it is
an input the chapter's own code cells write (a setting such as `min_freq=2` or `d = 32`, not a result) or it
matches the short allow-list below.
"""

from __future__ import annotations

import io
import json
import re
import tokenize
from pathlib import Path

import pytest

BOOK = Path(__file__).resolve().parent.parent / "book"
CHAPTERS = sorted(BOOK.glob("[0-9][0-9]-*.ipynb"))

#: Numerals that are not results, with why. Each entry is a regular expression matched against the prose.
ALLOWED = [
    r"\b(19|20)\d\d[a-z]?\b",  # years, as in citations and data sets ("US news articles from 2017")
    r"(?m)^\s*\d+\.\s",  # numbered list items
    r"(?i)\b(chapters?|labs?|lab|exercise|alternative|step|question)\s+\d+(\s*(-|–|and|,)\s*\d+)*",
    r"\d+%\)?\s*,?\s*(a )?(development|training|test) set|\(\d+%\)",  # the fixed 80/10/10 split (a definition)
    r"(?i)\bword2vec\b|\b6B\b|\b50-d\b|WordSim-353|SimLex-999|gensim \d\.\d",  # names with digits
    r"100%",  # the ceiling of an accuracy
    r"(?i)\b(n|k|d|V|B)\s*=\s*\d+",  # a variable set to a value in a definition (inputs, not results)
]

#: Lines that quote published results next to their source are citations, not our results.
CITED_LINE = re.compile(r"\{cite(:t|:p)?\}`")

_NON_PROSE = [
    re.compile(r"```.*?```", re.S),  # fenced blocks (code, directives)
    re.compile(r"\$\$.*?\$\$", re.S),  # display math
    re.compile(r"\$[^$\n]+\$"),  # inline math
    re.compile(
        r"\{[\w:-]+\}`[^`]*`"
    ),  # roles: {glue:text}`...`, {cite}`...`, {doc}`...`
    re.compile(r"`[^`]*`"),  # inline code
    re.compile(r"\]\([^)]*\)"),  # link targets
    re.compile(r"<!--.*?-->", re.S),  # comments
]
_NUMERAL = re.compile(r"(?<![\w.])\d[\d,]*(\.\d+)?")


def prose(markdown: str) -> str:
    """The markdown without math, code, roles, link targets, lines that cite a published source, and exercises
    (an exercise sets the reader new settings to try; it states no result)."""
    markdown = re.sub(r"(?ms)^## Exercises.*?(?=^## |\Z)", " ", markdown)
    markdown = "\n".join(
        line for line in markdown.splitlines() if not CITED_LINE.search(line)
    )
    for pattern in _NON_PROSE:
        markdown = pattern.sub(" ", markdown)
    return markdown


def code_inputs(cells: list[dict]) -> set[float]:
    """Every number literal written in the chapter's code cells: the settings the computation starts from."""
    numbers: set[float] = set()
    for cell in cells:
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        try:
            tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
        except (tokenize.TokenError, IndentationError):
            continue
        for token in tokens:
            if token.type == tokenize.NUMBER:
                try:
                    numbers.add(float(token.string.replace("_", "")))
                except ValueError:
                    pass
    return numbers


def stray_numerals(notebook: Path) -> list[str]:
    """The numerals of a chapter's prose that are neither glued, nor inputs of its code, nor allowed."""
    cells = json.loads(notebook.read_text())["cells"]
    inputs = code_inputs(cells)
    found = []
    for number, cell in enumerate(cells):
        if cell["cell_type"] != "markdown":
            continue
        text = prose("".join(cell["source"]))
        for pattern in ALLOWED:
            text = re.sub(pattern, " ", text)
        for match in _NUMERAL.finditer(text):
            value = float(match.group().replace(",", "").rstrip("."))
            if value not in inputs:
                context = text[max(0, match.start() - 40) : match.end() + 20].replace(
                    "\n", " "
                )
                found.append(f"cell {number}: {match.group()!r} in '...{context}...'")
    return found


@pytest.mark.parametrize("notebook", CHAPTERS, ids=lambda path: path.stem)
def test_no_hand_typed_numbers_in_the_prose(notebook: Path) -> None:
    stray = stray_numerals(notebook)
    assert not stray, (
        "numerals typed into the prose (glue them, or assert them in code):\n"
        + "\n".join(stray)
    )


def test_the_scanner_catches_a_typed_result_and_passes_glue() -> None:
    cells = [
        {"cell_type": "code", "source": ["train(model, epochs=10)\n"]},
        {
            "cell_type": "markdown",
            "source": [
                "We trained for 10 epochs; accuracy {glue:text}`acc:.3f`, $n = 4$."
            ],
        },
    ]
    typed = [
        *cells,
        {"cell_type": "markdown", "source": ["It reached 81.5% accuracy."]},
    ]
    for source, expected in [(cells, 0), (typed, 1)]:
        path = Path(pytest.importorskip("tempfile").mkdtemp()) / "nb.ipynb"
        path.write_text(json.dumps({"cells": source}))
        assert len(stray_numerals(path)) == expected
