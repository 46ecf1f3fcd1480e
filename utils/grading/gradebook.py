"""Grade many submissions in parallel, with a cache, and write the gradebook and feedback atomically.

Outputs in the out folder: grades.csv (one row per question), summary.csv (one row per submission),
written.csv (written answers to read), feedback/<submission>.html, and .cache/<key>.json (one graded
submission each, written as soon as it is graded, so an interrupted run loses nothing already graded).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import tempfile
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from utils.grading.cache import CacheSigner
from utils.grading.feedback import feedback_html
from utils.grading.grader import Options, grade_notebook
from utils.grading.harness import job_options
from utils.grading.sandbox import prepare_library
from utils.grading.server import HarnessServer, Interrupted
from utils.grading.notebook import Lab
from utils.grading.spreadsheet import safe_cell
from utils.grading.submission import read_submission


GRADES_COLUMNS = ["submission", "lab", "question", "score", "max_score", "status", "message"]
SUMMARY_COLUMNS = ["submission", "id", "score", "max_score", "status"]
#: `score` is for the instructor to fill; `merge` and `export` fold it in (utils/grading/lms.py).
WRITTEN_COLUMNS = ["submission", "lab", "question", "max_score", "score", "answer"]
#: Columns whose plain numbers are written as numbers (every other cell is text, safe from formulas).
NUMERIC_COLUMNS = {"score", "max_score"}


class UsageError(ValueError):
    """Bad command-line input (unknown lab, no submissions, missing file): reported, exit code 2."""


@dataclass(frozen=True)
class Submission:
    """A submission's name in the gradebook (its path relative to the folder given, without .ipynb), file and
    student id (from the name, by `grade --id-pattern`; '' without one)."""

    name: str
    path: Path
    id: str = ""


def collect_submissions(paths: list[Path]) -> list[Submission]:
    """Expand files and folders (searched recursively for .ipynb, skipping hidden folders) into named submissions."""
    found: list[tuple[str, Path]] = []
    for path in paths:
        if path.is_dir():
            for file in sorted(path.rglob("*.ipynb")):
                relative = file.relative_to(path)
                if not any(part.startswith(".") for part in relative.parts):
                    found.append((relative.with_suffix("").as_posix(), file))
        elif path.is_file():
            found.append((path.name[: -len(".ipynb")] if path.name.endswith(".ipynb") else path.name, path))
        else:
            raise UsageError(f"no such file or folder: {path}")
    submissions, names, seen = [], set(), set()
    for name, file in found:
        if file.resolve() in seen:
            continue
        seen.add(file.resolve())
        unique, n = name, 1
        while unique in names:
            n += 1
            unique = f"{name}-{n}"
        names.add(unique)
        submissions.append(Submission(unique, file))
    return submissions


def atomic_write(path: Path, text: str) -> None:
    """Write a file so that readers see the old or the new content, never half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _csv(columns: list[str], rows: list[dict[str, Any]]) -> str:
    """CSV text with a header row; no cell can run as a spreadsheet formula (scores stay numbers)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: safe_cell(v, numeric=k in NUMERIC_COLUMNS) for k, v in row.items()} for row in rows)
    return buffer.getvalue()


def _grader_fingerprint() -> str:
    """Hash of the grader's own source: a change to the grading logic invalidates the cache."""
    digest = hashlib.sha256()
    for file in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(file.read_bytes())
    return digest.hexdigest()


