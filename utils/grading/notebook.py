"""The lab model: what each cell of an nbgrader-style solution notebook is, and which cells a question depends on.

A lab's source is `solutions/<lab>/<lab>.ipynb`. Cells carry nbgrader metadata (`grade`, `solution`, `points`,
`grade_id`, ...), so a course running nbgrader can use the same notebooks unchanged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

#: The kinds of cells the grader distinguishes.
#: solution: code the student writes; written: a markdown answer read by a person;
#: test: a graded test cell; fixed: everything else (setup, prose, demos), always taken from the source.
CellKind = Literal["solution", "written", "test", "fixed"]

#: Tag lab authors put on a source cell that depends on student work (it fails in the unfilled lab).
FAILS_UNFILLED = "fails-unfilled"
#: Tag that tells nbval and Jupyter Book that a cell is meant to raise.
RAISES_EXCEPTION = "raises-exception"


class LabError(ValueError):
    """A solution notebook breaks the authoring rules; the message names the cell and the fix."""


def cell_source(cell: dict[str, Any]) -> str:
    """A cell's source as one string (on disk it may be a list of lines)."""
    source = cell.get("source", "")
    return "".join(map(str, source)) if isinstance(source, list) else str(source)


def nbgrader_meta(cell: dict[str, Any]) -> dict[str, Any]:
    """The cell's nbgrader metadata, or {} when it has none (or it is malformed)."""
    meta = cell.get("metadata")
    nbgrader = meta.get("nbgrader") if isinstance(meta, dict) else None
    return nbgrader if isinstance(nbgrader, dict) else {}


def cell_kind(cell: dict[str, Any]) -> CellKind:
    """Classify a source cell by its nbgrader metadata (raises LabError on combinations we do not support)."""
    meta = nbgrader_meta(cell)
    solution, grade = bool(meta.get("solution")), bool(meta.get("grade"))
    code = cell.get("cell_type") == "code"
    where = f"cell {cell.get('id')!r} (grade_id {meta.get('grade_id')!r})"
    if meta.get("task"):
        raise LabError(f"{where}: nbgrader task cells are not supported; use a markdown written-answer cell.")
    if solution and grade and code:
        raise LabError(f"{where}: a code cell that is both solution and graded (manually graded code) is not "
                       "supported; split it into a solution cell and a test cell.")
    if solution and not code:
        if not grade:
            raise LabError(f"{where}: a markdown solution cell must be graded (grade: true, points: N).")
        return "written"
    if solution:
        return "solution"
    if grade:
        if not code:
            raise LabError(f"{where}: a graded cell that is not a solution must be a code (test) cell.")
        return "test"
    return "fixed"


@dataclass(frozen=True)
class Question:
    """One graded item: a test cell (auto-graded) or a written answer (read by a person)."""

    id: str
    points: float
    kind: Literal["test", "written"]
    cell_index: int
    #: grade_ids of the solution cells this question tests (those since the previous group of test cells).
    depends_on: tuple[str, ...] = ()


@dataclass
class Lab:
    """A parsed solution notebook: its cells, their kinds, and its questions in notebook order."""

    name: str
    path: Path
    notebook: dict[str, Any]
    kinds: list[CellKind]
    questions: list[Question] = field(default_factory=list)

    @property
    def cells(self) -> list[dict[str, Any]]:
        """The source notebook's cells."""
        return self.notebook["cells"]

    @property
    def max_score(self) -> float:
        """Total points of the lab."""
        return sum(q.points for q in self.questions)

    def student_cells(self) -> list[tuple[int, str]]:
        """(index, grade_id) of every cell whose content comes from the student (solution and written cells)."""
        return [(i, nbgrader_meta(c)["grade_id"]) for i, c in enumerate(self.cells) if self.kinds[i] in ("solution", "written")]


def read_notebook(path: Path) -> dict[str, Any]:
    """Read a notebook file as plain JSON (no upgrade, no validation)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def parse_lab(name: str, path: Path) -> Lab:
    """Parse and check a solution notebook: unique grade_ids, points on graded cells, question dependencies."""
    notebook = read_notebook(path)
    if not isinstance(notebook.get("cells"), list):
        raise LabError(f"{path}: not a notebook (no list of cells).")
    kinds = [cell_kind(cell) for cell in notebook["cells"]]
    lab = Lab(name=name, path=Path(path), notebook=notebook, kinds=kinds)
    seen: set[str] = set()
    pending: list[str] = []  # solution cells since the last test cell
    current: tuple[str, ...] = ()  # what the current group of test cells depends on
    for index, (cell, kind) in enumerate(zip(notebook["cells"], kinds)):
        if kind == "fixed":
            continue
        meta = nbgrader_meta(cell)
        grade_id = meta.get("grade_id")
        if not isinstance(grade_id, str) or not grade_id:
            raise LabError(f"{path}: cell {cell.get('id')!r} has nbgrader metadata but no grade_id.")
        if grade_id in seen:
            raise LabError(f"{path}: grade_id {grade_id!r} is used by more than one cell.")
        seen.add(grade_id)
        if kind == "solution":
            pending.append(grade_id)
        elif kind == "test":
            if pending:
                current, pending = tuple(pending), []
            lab.questions.append(Question(grade_id, _points(meta, path, grade_id), "test", index, current))
        else:
            lab.questions.append(Question(grade_id, _points(meta, path, grade_id), "written", index))
    if not lab.questions:
        raise LabError(f"{path}: the lab has no graded cells.")
    return lab


def _points(meta: dict[str, Any], path: Path, grade_id: str) -> float:
    """The points of a graded cell (must be a non-negative number)."""
    points = meta.get("points")
    if isinstance(points, bool) or not isinstance(points, (int, float)) or points < 0:
        raise LabError(f"{path}: graded cell {grade_id!r} needs 'points' (a non-negative number).")
    return float(points)


def find_labs(solutions: Path) -> dict[str, Path]:
    """Every lab in a solutions folder: `<solutions>/<lab>/<lab>.ipynb`, by lab name."""
    if not solutions.is_dir():
        return {}
    return {p.parent.name: p for p in sorted(solutions.glob("*/*.ipynb")) if p.stem == p.parent.name}
