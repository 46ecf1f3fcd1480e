"""Grade one submission: rebuild the lab from the solution notebook with the student's answers, run it cell by
cell in a fresh kernel, and turn what happened into one status per question.

Only the student's solution cells (matched by nbgrader grade_id, falling back to the cell id) and written answers
come from the submission; every other cell (setup, visible and hidden tests) comes from the solution notebook,
so deleting, editing, moving or duplicating test cells changes nothing.
"""

from __future__ import annotations

import json
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from utils.grading.kernel import Kernel, Outcome, kernel_env
from utils.grading.notebook import Lab, cell_source, nbgrader_meta
from utils.grading.release import ANSWER_PLACEHOLDER, is_answer_marker, stub_solution
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
GUARD_SOURCE = (Path(__file__).parent / "kernel_guard.py").read_text(encoding="utf-8")
#: Seconds allowed for the grader's own bookkeeping cells (installing and running the guard).
GUARD_TIMEOUT = 30.0
MESSAGE_LIMIT = 2000


@dataclass(frozen=True)
class Options:
    """Settings that change grading outcomes (they are part of the cache key)."""

    timeout: float = 60.0
    memory: int = 2 * 2**30
    output_limit: int = 1_000_000
    max_restarts: int = 10


class GraderError(RuntimeError):
    """The grader itself failed (not the student's fault); the result is reported but never cached."""


def _clip(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """Shorten long messages (the feedback must stay readable)."""
    return text if len(text) <= limit else text[:limit] + f"... [{len(text) - limit} more characters]"


def _prepare_workdir(workdir: Path, library: Path) -> None:
    """The kernel's working directory: a copy of the course library (without the grader), nothing else."""
    workdir.mkdir(parents=True)
    shutil.copytree(library, workdir / library.name, ignore=shutil.ignore_patterns("grading", "__pycache__"))


def _cell_record(index: int, cell: dict[str, Any], kind: str, outcome: Outcome | None, status: str | None = None) -> dict[str, Any]:
    """What happened to one cell, as stored in the result."""
    record = {"index": index, "id": cell.get("id"), "kind": kind, "status": status or "ok"}
    if outcome is not None:
        memory = outcome.status == "error" and (outcome.ename in MEMORY_ERRORS or "can't allocate memory" in outcome.evalue)
        record.update(status=status or ("memory" if memory else outcome.status), ename=outcome.ename,
                      evalue=_clip(outcome.evalue), seconds=round(outcome.seconds, 3), death=outcome.death)
    return record


class _Run:
    """Executes the canonical notebook in one kernel, restarting and replaying after timeouts and crashes."""

    def __init__(self, kernel: Kernel, options: Options) -> None:
        self.kernel, self.options = kernel, options
        self.key = "_" + secrets.token_hex(16)
        self.replay: list[str | None] = []  # sources of cells to re-run after a restart; None = install the guard
        self.restarts = 0

    def install_guard(self) -> None:
        """Snapshot the trusted kernel state (just before the first student code runs)."""
        code = (f"(lambda m: (exec(compile({GUARD_SOURCE!r}, 'grader', 'exec'), vars(m)), m.install({self.key!r})))"
                f"(__import__('types').ModuleType({self.key!r}))")
        outcome = self.kernel.execute(code, GUARD_TIMEOUT, silent=True)
        if outcome.status != "ok":
            raise GraderError(f"could not install the grader's guard: {outcome.status} {outcome.ename}: {outcome.evalue}")
        self.replay.append(None)

    def run_cell(self, source: str) -> Outcome:
        """Run a setup or student cell; keep it for replay if it succeeded."""
        outcome = self.kernel.execute(source, self.options.timeout)
        if outcome.status == "ok":
            self.replay.append(source)
        return outcome

    def run_test(self, source: str) -> tuple[Outcome, bool]:
        """Restore the trusted state, run a test cell, and check it ran to its end; (outcome, guard worked).

        The test passes only if the kernel reports success AND the cell printed a fresh random nonce, which
        only running the whole test code can do (a hooked run_cell that reports success prints nothing).
        """
        restore = f"__import__('sys').modules[{self.key!r}].restore()"
        guard = self.kernel.execute(restore, GUARD_TIMEOUT, silent=True)
        if guard.status in ("timeout", "died"):
            return guard, False
        # Restoring again inside the test cell closes the gap between the two requests (event-loop callbacks).
        nonce, guard_module = secrets.token_hex(16), f"__import__('sys').modules[{self.key!r}]"
        code = f"{guard_module}.restore()\n{source.rstrip()}\n{guard_module}.write_marker({nonce!r})"
        outcome = self.kernel.execute(code, self.options.timeout, marker=nonce)
        return outcome, guard.status == "ok"

    def recover(self) -> None:
        """Restart the kernel and replay the cells that succeeded so far (dropping any that fail this time)."""
        while True:
            self.restarts += 1
            if self.restarts > self.options.max_restarts:
                raise _TooManyRestarts()
            self.kernel.restart()
            replay, self.replay = self.replay, []
            for position, source in enumerate(replay):
                if source is None:
                    self.install_guard()
                    continue
                outcome = self.kernel.execute(source, self.options.timeout)
                if outcome.status in ("timeout", "died"):
                    self.replay += [s for s in replay[position + 1:]]
                    break
                if outcome.status == "ok":
                    self.replay.append(source)
            else:
                return


class _TooManyRestarts(Exception):
    """The kernel had to be restarted more often than allowed: stop running this submission."""


def execute_lab(lab: Lab, answers: dict[int, str | None], kernel: Kernel, options: Options) -> tuple[list[dict[str, Any]], bool]:
    """Run the canonical notebook; returns one record per cell and whether the restart limit stopped the run."""
    run = _Run(kernel, options)
    first_student = min((i for i, k in enumerate(lab.kinds) if k == "solution"), default=len(lab.cells))
    records: list[dict[str, Any]] = []
    stopped = False
    for index, (cell, kind) in enumerate(zip(lab.cells, lab.kinds)):
        if cell.get("cell_type") != "code":
            records.append(_cell_record(index, cell, kind, None, "not-run"))
            continue
        if stopped:
            records.append(_cell_record(index, cell, kind, None, "skipped"))
            continue
        if index == first_student:
            run.install_guard()
        if kind == "test":
            outcome, guarded = run.run_test(cell_source(cell))
            record = _cell_record(index, cell, kind, outcome)
            record["passed"] = outcome.status == "ok" and outcome.marker_seen and guarded
            record["guarded"] = guarded
        else:
            source = answers.get(index) if kind == "solution" else cell_source(cell)
            if source is None:  # a missing answer cell: run the released stub so the notebook still runs
                source = stub_solution(cell_source(cell))[0]
            outcome = run.run_cell(source)
            record = _cell_record(index, cell, kind, outcome)
        records.append(record)
        if outcome.status in ("timeout", "died"):
            try:
                run.recover()
            except _TooManyRestarts:
                stopped = True
    return records, stopped


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
                         "message": f"Not run: grading stopped after {options.max_restarts} kernel restarts "
                                    "(too many timeouts or crashes)."}
    if test["status"] == "error":
        error = f"{test['ename']}: {test['evalue']}" if test["evalue"] else f"{test['ename']} (a test without a message failed)"
        return result | {"status": "failed", "message": error}
    if test["status"] == "ok":
        why = ("your code changed the kernel so that the grader's checks could not run" if not test.get("guarded")
               else "the test did not run to its end")
        return result | {"status": "failed", "message": f"The test did not count as passed: {why}."}
    return result | _problem(test, "the test", options)


