"""Grade many submissions in parallel, with a cache, into a grading output folder.

Each graded submission is cached in .cache/<key>.json as soon as it is graded and recorded in the folder's record;
the CSV files and feedback pages are made from the record and the scores a person entered by
utils/grading/scores.py, so every run describes every submission ever graded into the folder.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from utils.grading.cache import CacheSigner
from utils.grading.grader import Options, grade_notebook
from utils.grading.harness import job_options
from utils.grading.lms import canvas_late
from utils.grading.notebook import Lab
from utils.grading.sandbox import prepare_library
from utils.grading.scores import (GRADES_COLUMNS, SUMMARY_COLUMNS, WRITTEN_COLUMNS, Record, Report, UsageError,
                                  atomic_write, csv_text, load_record, publish, read_entered)
from utils.grading.server import HarnessServer, Interrupted
from utils.grading.submission import read_submission

__all__ = ["GRADES_COLUMNS", "SUMMARY_COLUMNS", "WRITTEN_COLUMNS", "UsageError", "atomic_write", "Submission",
           "collect_submissions", "Gradebook", "summary_table"]
_csv = csv_text  # the name older tests and tools use
#: Least seconds between two rewrites of the outputs while grading (they are always rewritten at the end).
PUBLISH_EVERY = 2.0


@dataclass(frozen=True)
class Submission:
    """A submission's name in the gradebook (its path relative to the folder given, without .ipynb), file,
    student id (from the name, by `grade --id-pattern`; '' without one) and whether it came in late."""

    name: str
    path: Path
    id: str = ""
    late: bool = False


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
        submissions.append(Submission(unique, file, late=canvas_late(name)))
    return submissions


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
        #: Which grader, lab and options graded a result (merge refuses to mix them).
        self.settings = hashlib.sha256(self.salt).hexdigest()[:16]
        self.record: Record | None = None
        self.report: Report | None = None

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

    def prepare(self, submissions: list[Submission], classlist: list[str], shard: str | None = None) -> Record:
        """Load or start the folder's record and list `submissions` in it (saved before grading starts, so an
        interrupted run leaves a folder that says what is missing). Refuses a folder of another lab or shard,
        and a written.csv that cannot be read (before anything is graded)."""
        if self.out.exists() and not self.out.is_dir():
            raise UsageError(f"--out {self.out} is a file, not a folder: give a new folder or a grading output folder")
        record = load_record(self.out, upgrade=True)
        questions = [{"id": q.id, "points": q.points, "kind": q.kind} for q in self.lab.questions]
        if record is None:
            record = Record(self.lab.name, questions, shard)
        elif (record.lab, record.shard) != (self.lab.name, shard):
            held = record.lab + (f", shard {record.shard}" if record.shard else "")
            raise UsageError(f"{self.out} holds the grades of {held}: give each lab and each shard its own --out "
                             f"folder")
        record.questions = questions
        record.classlist = sorted(set(record.classlist) | set(classlist))
        record.listed = sorted(set(record.listed) | {s.name for s in submissions})
        read_entered(self.out / "written.csv", record)
        self.out.mkdir(parents=True, exist_ok=True)
        record.save(self.out)
        self.record = record
        return record

    def record_result(self, submission: Submission, result: dict[str, Any]) -> None:
        """Put one graded submission's result into the record (without the cell records, kept in the cache)."""
        before = self.record.results.get(submission.name, {})  # a late flag from Moodle's dates (export --due) stays
        late = submission.late or canvas_late(submission.name) or bool(before.get("late"))
        self.record.results[submission.name] = {
            **{k: v for k, v in result.items() if k not in ("cells", "seconds")},
            "id": submission.id, "late": late, "settings": self.settings}

    def publish(self, pages: set[str] | None = None, final: bool = False) -> Report | None:
        """Save the record and rewrite the outputs; while grading, a written.csv saved unreadable meanwhile only
        postpones the rewrite (the final one reports it)."""
        self.record.save(self.out)
        try:
            return publish(self.out, self.record, pages)
        except UsageError:
            if final:
                raise
            return None

    def run(self, submissions: list[Submission]) -> dict[str, dict[str, Any]]:
        """Grade all submissions (in parallel), recording results as they arrive; returns this run's results."""
        if self.record is None:
            self.prepare(submissions, [s.name for s in submissions])
        results: dict[str, dict[str, Any]] = {}
        self.expected = len(submissions)  # the harness server warms no more sandboxes than that
        fresh: set[str] = set()
        last, every = time.monotonic(), PUBLISH_EVERY
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
                        self.record_result(submission, results[submission.name])
                        fresh.add(submission.name)
                        bar.set_postfix_str(f"{submission.name}{' (cached)' if cached else ''}", refresh=False)
                        bar.update()
                    if fresh and time.monotonic() - last > every:
                        began = time.monotonic()
                        self.publish(fresh)
                        fresh, last = set(), time.monotonic()
                        every = max(PUBLISH_EVERY, 10 * (last - began))  # a big class: rewrite less often
            except BaseException:
                self.stop.set()
                executor.shutdown(wait=True, cancel_futures=True)
                raise
            finally:
                bar.close()
                if self._server is not None:
                    self._server.close()
                    self._server = None
                self.report = self.publish(final=True)
            executor.shutdown(wait=True)
        return results

    def write_outputs(self, submissions: list[Submission], results: dict[str, dict[str, Any]], fresh: list[str]) -> None:
        """Record `results` and rewrite the outputs (the feedback pages of `fresh` ones, and any that changed)."""
        if self.record is None:
            self.prepare(submissions, [s.name for s in submissions])
        for submission in submissions:
            if submission.name in results:
                self.record_result(submission, results[submission.name])
        self.report = self.publish(final=True)


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
