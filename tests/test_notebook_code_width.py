"""The chapters' code fits the website's code column: no code line of book/*.ipynb is longer than 88 characters.

`make format` fixes most lines (ruff); long strings and comments it reports need splitting by hand.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "format_notebooks.py"
_spec = importlib.util.spec_from_file_location("format_notebooks", SCRIPT)
format_notebooks = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(format_notebooks)


@pytest.mark.parametrize("notebook", format_notebooks.chapter_notebooks(), ids=lambda p: p.stem)
def test_code_lines_fit_the_column(notebook):
    too_long = format_notebooks.long_code_lines(notebook)
    assert not too_long, (
        f"{len(too_long)} code lines are longer than {format_notebooks.MAX_LINE} characters (run 'make format', "
        "then split what it leaves):\n  " + "\n  ".join(too_long)
    )


def test_the_check_sees_a_long_line(tmp_path):
    notebook = tmp_path / "long.ipynb"
    line = "x = " + "1 + " * 30 + "1"
    notebook.write_text(
        '{"cells": [{"cell_type": "code", "source": ["short = 1\\n", "%s"], "metadata": {}, "outputs": [],'
        ' "execution_count": null}, {"cell_type": "markdown", "source": ["%s"], "metadata": {}}],'
        ' "metadata": {}, "nbformat": 4, "nbformat_minor": 5}' % (line, "m" * 200),
        encoding="utf-8",
    )
    assert [entry.split(":")[0] for entry in format_notebooks.long_code_lines(notebook)] == [
        f"long.ipynb, cell 1, line 2 ({len(line)} chars)"
    ]
