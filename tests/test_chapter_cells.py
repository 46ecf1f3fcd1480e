"""No chapter cell ends on an expression whose value the page would print by accident.

Jupyter displays the value of a cell's last bare expression. A cell meant to show a table, a plot or a widget ends
on one; a cell that ends on `keep(...)`, `float(...)`, `len(...)` or `x.mean()` prints a stray number under the
figure before it (the chapter on word vectors once showed `0.11253561253561253` that way).
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

BOOK = Path(__file__).resolve().parent.parent / "book"
CHAPTERS = sorted(BOOK.glob("[0-9][0-9]-*.ipynb"))

#: Calls whose value is a bare number or string: at the end of a cell they print a stray value.
SCALAR_FUNCTIONS = {"keep", "float", "int", "len", "round", "sum", "min", "max", "abs", "str", "bool"}
SCALAR_METHODS = {"item", "mean", "sum", "max", "min", "std", "median", "idxmax", "idxmin", "tolist", "append"}


def stray_value(source: str) -> str | None:
    """Why the cell's last statement would print a stray value, or None if it prints nothing or a display."""
    if source.rstrip().endswith(";"):
        return None
    try:
        tree = ast.parse(source)
    except SyntaxError:  # a cell tagged to fail, or IPython magics: not ours to judge
        return None
    if not tree.body or not isinstance(tree.body[-1], ast.Expr):
        return None
    value = tree.body[-1].value
    if isinstance(value, (ast.Constant, ast.BinOp, ast.Compare, ast.BoolOp, ast.UnaryOp)):
        return f"a bare {type(value).__name__} expression"
    if isinstance(value, ast.Call):
        function = value.func
        if isinstance(function, ast.Name) and function.id in SCALAR_FUNCTIONS:
            return f"a call of {function.id}()"
        if isinstance(function, ast.Attribute) and function.attr in SCALAR_METHODS:
            return f"a call of .{function.attr}()"
    return None


@pytest.mark.parametrize("notebook", CHAPTERS, ids=lambda p: p.name)
def test_no_cell_ends_on_a_stray_value(notebook: Path) -> None:
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    found = [
        f"cell {number}: ends on {why}"
        for number, cell in enumerate(cells, start=1)
        if cell["cell_type"] == "code" and (why := stray_value("".join(cell["source"])))
    ]
    assert not found, f"{notebook.name}: " + "; ".join(found)


@pytest.mark.parametrize(
    "source, stray",
    [
        ('plt.show()\nkeep("x", 0.1)', True),
        ("len(words)", True),
        ("table.mean()", True),
        ("1 + 2", True),
        ('plt.show()\nkeep("x", 0.1);', False),
        ("table", False),
        ("table.round(3)", False),
        ("pd.concat(parts)", False),
        ('plot_bars(scores, title="t")', False),
        ("x = len(words)", False),
        ("print(len(words))", False),
    ],
)
def test_the_check_tells_stray_values_from_displays(source: str, stray: bool) -> None:
    assert (stray_value(source) is not None) == stray
