"""What the built chapters show: no stray value under a cell, and no count shown as a float.

tests/test_chapter_cells.py reads the chapters' source; this file reads what the book build executed
(`_build/jupyter_execute/book/*.ipynb`, written by `jupyter-book build`), so it also catches what the source cannot
tell: a cell whose last expression is a plain number, array or object repr, and a count that became a float
on its way to the page (`18907.0`), be it printed, shown in a table or glued into the text unformatted (a glued
value that the text formats, as in `{glue:text}`words:,d``, shows as the format says). It runs after the book build
(`make test-edition`); without a build it skips and says why.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXECUTED = ROOT / "_build" / "jupyter_execute" / "book"
CHAPTERS = sorted((ROOT / "book").glob("[0-9][0-9]-*.ipynb"))

#: A last-expression value shown as nothing but text that is a bare value: a number, a string, a tuple or
#: list, a NumPy or PyTorch scalar or array, or an object's default repr (`<matplotlib.legend.Legend at ...>`).
#: Tables (a Series' text ends with its dtype), figures and widgets come with other data, or do not match.
#: A cell that shows a value on purpose (chapter 1 shows what an embedding lookup returns) carries the tag below.
DELIBERATE = "show-value"
BARE_VALUE = re.compile(
    r"""^\s*(np\.\w+\(|array\(|tensor\(|<[\w.]+( object)? at 0x|<\w+:|[-+]?(\d|\.\d|nan\b|inf\b)|True$|False$|['"(\[])"""
)
#: A whole number of at least 100 written with a single zero after the point (`18907.0`, `1,095.0`): a count that
#: went through a float, as Python prints it and as pandas shows a column of whole floats. A fixed precision of two
#: or more decimals (`506.00` among `347.08` and `0.07`) is a measurement that happened to land on a whole number.
#: Percentages (`100.0%`) are rates, not counts.
FLOAT_COUNT = re.compile(r"(?<![\d.,])(\d{1,3}(?:,\d{3})+|\d{3,})\.0(?![\d%])")
#: A glue role in the text, with the format it applies (none: the value's repr is shown as it is).
GLUE_ROLE = re.compile(r"\{glue(?::\w+)?\}`(\w+)(:[^`]*)?`")


def executed(chapter: Path) -> dict:
    path = EXECUTED / chapter.name
    if not path.exists():
        pytest.skip(f"{path.relative_to(ROOT)} is missing: run the book build (`make book`) first")
    return json.loads(path.read_text(encoding="utf-8"))


def stray_outputs(notebook: dict) -> list[str]:
    """Each code cell whose shown value (its `execute_result`) is a bare value rather than a table or a figure."""
    found = []
    for number, cell in enumerate(notebook["cells"], start=1):
        if DELIBERATE in cell.get("metadata", {}).get("tags", []):
            continue
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if output["output_type"] == "execute_result" and set(data) == {"text/plain"}:
                text = "".join(data["text/plain"])
                if BARE_VALUE.match(text) and "dtype:" not in text:
                    found.append(f"cell {number} shows {text[:60]!r}")
    return found


def unformatted_glue(notebook: dict) -> set[str]:
    """The glued names that the text shows at least once without a format (as their repr)."""
    markdown = "".join("".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "markdown")
    return {name for name, spec in GLUE_ROLE.findall(markdown) if not spec}


def float_counts(notebook: dict) -> list[str]:
    """Each whole number of 100 or more shown as a float: printed, in a shown table, or glued into the text as is."""
    found, shown_as_is = [], unformatted_glue(notebook)
    for number, cell in enumerate(notebook["cells"], start=1):
        for output in cell.get("outputs", []):
            glued = output.get("metadata", {}).get("scrapbook", {}).get("name")
            if glued and glued not in shown_as_is:
                continue
            if output["output_type"] == "stream":
                texts = [output["text"]]
            else:
                texts = [v for k, v in output.get("data", {}).items() if k.endswith("text/plain")]
            for text in texts:
                for match in FLOAT_COUNT.finditer("".join(text)):
                    where = f"glued as {glued}" if glued else "shown"
                    found.append(f"cell {number}: {match.group()} {where}")
    return found


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_no_cell_shows_a_stray_value(chapter: Path) -> None:
    found = stray_outputs(executed(chapter))
    assert not found, f"{chapter.name}: " + "; ".join(found)


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_counts_are_shown_as_integers(chapter: Path) -> None:
    found = float_counts(executed(chapter))
    assert not found, f"{chapter.name}: " + "; ".join(found)


def _notebook(*outputs: dict, text: str = "") -> dict:
    markdown = {"cell_type": "markdown", "source": text}
    return {"cells": [{"cell_type": "code", "source": "", "outputs": list(outputs)}, markdown]}


def _result(text: str, **more: str) -> dict:
    return {"output_type": "execute_result", "data": {"text/plain": text, **more}, "metadata": {}}


@pytest.mark.parametrize(
    "text, stray",
    [
        ("0.11253561253561253", True),
        ("np.float64(0.25)", True),
        ("tensor(3.)", True),
        ("array([1, 2])", True),
        ("<matplotlib.legend.Legend at 0x7f3e2c1d0>", True),
        ("'a string'", True),
        ("(0.1, 0.2)", True),
        ("       word  cosine\nrank\n1      lame   0.718", False),
        ("a    1\nb    2\ndtype: int64", False),
    ],
)
def test_the_stray_check_tells_values_from_tables(text: str, stray: bool) -> None:
    assert bool(stray_outputs(_notebook(_result(text)))) == stray


def test_a_figure_an_html_table_or_a_tagged_display_is_never_stray() -> None:
    tagged = _notebook(_result("tensor([1.5410, -0.2934])"))
    tagged["cells"][0]["metadata"] = {"tags": [DELIBERATE]}
    assert not stray_outputs(tagged)
    assert not stray_outputs(_notebook(_result("<Figure size 640x480 with 1 Axes>", **{"image/png": "..."})))
    assert not stray_outputs(_notebook(_result("0.5", **{"text/html": "<table></table>"})))


def test_the_count_check_finds_float_counts_wherever_they_are_shown() -> None:
    glued = {
        "output_type": "display_data",
        "data": {"application/papermill.record/text/plain": "18907.0"},
        "metadata": {"scrapbook": {"name": "vocab_types"}},
    }
    printed = {"output_type": "stream", "name": "stdout", "text": "1,095.0 tokens; 18,907 types"}
    table = _result("       count\nbad     21.0\ngood  1234.0", **{"text/html": "<table></table>"})  # as pandas shows it
    assert float_counts(_notebook(glued, text="{glue:text}`vocab_types` types")) == [
        "cell 1: 18907.0 glued as vocab_types"
    ]
    assert float_counts(_notebook(glued, text="{glue:text}`vocab_types:,.0f` types")) == []
    assert float_counts(_notebook(printed)) == ["cell 1: 1,095.0 shown"]
    assert float_counts(_notebook(table)) == ["cell 1: 1234.0 shown"]
    timings = _result("   one-hot (ms)  slowdown\n0        347.08    506.00\n1          0.07     12.75")
    assert float_counts(_notebook(timings)) == []  # a measurement at fixed precision that landed on a whole number
    fine = {"output_type": "stream", "name": "stdout", "text": "18,907 types, 100.0% covered, accuracy 0.767, 12.5 s"}
    assert float_counts(_notebook(fine, _result("18907"))) == []
