"""The one home of a class's scores: what the grader found, what a person entered, and every file made from them.

A grading output folder holds
- grading.json, the record (written only by the tools): the lab and its questions, the class list the folder was
  graded from, the submissions it must hold (a shard's part of the class) and each graded submission's automatic
  result, settings fingerprint and late flag;
- written.csv, the scores a person enters, one row per submission and question: the written answers are listed
  for reading, and a row added for any other question overrides the grader's score. It is read strictly, keyed on
  submission and question (never on the answer's text), and rewritten with every row it had: nothing typed is lost;
- rubric.json, the review page's rubric (utils/grading/review.py): per written question its items and which items
  and typed score each answer was given (the scores themselves live in written.csv);
- grades.csv, summary.csv and feedback/, made from those two by `publish` whenever either changes, so the CSVs,
  the feedback pages and an export always agree.
`grade`, `merge`, `export` and `review` read and write a folder only through this module.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import math
import os
import tempfile
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable

from utils.grading.feedback import feedback_html
from utils.grading.spreadsheet import safe_cell

RECORD, WRITTEN, GRADES, SUMMARY, RUBRIC = "grading.json", "written.csv", "grades.csv", "summary.csv", "rubric.json"
RUBRIC_FORMAT = 1
RECORD_FORMAT = 2
GRADES_COLUMNS = ["submission", "lab", "question", "score", "max_score", "status", "message"]
SUMMARY_COLUMNS = ["submission", "id", "late", "score", "max_score", "status", "message", "feedback"]
#: `score`, `note` and `comment` are the person's (the note stays private; the comment is shown on the student's
#: feedback page); `check` is the tool's (a reason to look again, cleared by the person).
WRITTEN_COLUMNS = ["submission", "lab", "question", "max_score", "score", "answer", "check", "note", "comment"]
#: Columns whose plain numbers are written as numbers (every other cell is text, safe from formulas).
NUMERIC_COLUMNS = {"score", "max_score"}
#: Statuses the scores module adds to the grader's: a written answer a person scored, a score a person overrode,
#: a listed submission not graded yet.
READ, OVERRIDE, NOT_GRADED = "read", "override", "not-graded"
CHANGED = "answer changed since it was scored: read it again, then empty this cell"
#: Excel keeps at most this many characters in a cell: a longer answer comes back cut.
SPREADSHEET_CELL = 32767
#: A file name longer than this many bytes is shortened (Linux allows 255; the atomic write adds a few).
NAME_BYTES = 180
_UMASK = os.umask(0)
os.umask(_UMASK)
#: Held while a folder's entered scores are read, changed and written back (the review page serves several tabs).
_ENTERING = threading.RLock()


class UsageError(ValueError):
    """Bad input (unknown lab, unreadable file, a refusal): reported with what to do, exit code 2."""


# ------------------------------------------------------------------------------------------------- files


def atomic_write(path: Path, text: str) -> None:
    """Write a file so that readers see the old or the new content, never half of it; its mode follows the
    umask, like any file the user writes (a course's group can read the outputs)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def csv_text(columns: list[str], rows: Iterable[dict[str, Any]]) -> str:
    """CSV text with a header row; no cell can run as a spreadsheet formula (scores stay numbers)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: safe_cell(v, numeric=k in NUMERIC_COLUMNS) for k, v in row.items()} for row in rows)
    return buffer.getvalue()


def decode_strictly(path: Path) -> str:
    """The text of a file a person may have re-saved: UTF-8 with or without a byte-order mark, else refused.

    Windows spreadsheets save "CSV" in cp1252, which cannot be told apart from latin-1 or Mac Roman with
    certainty, so nothing is guessed: the message says how to save it as UTF-8.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"no such file: {path}") from None
    except PermissionError:
        raise UsageError(f"cannot read {path}: permission denied (ask its owner to make the folder readable by "
                         f"your group: chmod -R g+rX)") from None
    how = ("Open it in your spreadsheet and save it again as 'CSV UTF-8 (Comma delimited)' (Excel) or as 'Text "
           "CSV' with character set 'Unicode (UTF-8)' (LibreOffice: File > Save As, tick 'Edit filter settings'); "
           "nothing was read from it or changed.")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise UsageError(f"{path} is saved as UTF-16 ('Unicode Text'), not UTF-8. {how}")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise UsageError(f"{path} is not UTF-8 (byte {data[error.start]:#04x} at offset {error.start}): a "
                         f"spreadsheet probably saved it in the Windows encoding (cp1252). {how}") from None


