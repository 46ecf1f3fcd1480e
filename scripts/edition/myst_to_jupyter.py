"""The book's MyST markdown as plain Jupyter markdown, for chapters a student runs outside the book.

Admonitions become block quotes, glued values the numbers the book build computed, citations author-year text,
links to other pages links to the edition's own files or plain text. A role or directive not handled here fails the
conversion instead of reaching students as raw MyST.
"""

from __future__ import annotations

import codecs
import json
import re
from ast import literal_eval
from collections.abc import Callable
from pathlib import Path

import latexcodec  # noqa: F401 (registers the 'ulatex' codec)
from pybtex.database import parse_file

ROLE = re.compile(r"\{([a-z]+(?::[a-z]+)?)\}`([^`]*)`")
FENCE = re.compile(r"^(?P<fence>`{3,}|:{3,})\{(?P<name>[a-z-]+)\}[ \t]*(?P<title>.*?)\n(?P<body>.*?)^(?P=fence)[ \t]*$",
                   re.M | re.S)
TARGET = re.compile(r"^\([A-Za-z0-9_-]+\)=[ \t]*\n", re.M)
ADMONITIONS = {"note", "tip", "hint", "important", "warning", "caution", "attention", "danger", "error", "seealso",
               "admonition"}


def glued_values(glue_file: Path) -> dict[str, str]:
    """name -> text/plain of every value a chapter glued, from the NAME.glue.json myst-nb writes when it executes it."""
    outputs = json.loads(glue_file.read_text(encoding="utf-8"))
    return {name: "".join(output["data"]["text/plain"]) for name, output in outputs.items()
            if "text/plain" in output.get("data", {})}


def format_glued(text: str, spec: str) -> str:
    """A glued text/plain value formatted by a role's format spec, as myst-nb's `glue:text` does."""
    try:
        value = literal_eval(text)
    except (SyntaxError, ValueError):
        value = text
    if not spec:
        return str(value)
    kind = spec[-1]
    value = str(value) if kind == "s" else int(value) if kind in "bcdoxX" else float(value) if kind in "eEfFgGn%" \
        else value
    return format(value, spec)


class Citations:
    """Author-year citations and a bibliography page from a BibTeX file."""

    def __init__(self, bibfile: Path) -> None:
        self.entries = parse_file(str(bibfile)).entries

    def authors(self, key: str) -> str:
        """'Mikolov et al.', 'Pang and Lee', 'Harris': the first author's last name and how many more."""
        entry = self.entries[key]
        people = entry.persons.get("author") or entry.persons.get("editor") or []
        last = [plain(" ".join(person.last_names)) for person in people]
        if not last:
            return plain(entry.fields.get("title", key))
        return last[0] if len(last) == 1 else f"{last[0]} and {last[1]}" if len(last) == 2 else f"{last[0]} et al."

    def year(self, key: str) -> str:
        return self.entries[key].fields.get("year", "n.d.")

    def textual(self, keys: list[str]) -> str:
        """`{cite:t}`: Mikolov et al. (2013)."""
        return "; ".join(f"{self.authors(k)} ({self.year(k)})" for k in keys)

    def parenthetical(self, keys: list[str]) -> str:
        """`{cite}` / `{cite:p}`: (Mikolov et al., 2013; Pennington et al., 2014)."""
        return "(" + "; ".join(f"{self.authors(k)}, {self.year(k)}" for k in keys) + ")"

    def page(self, intro: str) -> str:
        """The bibliography as one markdown page, by author and year."""
        lines = ["# Bibliography", "", intro, ""]
        for key in sorted(self.entries, key=lambda k: (self.authors(k).lower(), self.year(k))):
            fields = self.entries[key].fields
            people = self.entries[key].persons.get("author", [])
            names = ", ".join(" ".join([*p.first_names, *p.middle_names, *p.prelast_names, *p.last_names])
                              for p in people)
            venue = next((fields[f] for f in ("journal", "booktitle", "publisher", "howpublished") if f in fields), "")
            line = f"- {names + '. ' if names else ''}({self.year(key)}). *{fields.get('title', key)}*."
            line += f" {venue}." if venue else ""
            line += f" <{fields['url']}>" if "url" in fields else ""
            lines.append(plain(line))
        return "\n".join(lines) + "\n"


def plain(latex: str) -> str:
    """BibTeX's LaTeX as plain text: accents as letters, no protecting braces."""
    return codecs.decode(latex, "ulatex").replace("{", "").replace("}", "")


def admonition(match: re.Match) -> str:
    """A fenced admonition as a block quote headed by its kind (or its title)."""
    name, title, body = match["name"], match["title"].strip(), match["body"]
    if name not in ADMONITIONS:
        raise ValueError(f"directive {{{name}}} has no plain-markdown form")
    body = "\n".join(line for line in body.splitlines() if not re.match(r"^:[a-z-]+:", line))
    head = f"**{title or name.capitalize()}**"
    return "\n".join(f"> {line}".rstrip() for line in [head, "", *body.strip("\n").splitlines()])


def convert(text: str, glued: dict[str, str], citations: Citations, link: Callable[[str, str], str]) -> str:
    """Plain Jupyter markdown for a MyST markdown cell. `link(target, title)` renders a `{doc}` reference."""

    def role(match: re.Match) -> str:
        name, content = match[1], match[2]
        if name in ("glue:text", "glue"):
            key, _, spec = content.partition(":")
            if key not in glued:
                raise KeyError(f"no glued value {key!r} in the executed notebook")
            return format_glued(glued[key], spec)
        if name in ("cite:t", "cite", "cite:p"):
            keys = [k.strip() for k in content.split(",")]
            return citations.textual(keys) if name == "cite:t" else citations.parenthetical(keys)
        if name == "doc":
            titled = re.fullmatch(r"(.*?)\s*<([^>]+)>", content)
            return link(titled[2], titled[1]) if titled else link(content, "")
        raise ValueError(f"role {{{name}}} has no plain-markdown form")

    text = FENCE.sub(admonition, text)
    text = TARGET.sub("", text)
    return ROLE.sub(role, text)