def _problem(record: dict[str, Any], where: str, options: Options) -> dict[str, str]:
    """Status and message for a cell that raised, timed out, died or ran out of memory."""
    status = record["status"]
    if status == "timeout":
        return {"status": "timeout", "message": f"While running {where}: stopped after {options.timeout:g} s "
                                                "(an infinite loop, or much slower than needed?)."}
    if status == "died":
        return {"status": "kernel-died", "message": f"While running {where}: the Python kernel died "
                                                    f"({record.get('death')}): a crash, os._exit() or a segfault."}
    if status == "memory":
        return {"status": "memory", "message": f"While running {where}: more memory than the limit of "
                                               f"{options.memory / 2**30:g} GiB was needed "
                                               f"({record['ename']}: {record['evalue']})."}
    return {"status": "error", "message": f"{where[0].upper()}{where[1:]} raised {record['ename']}: {record['evalue']}"}


def grade_notebook(lab: Lab, data: bytes, workspace: Path, library: Path, specs: Path, shared: Path,
                   options: Options, should_stop: Callable[[], bool] = lambda: False) -> dict[str, Any]:
    """Grade one submission's bytes; returns the result (questions, written answers, cell records, status)."""
    start = time.monotonic()
    notebook, status, message = parse_submission(data, lab)
    if notebook is None:
        questions = [{"question": q.id, "score": 0.0, "max_score": q.points, "status": status, "message": message}
                     for q in lab.questions]
        return {"status": status, "message": message, "score": 0.0, "max_score": lab.max_score,
                "questions": questions, "cells": [], "seconds": round(time.monotonic() - start, 3)}
    answers = student_answers(lab, notebook)
    workdir = workspace / "work"
    _prepare_workdir(workdir, library)
    try:
        env = kernel_env(workdir, shared)
        with Kernel(workdir, specs, env, workspace / "kernel.log", should_stop) as kernel:
            records, stopped = execute_lab(lab, answers, kernel, options)
    finally:
        shutil.rmtree(workspace, ignore_errors=True)
    questions = [_question_result(lab, q, records, answers, stopped, options) for q in lab.questions]
    reading = any(q["status"] == "needs-reading" and q.get("answer") for q in questions)
    return {"status": "needs-reading" if reading else "graded", "message": "",
            "score": sum(q["score"] for q in questions), "max_score": lab.max_score,
            "questions": questions, "cells": records, "seconds": round(time.monotonic() - start, 3)}