def read_table(path: Path, required: tuple[str, ...] = ()) -> tuple[list[str], list[dict[str, str]]]:
    """(columns, rows) of a CSV file read strictly; the delimiter may be ',', ';' (comma-decimal locales) or tab."""
    text = decode_strictly(path)
    first = text.split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=first.count)
    try:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
        table = [row for row in reader]
    except csv.Error as error:
        raise UsageError(f"{path} is not a readable CSV file: {error}") from None
    if not table:
        raise UsageError(f"{path} is empty")
    columns = [c.strip() for c in table[0]]
    missing = [c for c in required if c not in columns]
    if missing:
        raise UsageError(f"{path} has no column {', '.join(map(repr, missing))} (its header is {columns})")
    padded = (row + [""] * (len(columns) - len(row)) for row in table[1:] if any(c.strip() for c in row))
    rows = [dict(zip(columns, row)) for row in padded]
    return columns, rows


# ------------------------------------------------------------------------------------------------- numbers


def parse_score(text: str | None, maximum: float | None = None, where: str = "") -> float | None:
    """A score cell as a number (None when empty); raises UsageError for text or a value outside [0, maximum]."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        value = float(text.replace(",", "."))  # 7,5 as a spreadsheet in a comma-decimal locale writes it
    except ValueError:
        raise UsageError(f"{where}: score {text!r} is not a number") from None
    if not math.isfinite(value) or value < 0 or (maximum is not None and value > maximum + 1e-9):
        raise UsageError(f"{where}: score {text!r} is outside 0..{maximum:g}" if maximum is not None
                         else f"{where}: score {text!r} is not a finite, non-negative number")
    return value


def format_score(value: float | None) -> str:
    """A score for a CSV cell: '' for none, no trailing zeros (7.5, 12)."""
    return "" if value is None else f"{round(value, 4):g}"


def unprotect(cell: str, known: set[str] = frozenset()) -> str:
    """A cell as the tool wrote it before formula protection: a known value as it is, else without the apostrophe
    that `safe_cell` added (a spreadsheet shows and re-saves such cells without it)."""
    if cell in known or not cell.startswith("'"):
        return cell
    return cell[1:] if safe_cell(cell[1:]) == cell else cell


def _same_answer(stored: str, current: str) -> bool:
    """Whether a written.csv answer is the current answer, allowing for what a spreadsheet does to it (the
    apostrophe removed, CRLF line ends, a cell cut at Excel's limit)."""
    normal = lambda text: unprotect(text).replace("\r\n", "\n").replace("\r", "\n").strip()
    a, b = normal(stored), normal(current)
    return a == b or (len(a) >= SPREADSHEET_CELL - 100 and b.startswith(a))


# ------------------------------------------------------------------------------------------------- the record


@dataclass
class Record:
    """grading.json: what a folder was graded from, and each graded submission's automatic result."""

    lab: str
    questions: list[dict[str, Any]]
    shard: str | None = None
    classlist: list[str] = field(default_factory=list)
    listed: list[str] = field(default_factory=list)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def max_score(self) -> float:
        return sum(q["points"] for q in self.questions)

    def missing(self) -> list[str]:
        """Listed submissions without a result (an interrupted run, or a list not graded yet)."""
        return sorted(set(self.listed) - set(self.results))

    def settings(self) -> set[str]:
        """The settings fingerprints the results were graded with (one, in a consistent folder)."""
        return {r.get("settings", "") for r in self.results.values()}

    def to_json(self) -> str:
        return json.dumps({"format": RECORD_FORMAT, "lab": self.lab, "questions": self.questions,
                           "shard": self.shard, "class": sorted(self.classlist), "listed": sorted(self.listed),
                           "results": {k: self.results[k] for k in sorted(self.results)}}, indent=1) + "\n"

    def save(self, folder: Path) -> None:
        atomic_write(folder / RECORD, self.to_json())


def load_record(folder: Path, upgrade: bool = False) -> Record | None:
    """The folder's record, None when there is none; an older or damaged one is refused, or with `upgrade` (when
    grading into the folder) started afresh with the older one's lab and shard (its results are graded again)."""
    path = folder / RECORD
    if not path.exists():
        if (folder / SUMMARY).exists() and not upgrade:
            raise UsageError(f"{folder} was graded by an older version of the grader (no results in {RECORD}): "
                             f"grade it again into the same --out (the cache makes this quick)")
        return None
    try:
        data = json.loads(decode_strictly(path))
    except ValueError as error:
        raise UsageError(f"{path} is damaged ({error}): grade again into a new --out folder") from None
    if data.get("format") != RECORD_FORMAT and upgrade:
        return Record(str(data.get("lab", "")), [], data.get("shard"))
    if data.get("format") != RECORD_FORMAT:
        raise UsageError(f"{folder} was graded by an older version of the grader: grade it again into the same "
                         f"--out (the cache makes this quick)")
    return Record(data["lab"], data["questions"], data.get("shard"), data.get("class", []), data.get("listed", []),
                  data.get("results", {}))


def require_record(folder: Path) -> Record:
    """The record of a folder that must be a grading output folder."""
    record = load_record(folder)
    if record is None:
        raise UsageError(f"{folder} is not a grading output folder (no {RECORD}): give the --out folder of `grade`")
    return record


# ------------------------------------------------------------------------------------------------- entered scores


@dataclass
class Entered:
    """One row of written.csv: a score a person entered (or a written answer still to score)."""

    submission: str
    question: str
    score: float | None
    answer: str
    check: str
    note: str
    comment: str
    line: int
    source: Path
    raw: dict[str, str] = field(default_factory=dict)

    def typed_text(self) -> bool:
        """Whether a person wrote a note or a comment in this row (kept even without a score)."""
        return bool(self.note.strip() or self.comment.strip())


def read_entered(path: Path, record: Record) -> list[Entered]:
    """The rows of a written.csv, read strictly: bad encodings, bad numbers and repeated rows are refused."""
    if not path.exists():
        return []
    _, rows = read_table(path, ("submission", "question", "score"))
    names = set(record.results) | set(record.listed)
    points = {q["id"]: q["points"] for q in record.questions}
    entered, seen = [], {}
    for line, row in enumerate(rows, start=2):
        submission = unprotect(row.get("submission", ""), names)
        question = row.get("question", "").strip()
        where = f"{path} line {line}"
        score = parse_score(row.get("score"), points.get(question), where)
        key = (submission, question)
        if key in seen:
            raise UsageError(f"{where} and line {seen[key]} both hold {submission!r} {question}: keep one of them "
                             f"(delete the other row) and run the command again")
        seen[key] = line
        entered.append(Entered(submission, question, score, row.get("answer", ""), row.get("check", "").strip(),
                               row.get("note", ""), row.get("comment", ""), line, path, row))
    return entered


def combine_entered(sources: list[list[Entered]]) -> tuple[list[Entered], list[str]]:
    """Entries from several written.csv files (merging): for one submission and question, a score beats an empty
    cell (a re-graded shard's fresh file never erases one), and when two scores differ the file saved last wins.
    Returns the entries and a description of each conflict."""
    chosen: dict[tuple[str, str], Entered] = {}
    conflicts = []
    for entries in sources:
        for entry in entries:
            key = (entry.submission, entry.question)
            other = chosen.get(key)
            if other is not None and None not in (other.score, entry.score) and other.score != entry.score:
                newer = max((other, entry), key=lambda e: e.source.stat().st_mtime_ns)
                conflicts.append(f"{key[0]!r} {key[1]}: {format_score(other.score) or 'empty'} in {other.source}, "
                                 f"{format_score(entry.score) or 'empty'} in {entry.source}; kept "
                                 f"{format_score(newer.score) or 'empty'} (saved last)")
                chosen[key] = newer
            elif other is None or entry.score is not None:
                chosen[key] = entry
    return list(chosen.values()), conflicts


# ------------------------------------------------------------------------------------------------- the view


@dataclass
class Report:
    """What `publish` found that a person must know."""

    unmatched: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unscored: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)


