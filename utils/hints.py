"""Hints in steps for a lab's questions: `hint("q3")` shows the next step each time it is called.

A stuck student gets help in the order a tutor would give it: first the idea, then where the chapter shows it,
then the names of the functions to look up; never code. The steps live beside the solution
(`solutions/<lab>/hints.json`) and are released with the lab (`labs/<lab>/hints.json`) by
`python -m utils.grading release`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

#: The file next to a lab's notebook that holds its hints: {"q1": ["the idea", "the chapter section", ...], ...}.
HINTS_FILE = "hints.json"

_shown: dict[tuple[str, str], int] = {}


def read_hints(path: Path) -> dict[str, list[str]]:
    """The hints of one lab from its hints.json; raises ValueError when the file is not a mapping of step lists."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not all(
            isinstance(k, str) and isinstance(v, list) and v and all(isinstance(s, str) and s.strip() for s in v)
            for k, v in data.items()):
        raise ValueError(f"{path}: hints must map each question (e.g. 'q1') to a non-empty list of texts")
    return data


def find_hints_file(start: Path | None = None) -> Path | None:
    """The lab's hints.json: in the notebook's folder (the kernel's working folder, or the notebook Jupyter names)."""
    folders = [start or Path.cwd()]
    session = os.environ.get("JPY_SESSION_NAME", "")  # Jupyter Server tells the kernel its notebook's path
    if session.endswith(".ipynb"):
        folders.append(Path(session).parent)
    return next((folder / HINTS_FILE for folder in folders if (folder / HINTS_FILE).is_file()), None)


def next_hint(question: str, hints: dict[str, list[str]], lab: str = "") -> str:
    """The text of the next step for `question` (the last step again once all are shown), counting the calls."""
    key = question.strip().lower()
    if key not in hints:
        return f"There are no hints for {question!r}. Questions with hints: {', '.join(sorted(hints)) or 'none'}."
    steps, seen = hints[key], _shown.get((lab, key), 0)
    _shown[(lab, key)] = seen + 1
    if seen >= len(steps):
        return (f"{key}, hint {len(steps)} of {len(steps)} (the last): {steps[-1]}\n"
                "That was every hint for this question: reread the chapter section, or ask your tutor.")
    more = "call hint again for the next one" if seen + 1 < len(steps) else "this is the last one"
    return f"{key}, hint {seen + 1} of {len(steps)} ({more}): {steps[seen]}"


def hint(question: str) -> None:
    """Print the next hint for a question of this lab, e.g. hint("q3"); call again for the next step."""
    path = find_hints_file()
    if path is None:
        print(f"No {HINTS_FILE} next to this notebook: keep the lab's folder as it came (the hints live in "
              f"{HINTS_FILE} beside the lab's notebook).")
        return
    print(next_hint(question, read_hints(path), lab=str(path.parent)))
