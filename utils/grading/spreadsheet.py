"""CSV cells that a spreadsheet opens as text: a cell starting like a formula is prefixed with an apostrophe.

Students choose much of what lands in the gradebook (file names, written answers, exception messages). Excel,
LibreOffice and Google Sheets run a cell that starts with '=', '+', '-' or '@' (also after a tab, a line break or
leading spaces, and in full-width forms) as a formula, which can fetch URLs or run commands. A leading "'" makes
them show the text as typed. Plain numbers in numeric columns (scores) stay numbers.
"""

from __future__ import annotations

import math
import re
from typing import Any

#: Characters that start a formula (ASCII and full-width) or can hide one (tab, carriage return, line feed).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")
_NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][-+]?\d+)?")


def safe_cell(value: Any, numeric: bool = False) -> Any:
    """`value` as a spreadsheet shows it as typed: text that would start a formula gets a leading apostrophe.

    In a numeric column, a finite int or float or a string that is a plain decimal number is left as it is.
    """
    if value is None or isinstance(value, bool):
        return value
    if numeric and isinstance(value, (int, float)) and math.isfinite(value):
        return value
    text = str(value)
    if numeric and _NUMBER.fullmatch(text):
        return text
    stripped = text.lstrip(" ")
    return "'" + text if stripped.startswith(FORMULA_STARTS) else text