def feedback_file(name: str) -> str:
    """The feedback page's path for a submission name, relative to feedback/: each part kept if short enough,
    else cut and made unique with a hash (an LMS's prefixes make names longer than a file name may be)."""
    parts = []
    for part in name.split("/"):
        if part in ("", ".", ".."):
            part = "_"
        if len(part.encode()) > NAME_BYTES:
            digest = hashlib.sha256(part.encode()).hexdigest()[:12]
            part = part.encode()[:NAME_BYTES - 13].decode("utf-8", "ignore") + "-" + digest
        parts.append(part)
    return "/".join(parts) + ".html"


def effective(record: Record, entered: list[Entered], report: Report) -> tuple[dict[str, dict[str, Any]], list[dict]]:
    """Each graded submission's result with the entered scores folded in, and written.csv's rows (every entry
    kept, with its `check` brought up to date)."""
    by_key = {(e.submission, e.question): e for e in entered}
    used: set[tuple[str, str]] = set()
    views, written = {}, []
    for name in sorted(record.results):
        result = record.results[name]
        questions = []
        for q in result["questions"]:
            q = dict(q)
            entry = by_key.get((name, q["question"]))
            if entry is not None:
                used.add((name, q["question"]))
            kept = entry.check if entry and entry.check.startswith(CHANGED[:14]) else ""  # only this check persists
            if q["status"] == "needs-reading":
                answer = q.get("answer", "")
                check = kept
                if entry and entry.score is not None and not check and not _same_answer(entry.answer, answer):
                    check = CHANGED
                if entry and entry.comment.strip():
                    q["comment"] = entry.comment.strip()
                if entry and entry.score is not None:
                    q["score"], q["status"] = entry.score, READ
                    if check:
                        report.changed.append(f"{name} {q['question']}")
                elif answer:
                    report.unscored.append(f"{name} {q['question']}")
                written.append({"submission": name, "lab": record.lab, "question": q["question"],
                                "max_score": q["max_score"], "score": format_score(entry.score) if entry else "",
                                "answer": answer, "check": check, "note": entry.note if entry else "",
                                "comment": entry.comment if entry else ""})
            elif entry is not None and entry.score is not None and q["status"] != "grader-error":
                # a score given to a written answer that is gone (the file was replaced) must be looked at again
                check = kept or (CHANGED if entry.answer.strip() else "")
                if check:
                    report.changed.append(f"{name} {q['question']}")
                given = format_score(q["score"])
                q["score"], q["status"] = entry.score, OVERRIDE
                q["message"] = f"Score set by the instructor (the grader gave {given}). {q.get('message', '')}".strip()
                if entry.comment.strip():
                    q["comment"] = entry.comment.strip()
                written.append({"submission": name, "lab": record.lab, "question": q["question"],
                                "max_score": q["max_score"], "score": format_score(entry.score), "answer": "",
                                "check": check, "note": entry.note, "comment": entry.comment})
            elif entry is not None and (entry.score is not None or entry.typed_text()):
                written.append(_entry_row(entry, record.lab, ""))  # the grader failed: kept for the next run
            questions.append(q)
        views[name] = _summarize(result, questions)
    pending = set(record.listed) - set(record.results)
    for entry in entered:
        if (entry.submission, entry.question) in used:
            continue
        if entry.submission in pending and entry.score is not None:  # kept for when it is graded
            written.append(_entry_row(entry, record.lab, ""))
            continue
        if entry.score is None and not entry.typed_text():
            continue  # an empty row for an answer that is no longer there: nothing a person entered
        why = (f"no submission {entry.submission!r} in this folder" if entry.submission not in record.results
               else f"{record.lab} has no question {entry.question!r}" if entry.question not in
               {q["id"] for q in record.questions} else "the grader failed on this submission: grade it again")
        report.unmatched.append(f"{entry.source} line {entry.line} ({entry.submission!r} {entry.question}): {why}")
        written.append(_entry_row(entry, record.lab, f"not matched: {why}"))
    return views, written


