"""Grade one submission: its answer cells and the lab's own cells run in two processes, and what happened
becomes one status per question.

Only the student's solution cells (matched by nbgrader grade_id, falling back to the cell id) and written answers
come from the submission; every other cell (setup, visible and hidden tests) comes from the solution notebook, so
deleting, editing, moving or duplicating test cells changes nothing. The student's cells run in a sandboxed process;
the tests run in the trusted harness (utils.grading.harness), which reaches the student's names as data.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

from utils.grading.notebook import Lab, nbgrader_meta
from utils.grading.release import ANSWER_PLACEHOLDER, is_answer_marker
from utils.grading.server import HarnessServer, ServerError
from utils.grading.submission import parse_submission, student_answers

#: Every status a question (or a whole submission) can get.
STATUSES = {
    "passed": "the tests passed",
    "failed": "a test failed",
    "error": "a solution cell raised an exception",
    "timeout": "a cell ran longer than the time limit",
    "kernel-died": "the Python process died (crash, os._exit, segfault)",
    "memory": "the code needed more memory than the limit",
    "missing-cell": "the submission has no cell for this answer",
    "invalid-notebook": "the file is not a Jupyter notebook",
    "wrong-lab": "the notebook belongs to another lab",
    "needs-reading": "a written answer, to be read by a person",
    "grader-error": "the grader itself failed (not the student's fault): grade again",
}
MEMORY_ERRORS = {"MemoryError", "_ArrayMemoryError", "OutOfMemoryError"}
MESSAGE_LIMIT = 2000


@dataclass(frozen=True)
class Options:
    """Settings that change grading outcomes (they are part of the cache key)."""

    timeout: float = 60.0
    memory: int = 2 * 2**30
    output_limit: int = 1_000_000
    max_restarts: int = 10
    processes: int = 64
    disk: int = 256 * 2**20


class GraderError(RuntimeError):
    """The grader itself failed (not the student's fault); the result is reported but never cached."""


def _clip(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """Shorten long messages (the feedback must stay readable)."""
    return text if len(text) <= limit else text[:limit] + f"... [{len(text) - limit} more characters]"


def _question_result(lab: Lab, question, records: list[dict[str, Any]], answers: dict[int, str | None],
                     stopped: bool, options: Options) -> dict[str, Any]:
    """Score, status and message of one question from the cell records."""
    result = {"question": question.id, "score": 0.0, "max_score": question.points}
    if question.kind == "written":
        answer = answers.get(question.cell_index)
        if answer is None:
            return result | {"status": "missing-cell", "message": f"Your notebook has no cell for the written answer "
                             f"'{question.id}'. Paste your answer into a fresh copy of the lab."}
        text = "\n".join(line for line in answer.split("\n") if not is_answer_marker(line)).strip()
        empty = not text or text == ANSWER_PLACEHOLDER
        return result | {"status": "needs-reading", "message": "(no answer written)" if empty else _clip(text),
                         "answer": "" if empty else text}
    missing = [gid for gid in question.depends_on
               if answers.get(next(i for i, g in lab.student_cells() if g == gid)) is None]
    if missing:
        return result | {"status": "missing-cell", "message": "Your notebook has no cell with grade_id "
                         + ", ".join(repr(m) for m in missing) + " (deleted, or its metadata lost?). "
                         "Paste your code into a fresh copy of the lab."}
    test = records[question.cell_index]
    if test.get("passed"):
        return result | {"score": question.points, "status": "passed", "message": ""}
    by_grade_id = {nbgrader_meta(lab.cells[r["index"]]).get("grade_id"): r for r in records}
    for gid in question.depends_on:
        record = by_grade_id[gid]
        if record["status"] not in ("ok", "skipped"):
            return result | _problem(record, f"your code in cell '{gid}'", options)
    if test["status"] == "skipped":
        return result | {"status": "kernel-died" if stopped else "error",
                         "message": f"Not run: grading stopped after {options.max_restarts} restarts of your "
                                    "code's process (too many timeouts or crashes)."}
    if test["status"] == "error" and test["ename"] not in MEMORY_ERRORS:
        error = f"{test['ename']}: {test['evalue']}" if test["evalue"] else f"{test['ename']} (a test without a message failed)"
        return result | {"status": "failed", "message": error}
    return result | _problem(test, "the test", options)


def _problem(record: dict[str, Any], where: str, options: Options) -> dict[str, str]:
    """Status and message for a cell that raised, timed out, died or ran out of memory."""
    status = record["status"]
    if status == "error" and record.get("ename") in MEMORY_ERRORS or "memory" in record.get("death", ""):
        status = "memory"
    if status == "timeout":
        return {"status": "timeout", "message": f"While running {where}: stopped after {options.timeout:g} s "
                                                "(an infinite loop, or much slower than needed?)."}
    if status == "died":
        return {"status": "kernel-died", "message": f"While running {where}: the Python process of your code "
                                                    f"died ({record.get('death')}): a crash, os._exit() or a segfault."}
    if status == "memory":
        how = f"{record['ename']}: {record['evalue']}" if record.get("ename") else record.get("death")
        return {"status": "memory", "message": f"While running {where}: more memory than the limit of "
                                               f"{options.memory / 2**30:g} GiB was needed ({how})."}
    return {"status": "error", "message": f"{where[0].upper()}{where[1:]} raised {record['ename']}: {record['evalue']}"}


def time_limit(lab: Lab, options: Options) -> float:
    """Longest a whole submission may take before the grader gives up on it (a fault of the grader's)."""
    cells = sum(c.get("cell_type") == "code" for c in lab.cells)
    return options.timeout * cells * (2 + options.max_restarts) + 120


def grade_notebook(lab: Lab, data: bytes, server: HarnessServer, options: Options,
                   should_stop: Callable[[], bool] = lambda: False) -> dict[str, Any]:
    """Grade one submission's bytes; returns the result (questions, written answers, cell records, status)."""
    start = time.monotonic()
    notebook, status, message = parse_submission(data, lab)
    if notebook is None:
        questions = [{"question": q.id, "score": 0.0, "max_score": q.points, "status": status, "message": message}
                     for q in lab.questions]
        return {"status": status, "message": message, "score": 0.0, "max_score": lab.max_score,
                "questions": questions, "cells": [], "seconds": round(time.monotonic() - start, 3)}
    answers = student_answers(lab, notebook)
    try:
        ran = server.run(answers, time_limit(lab, options), should_stop)
    except ServerError as error:
        raise GraderError(str(error)) from None
    records, stopped = ran["records"], ran["stopped"]
    questions = [_question_result(lab, q, records, answers, stopped, options) for q in lab.questions]
    reading = any(q["status"] == "needs-reading" and q.get("answer") for q in questions)
    return {"status": "needs-reading" if reading else "graded", "message": "",
            "score": sum(q["score"] for q in questions), "max_score": lab.max_score,
            "questions": questions, "cells": records, "seconds": round(time.monotonic() - start, 3)}
