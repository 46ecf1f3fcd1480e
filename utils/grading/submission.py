"""A submission as the grader reads it: check that the bytes are a notebook of the right lab, and pick out the
student's answer cells (matched by nbgrader grade_id, falling back to the cell id)."""

from __future__ import annotations

import json
from typing import Any

from utils.grading.notebook import Lab, cell_source, nbgrader_meta
from utils.grading.release import ANSWER_PLACEHOLDER, stub_solution


def parse_submission(data: bytes, lab: Lab) -> tuple[dict[str, Any] | None, str, str]:
    """(notebook, "", "") for a readable notebook of this lab, else (None, status, message)."""
    if not data.strip():
        return None, "invalid-notebook", "The file is empty. Save the notebook in Jupyter and submit the .ipynb again."
    try:
        notebook = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        return None, "invalid-notebook", (f"The file is not a Jupyter notebook (it is not valid JSON: {error}). "
                                          "Submit the .ipynb file that Jupyter saves, not an export or a copy-paste.")
    cells = notebook.get("cells") if isinstance(notebook, dict) else None
    if not isinstance(cells, list) or notebook.get("nbformat") != 4 or not all(isinstance(c, dict) for c in cells):
        return None, "invalid-notebook", ("The file is JSON but not a Jupyter notebook (version 4 with a list of "
                                          "cells). Submit the .ipynb file that Jupyter saves.")
    other = (notebook.get("metadata") or {}).get("course", {}) if isinstance(notebook.get("metadata"), dict) else {}
    other_lab = other.get("lab") if isinstance(other, dict) else None
    if other_lab and other_lab != lab.name:
        return None, "wrong-lab", f"This is the notebook of {other_lab}, not {lab.name}: submit {lab.name}.ipynb."
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