def _entry_row(entry: Entered, lab: str, check: str) -> dict[str, Any]:
    """written.csv's row for an entry kept as the person wrote it."""
    return {"submission": entry.submission, "lab": lab, "question": entry.question,
            "max_score": entry.raw.get("max_score", ""), "score": format_score(entry.score), "answer": entry.answer,
            "check": check, "note": entry.note, "comment": entry.comment}


def _summarize(result: dict[str, Any], questions: list[dict[str, Any]]) -> dict[str, Any]:
    """A result with new question scores: total and status recomputed."""
    failed = any(q["status"] == "grader-error" for q in questions)
    reading = any(q["status"] == "needs-reading" and q.get("answer") for q in questions)
    status = result["status"] if result["status"] not in ("graded", "needs-reading") else \
        "needs-reading" if reading else "graded"
    return {**result, "questions": questions, "status": status,
            "score": None if failed else sum(q["score"] for q in questions)}


def publish(folder: Path, record: Record, pages: set[str] | None = None,
            entered: list[Entered] | None = None) -> Report:
    """Write grades.csv, summary.csv, written.csv and the feedback pages from the record and the entered scores.

    A feedback page is written when its content changes (`pages`, if given, limits that to those submissions).
    A page that cannot be written is that submission's message, never the end of the run.
    """
    report = Report(missing=record.missing())
    if entered is None:
        entered = read_entered(folder / WRITTEN, record)
    views, written = effective(record, entered, report)
    grades, summary = [], []
    for name, view in views.items():
        for q in view["questions"]:
            grades.append({"submission": name, "lab": record.lab, **q,
                           "score": "" if q["status"] == "grader-error" else q["score"]})
        page = feedback_file(name)
        message = view.get("message", "")
        if pages is None or name in pages:
            problem = _write_page(folder / "feedback" / page, feedback_html(name, record.lab, view))
            if problem:
                report.page_errors.append(f"{name}: {problem}")
                message, page = f"{message} The feedback page could not be written: {problem}".strip(), ""
        if view["status"] == "grader-error":
            report.failed.append(name)
        summary.append({"submission": name, "id": view.get("id", ""), "late": "yes" if view.get("late") else "",
                        "score": "" if view["score"] is None else view["score"], "max_score": view["max_score"],
                        "status": view["status"], "message": message, "feedback": page and f"feedback/{page}"})
    for name in report.missing:
        summary.append({"submission": name, "id": "", "late": "", "score": "", "max_score": record.max_score,
                        "status": NOT_GRADED, "message": "listed but not graded yet: run `grade` again"})
    summary.sort(key=lambda row: row["submission"])
    atomic_write(folder / GRADES, csv_text(GRADES_COLUMNS, grades))
    atomic_write(folder / SUMMARY, csv_text(SUMMARY_COLUMNS, summary))
    if written or (folder / WRITTEN).exists() or any(q["kind"] == "written" for q in record.questions):
        atomic_write(folder / WRITTEN, csv_text(WRITTEN_COLUMNS, written))
    return report


