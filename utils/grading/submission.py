"""A submission as the grader reads it: check that the bytes are a notebook of the right lab, and pick out the
student's answer cells (matched by nbgrader grade_id, falling back to the cell id)."""

from __future__ import annotations

import json
import os
import stat
from collections import Counter
from pathlib import Path
from typing import Any

from utils.grading.notebook import Lab, cell_source, nbgrader_meta
from utils.grading.release import ANSWER_PLACEHOLDER, stub_solution

#: Larger files are not read: a lab notebook with its outputs is a few MB.
MAX_BYTES = 32 * 2**20
#: Deeper JSON is not a notebook Jupyter wrote (and would exhaust the parser's recursion).
MAX_DEPTH = 100
#: A notebook may have this many cells, or ten times the lab's cells if that is more.
MAX_CELLS = 2000
_SAVE_AGAIN = "Open it in Jupyter, save it (File > Save Notebook) and submit the .ipynb again."


def read_submission(path: Path) -> tuple[bytes | None, str]:
    """(bytes, "") of a submitted file, or (None, message) when it is a symbolic link, not a regular file, or
    larger than MAX_BYTES.

    Reads at most MAX_BYTES + 1 bytes, so a huge, growing or special file costs nothing. A link is refused: an
    unpacked archive could otherwise hand the grader solutions/ or another student's file as this submission.
    """
    if os.path.islink(path):
        return None, "The submission is a symbolic link, not a notebook file. Submit the .ipynb file itself."
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return None, "This is not a regular file. Submit the .ipynb file that Jupyter saves."
            data = handle.read(MAX_BYTES + 1)
    except OSError as error:
        return None, f"The grader could not read the file ({error.strerror}). Submit the .ipynb file again."
    if len(data) > MAX_BYTES:
        return None, (f"The file is larger than {MAX_BYTES // 2**20} MB. Clear the outputs (Edit > Clear Outputs "
                      "of All Cells), save, and submit the .ipynb again.")
    return data, ""


def _too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether JSON data nests deeper than `limit` (checked without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def _structure_problem(notebook: dict[str, Any], lab: Lab) -> str:
    """What makes a version-4 notebook unusable ('' if nothing): its size, depth, cell ids and grade_ids."""
    cells = notebook["cells"]
    limit = max(MAX_CELLS, 10 * len(lab.cells))
    if len(cells) > limit:
        return f"The notebook has {len(cells)} cells; a submission may have at most {limit}. {_SAVE_AGAIN}"
    if _too_deep(notebook):
        return f"The notebook's JSON is nested more than {MAX_DEPTH} levels deep: Jupyter never writes that. {_SAVE_AGAIN}"
    ids = [c["id"] for c in cells if "id" in c]
    if any(not isinstance(i, str) for i in ids):
        return f"Some cell ids are not text (they must be strings). {_SAVE_AGAIN}"
    grade_ids = [nbgrader_meta(c)["grade_id"] for c in cells if "grade_id" in nbgrader_meta(c)]
    if any(not isinstance(g, str) for g in grade_ids):
        return "Some cells' nbgrader grade_id is not text. Start from a fresh copy of the lab and paste your answers."
    repeated = sorted(i for i, n in Counter(ids).items() if n > 1)
    if repeated:
        return (f"Several cells share the id {repeated[0]!r}" + (f" (and {len(repeated) - 1} more ids)" if len(repeated) > 1
                else "") + f": cell ids must be unique. {_SAVE_AGAIN}")
    return ""


def parse_submission(data: bytes, lab: Lab) -> tuple[dict[str, Any] | None, str, str]:
    """(notebook, "", "") for a readable notebook of this lab, else (None, status, message)."""
    if not data.strip():
        return None, "invalid-notebook", "The file is empty. Save the notebook in Jupyter and submit the .ipynb again."
    if len(data) > MAX_BYTES:
        return None, "invalid-notebook", f"The file is larger than {MAX_BYTES // 2**20} MB. Clear the outputs and save."
    try:
        notebook = json.loads(data.decode("utf-8"))
    except ValueError as error:  # bad UTF-8, bad JSON, a number too long to convert
        return None, "invalid-notebook", (f"The file is not a Jupyter notebook (it is not valid JSON: {error}). "
                                          "Submit the .ipynb file that Jupyter saves, not an export or a copy-paste.")
    except RecursionError:
        return None, "invalid-notebook", f"The file's JSON is nested too deeply to be a notebook. {_SAVE_AGAIN}"
    if isinstance(notebook, dict) and notebook.get("nbformat") in (1, 2, 3):
        return None, "invalid-notebook", (f"The file is JSON but not a Jupyter notebook of version 4: it has the old "
                                          f"format version {notebook['nbformat']}. {_SAVE_AGAIN}")
    cells = notebook.get("cells") if isinstance(notebook, dict) else None
    if not isinstance(cells, list) or notebook.get("nbformat") != 4 or not all(isinstance(c, dict) for c in cells):
        return None, "invalid-notebook", ("The file is JSON but not a Jupyter notebook (version 4 with a list of "
                                          "cells). Submit the .ipynb file that Jupyter saves.")
    problem = _structure_problem(notebook, lab)
    if problem:
        return None, "invalid-notebook", problem
    other = (notebook.get("metadata") or {}).get("course", {}) if isinstance(notebook.get("metadata"), dict) else {}
    other_lab = other.get("lab") if isinstance(other, dict) else None
    if other_lab and other_lab != lab.name:
        return None, "wrong-lab", f"This is the notebook of {str(other_lab)[:100]}, not {lab.name}: submit {lab.name}.ipynb."
    ids = {nbgrader_meta(c).get("grade_id") for c in cells} | {c.get("id") for c in cells}
    if not any(gid in ids or lab.cells[i].get("id") in ids for i, gid in lab.student_cells()):
        return None, "wrong-lab", (f"This notebook has none of the answer cells of {lab.name}: is it the right lab? "
                                   f"Start from a fresh copy of {lab.name}.ipynb and paste your answers into it.")
    return notebook, "", ""


def student_answers(lab: Lab, notebook: dict[str, Any]) -> dict[int, str | None]:
    """Source of the student's cell for each solution/written cell index (None when it is missing).

    Cells are matched by grade_id, then by cell id. Among duplicates (a copied cell), the last one that is
    not the unchanged released stub wins.
    """
    by_grade_id: dict[str, list[dict[str, Any]]] = {}
    by_id: dict[str, list[dict[str, Any]]] = {}
    for cell in notebook["cells"]:
        gid = nbgrader_meta(cell).get("grade_id")
        if isinstance(gid, str):
            by_grade_id.setdefault(gid, []).append(cell)
        if isinstance(cell.get("id"), str):
            by_id.setdefault(cell["id"], []).append(cell)
    answers: dict[int, str | None] = {}
    for index, gid in lab.student_cells():
        candidates = by_grade_id.get(gid) or by_id.get(lab.cells[index].get("id") or "") or []
        sources = [cell_source(c) for c in candidates]
        stub = stub_solution(cell_source(lab.cells[index]))[0] if lab.kinds[index] == "solution" else ANSWER_PLACEHOLDER
        changed = [s for s in sources if s.strip() != stub.strip()]
        answers[index] = (changed or sources or [None])[-1]
    return answers
