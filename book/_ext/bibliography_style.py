"""The bibliography page's labels in author-year form ("Mikolov et al. 2013a"), matching the in-text citations.

pybtex's default `alpha` labels abbreviate surnames and keep two digits of the year: "vRehruvrekS10" for
Řehůřek & Sojka, "MCCD3a" for a year with a suffix. This extension registers a formatting style, `course`,
that sorts like pybtex's `plain` and labels each entry with its first authors' surnames and its year field.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from pybtex.database import Entry
from pybtex.plugin import register_plugin
from pybtex.style.formatting.plain import Style as PlainStyle
from pybtex.style.labels import BaseLabelStyle


def _surname(person) -> str:
    return " ".join(part.render_as("text") for part in person.rich_prelast_names + person.rich_last_names)


def author_year_label(entry: Entry) -> str:
    """'Surname year', 'Surname & Surname year' or 'Surname et al. year' (editors if there are no authors)."""
    people = entry.persons.get("author") or entry.persons.get("editor") or []
    names = [_surname(person) for person in people]
    year = entry.fields.get("year", "n.d.")
    if not names:
        return f"{entry.fields.get('title', entry.key)[:30]} {year}"
    if len(names) == 1:
        return f"{names[0]} {year}"
    if len(names) == 2:
        return f"{names[0]} & {names[1]} {year}"
    return f"{names[0]} et al. {year}"


class AuthorYearLabels(BaseLabelStyle):
    def format_labels(self, sorted_entries: Iterable[Entry]) -> Iterator[str]:
        for entry in sorted_entries:
            yield author_year_label(entry)


class CourseStyle(PlainStyle):
    default_label_style = AuthorYearLabels


def setup(app):
    register_plugin("pybtex.style.formatting", "course", CourseStyle)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