def _write_page(path: Path, html: str) -> str:
    """Write a feedback page unless it already holds `html`; '' or what went wrong."""
    try:
        if path.exists() and path.read_text(encoding="utf-8") == html:
            return ""
        atomic_write(path, html)
    except (OSError, UnicodeDecodeError) as error:
        return f"{type(error).__name__}: {error}"
    return ""


def class_view(folder: Path) -> tuple[Record, dict[str, dict[str, Any]], Report]:
    """The record, each submission's scores with the entered ones folded in, and the report (for export)."""
    record = require_record(folder)
    report = Report(missing=record.missing())
    views, _ = effective(record, read_entered(folder / WRITTEN, record), report)
    report.failed = [n for n, v in views.items() if v["status"] == "grader-error"]
    return record, views, report


# ------------------------------------------------------------------------------------------------- entering scores


@contextmanager
def entering() -> Any:
    """Hold while reading, changing and writing back a folder's entered scores and rubric, so that two saves at
    once (two browser tabs) each see the other's result."""
    with _ENTERING:
        yield


def load_rubric(folder: Path) -> dict[str, Any]:
    """rubric.json: {"format", "questions": {question: {"items": [...], "answers": {submission: ...}}}}."""
    path = folder / RUBRIC
    if not path.exists():
        return {"format": RUBRIC_FORMAT, "questions": {}}
    try:
        data = json.loads(decode_strictly(path))
    except ValueError as error:
        raise UsageError(f"{path} is damaged ({error}): restore it from a backup or delete it (the scores in "
                         f"{WRITTEN} stay; only the rubric is lost)") from None
    if not isinstance(data, dict) or data.get("format") != RUBRIC_FORMAT:
        raise UsageError(f"{path} is not a rubric this version reads (format {RUBRIC_FORMAT})")
    return data


def save_rubric(folder: Path, rubric: dict[str, Any]) -> None:
    atomic_write(folder / RUBRIC, json.dumps(rubric, indent=1, sort_keys=True, ensure_ascii=False) + "\n")


def enter_scores(folder: Path, changes: dict[tuple[str, str], dict[str, Any]]) -> Report:
    """Put scores and comments a person entered into written.csv, each change one cell ({"score": float | None}
    and/or {"comment": str} for a (submission, question)), and republish. Everything is read from disk first, so a row
    saved meanwhile (another tab, a spreadsheet) is kept; a score given clears the row's check."""
    with entering():
        record = require_record(folder)
        entered = {(e.submission, e.question): e for e in read_entered(folder / WRITTEN, record)}
        current = {(name, q["question"]): q for name, result in record.results.items() for q in result["questions"]}
        for key, change in changes.items():
            if key not in current:
                raise UsageError(f"{folder} has no answer of {key[0]!r} to {key[1]}")
            entry = entered.get(key) or Entered(key[0], key[1], None, "", "", "", "", 0, folder / WRITTEN)
            if "score" in change:
                score = change["score"]
                where = f"{key[0]!r} {key[1]}"
                score = parse_score(format_score(score), current[key]["max_score"], where)
                entry = replace(entry, score=score, answer=current[key].get("answer", ""), check="")
            if "comment" in change:
                entry = replace(entry, comment=str(change["comment"]))
            entered[key] = entry
        return publish(folder, record, {key[0] for key in changes}, list(entered.values()))