class Gradebook:
    """Grades submissions of one lab into an out folder."""

    def __init__(self, lab: Lab, out: Path, options: Options, jobs: int = 1, force: bool = False, progress: bool = True,
                 *, sandbox: bool = True) -> None:
        self.lab, self.out, self.options = lab, out, options
        self.jobs, self.force, self.progress = max(1, jobs), force, progress
        #: False for `grade --no-sandbox`: student code then runs without bubblewrap (utils/grading/sandbox.py).
        self.sandbox = sandbox
        self.signer = CacheSigner(out)
        self.stop = threading.Event()
        self.server_lock, self._server, self.expected = threading.Lock(), None, 1
        settings = json.dumps({"grader": _grader_fingerprint(), "options": asdict(options), "sandbox": sandbox,
                               "lab": hashlib.sha256(lab.path.read_bytes()).hexdigest()}, sort_keys=True)
        self.salt = settings.encode()

    def cache_path(self, data: bytes) -> Path:
        """Where the result for these submission bytes is cached."""
        key = hashlib.sha256(self.salt + b"\0" + data).hexdigest()
        return self.out / ".cache" / f"{key}.json"

    def grade_one(self, submission: Submission, scratch: Path, index: int) -> tuple[dict[str, Any], bool]:
        """(result, from cache) for one submission; grader failures become a 'grader-error' result, not cached."""
        data, problem = read_submission(submission.path)
        if data is None:
            return self._failure(problem, "invalid-notebook"), False
        cache = self.cache_path(data)
        if not self.force and cache.exists():
            try:
                cached = self.signer.open(cache.name, cache.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError):
                cached = None
            if cached is not None:  # a forged or edited entry is graded again
                return cached, True
        try:
            result = grade_notebook(self.lab, data, self.server(scratch), self.options, self.stop.is_set)
        except Interrupted:
            raise
        except Exception as error:  # one broken submission or kernel must not stop the others
            return self._failure(f"the grader failed (not your fault; the instructor will look at it): "
                                 f"{type(error).__name__}: {error}", "grader-error"), False
        atomic_write(cache, self.signer.seal(cache.name, result))
        return result, False

    def server(self, scratch: Path) -> HarnessServer:
        """The lab's harness server, started on first use (a run that finds everything cached starts none)."""
        with self.server_lock:
            if self._server is None:
                library = prepare_library(scratch / "library", lab=self.lab.name)
                options = job_options(self.options, library, self.sandbox)
                self._server = HarnessServer(self.lab.name, self.lab.path.resolve(), scratch, options, self.jobs,
                                             self.expected)
            return self._server

    def _failure(self, message: str, status: str) -> dict[str, Any]:
        """A result with the same status and message on every question."""
        questions = [{"question": q.id, "score": 0.0, "max_score": q.points, "status": status, "message": message}
                     for q in self.lab.questions]
        return {"status": status, "message": message, "score": 0.0, "max_score": self.lab.max_score,
                "questions": questions, "cells": []}

    def run(self, submissions: list[Submission]) -> dict[str, dict[str, Any]]:
        """Grade all submissions (in parallel), writing the outputs as results arrive; returns results by name."""
        results: dict[str, dict[str, Any]] = {}
        self.expected = len(submissions)  # the harness server warms no more sandboxes than that
        self.out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="grading-") as tmp:
            scratch = Path(tmp)
            bar = tqdm(total=len(submissions), desc=f"grading {self.lab.name}", unit="notebook", disable=not self.progress)
            executor = ThreadPoolExecutor(max_workers=self.jobs)
            futures: dict[Future, Submission] = {
                executor.submit(self.grade_one, s, scratch, i): s for i, s in enumerate(submissions)}
            try:
                pending = set(futures)
                while pending:
                    done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                    for future in done:
                        submission = futures[future]
                        results[submission.name], cached = future.result()
                        bar.set_postfix_str(f"{submission.name}{' (cached)' if cached else ''}", refresh=False)
                        bar.update()
                    if done:
                        self.write_outputs(submissions, results, [futures[f].name for f in done])
            except BaseException:
                self.stop.set()
                executor.shutdown(wait=True, cancel_futures=True)
                raise
            finally:
                bar.close()
                if self._server is not None:
                    self._server.close()
                    self._server = None
            executor.shutdown(wait=True)
        return results

    def write_outputs(self, submissions: list[Submission], results: dict[str, dict[str, Any]], fresh: list[str]) -> None:
        """Rewrite grades.csv, summary.csv and written.csv from all results, and the feedback pages of `fresh` ones."""
        from utils.grading.lms import filled_written_scores, kept_score  # lms builds on this module

        lab, grades, summary, written = self.lab.name, [], [], []
        scored = filled_written_scores(self.out / "written.csv")  # re-grading keeps the points already entered
        for submission in submissions:
            result = results.get(submission.name)
            if result is None:
                continue
            for q in result["questions"]:
                grades.append({"submission": submission.name, "lab": lab, **q, "score": _score(q)})
                if q["status"] == "needs-reading":
                    row = {"submission": submission.name, "lab": lab, "question": q["question"],
                           "max_score": q["max_score"], "answer": q.get("answer", "")}
                    written.append(row | {"score": kept_score(scored, row)})
            summary.append({"submission": submission.name, "id": submission.id, "score": _score(result),
                            "max_score": result["max_score"], "status": result["status"]})
            if submission.name in fresh:
                atomic_write(self.out / "feedback" / f"{submission.name}.html", feedback_html(submission.name, lab, result))
        atomic_write(self.out / "grades.csv", _csv(GRADES_COLUMNS, grades))
        atomic_write(self.out / "summary.csv", _csv(SUMMARY_COLUMNS, summary))
        if any(q.kind == "written" for q in self.lab.questions):
            atomic_write(self.out / "written.csv", _csv(WRITTEN_COLUMNS, written))


def _score(entry: dict[str, Any]) -> float | str:
    """The score to write for a result or question: empty when the grader failed (it is not a zero)."""
    return "" if entry["status"] == "grader-error" else entry["score"]


def summary_table(submissions: list[Submission], results: dict[str, dict[str, Any]]) -> str:
    """A plain-text table of every submission's score and status, with counts per status."""
    shown = {name: "?" if _score(r) == "" else f"{r['score']:g}" for name, r in results.items()}  # ?: grader failed
    rows = [(s.name, f"{shown[s.name]} / {results[s.name]['max_score']:g}", results[s.name]["status"])
            for s in submissions if s.name in results]
    header = ("submission", "score", "status")
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(3)]
    line = "  ".join("{:<%d}" % w for w in widths)
    counts: dict[str, int] = {}
    for row in rows:
        counts[row[2]] = counts.get(row[2], 0) + 1
    text = [line.format(*header), line.format(*("-" * w for w in widths))] + [line.format(*r) for r in rows]
    text.append(f"{len(rows)} submissions: " + ", ".join(f"{n} {status}" for status, n in sorted(counts.items())))
    return "\n".join(text)
