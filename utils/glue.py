"""`glue`, the book's way of handing a computed value to its text, where the book's tools are not installed.

In the book build (myst-nb installed) this is myst-nb's own `glue`. In the student edition, whose chapters carry the
values already written into their text, it shows the value if asked to and stores nothing.
"""

from __future__ import annotations

from typing import Any

try:
    from myst_nb import glue
except ModuleNotFoundError:

    def glue(name: str, variable: Any, display: bool = True) -> None:
        """Show `variable` when `display` is true, as myst-nb's glue does; the name is not needed outside a book."""
        if display:
            from IPython.display import display as show

            show(variable)

__all__ = ["glue"]
