"""From grading output to a learning management system: student ids, merged shards, written scores, gradebook CSVs.

- Student ids come from submission names through a regular expression, with presets for the names Canvas and
  Moodle give the files of a "download all submissions".
- `merge` combines the output folders of several shards (or runs) into one and folds in the points an instructor
  entered in written.csv's score column.
- `export` fills the lab's column of the gradebook file the LMS itself exported (the roster), so the result
  imports as it is: Canvas's gradebook export, or Moodle's assignment grading worksheet.

An empty score (a submission the grader failed on) stays empty everywhere: never 0.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from utils.grading.gradebook import (GRADES_COLUMNS, SUMMARY_COLUMNS, WRITTEN_COLUMNS, UsageError, _csv,
                                     atomic_write)

#: Id patterns for the file names of "download all submissions". Canvas: `doejane_12345_678901_lab1.ipynb`
#: (`doejane_LATE_12345_...` when late; 12345 is the Canvas user id, the gradebook's ID column). Moodle:
#: `Jane Doe_1234567_assignsubmission_file_lab1.ipynb`, or that name as a folder (1234567 is the participant id,
#: the grading worksheet's "Participant 1234567").
ID_PRESETS = {
    "canvas": r"^(?:.*/)?[^/_]+_(?:LATE_)?(?P<id>\d+)_\d+_",
    "moodle": r"_(?P<id>\d+)_assignsubmission_",
}
#: The status of a written answer whose points an instructor entered in written.csv.
READ = "read"
#: Canvas gradebook export: the student columns an import needs (the assignment columns follow them).
CANVAS_COLUMNS = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
#: Moodle's offline grading worksheet: the importer finds these three columns by name.
MOODLE_ID, MOODLE_GRADE, MOODLE_MODIFIED = "Identifier", "Grade", "Last modified (grade)"
MOODLE_PARTICIPANT = "Participant "
MANIFEST = "grading.json"


def compile_id_pattern(text: str) -> re.Pattern[str]:
    """A preset name (canvas, moodle) or a regular expression with a group named `id` (or exactly one group)."""
    source = ID_PRESETS.get(text.lower(), text)
    try:
        pattern = re.compile(source)
    except re.error as error:
        raise UsageError(f"--id-pattern {text!r} is not a regular expression: {error}") from None
    if "id" not in pattern.groupindex and pattern.groups != 1:
        raise UsageError(f"--id-pattern {text!r} needs a group named id, e.g. '(?P<id>\\d+)', or exactly one group "
                         f"(presets: {', '.join(ID_PRESETS)})")
    return pattern


def student_id(name: str, pattern: re.Pattern[str] | None) -> str:
    """The student id in a submission name ('' when there is no pattern or it does not match)."""
    match = pattern.search(name) if pattern else None
    if not match:
        return ""
    return (match.group("id") if "id" in pattern.groupindex else match.group(1)) or ""


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


def read_csv(path: Path) -> list[dict[str, str]]:
    """Rows of a CSV file with a header (a byte-order mark, as Excel and Moodle write, is dropped)."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            return list(csv.DictReader(handle))
    except FileNotFoundError:
        raise UsageError(f"no such file: {path}") from None
    except (UnicodeDecodeError, csv.Error) as error:
        raise UsageError(f"{path} is not a UTF-8 CSV file: {error}") from None


def csv_columns(path: Path) -> list[str]:
    """The header of a CSV file."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return next(csv.reader(handle), [])


# ---------------------------------------------------------------------------------------------- written scores


def written_key(row: dict[str, Any]) -> tuple[str, str, str]:
    """What a written score belongs to: the submission, the question and the exact answer it was given for."""
    return row["submission"], row["question"], row.get("answer", "")


def filled_written_scores(path: Path) -> dict[tuple[str, str, str], str]:
    """The scores an instructor entered in an existing written.csv, so that re-grading does not erase them."""
    if not path.exists():
        return {}
    try:
        return {written_key(row): row["score"] for row in read_csv(path) if (row.get("score") or "").strip()}
    except (UsageError, KeyError):
        return {}


def kept_score(scored: dict[tuple[str, str, str], str], row: dict[str, Any]) -> str:
    """The score entered earlier for this row's exact answer ('' if none, or if the student changed the answer)."""
    as_read = next(csv.DictReader(io.StringIO(_csv(WRITTEN_COLUMNS, [row]))))  # the answer as the CSV holds it
    return scored.get(written_key(as_read), "")


def fold_written(grades: list[dict[str, str]], summary: list[dict[str, str]], written: list[dict[str, str]],
                 source: str = "written.csv") -> int:
    """Put the written.csv scores into the grade rows (status `read`) and re-add the summary of those submissions.

    Changes the lists in place; returns how many answers got points.
    """
    scores = {}
    for number, row in enumerate(written, start=2):
        value = parse_score(row.get("score"), float(row["max_score"]), f"{source} line {number}")
        if value is not None:
            scores[(row["submission"], row["question"])] = value
    changed = set()
    for row in grades:
        key = (row["submission"], row["question"])
        if key in scores and row["status"] == "needs-reading":
            row["score"], row["status"] = format_score(scores[key]), READ
            changed.add(row["submission"])
    for row in summary:
        if row["submission"] in changed:
            rows = [g for g in grades if g["submission"] == row["submission"]]
            values = [parse_score(g["score"]) for g in rows]
            row["score"] = "" if None in values else format_score(sum(values))
            if row["status"] == "needs-reading" and not any(g["status"] == "needs-reading" for g in rows):
                row["status"] = "graded"
    return sum(1 for row in grades if row["status"] == READ and (row["submission"], row["question"]) in scores)


# ------------------------------------------------------------------------------------------------------ merge


@dataclass
class Output:
    """One grading output folder, as read back from its CSV files."""

    folder: Path
    lab: str
    shard: str | None
    grades: list[dict[str, str]] = field(default_factory=list)
    summary: list[dict[str, str]] = field(default_factory=list)
    written: list[dict[str, str]] = field(default_factory=list)
    has_written: bool = False


def write_manifest(out: Path, lab: str, shard: str | None, names: Iterable[str]) -> None:
    """Record what a grading run covered (lab, shard, submissions), so that `merge` can check the shards fit."""
    atomic_write(out / MANIFEST, json.dumps({"lab": lab, "shard": shard, "submissions": sorted(names)}, indent=1) + "\n")


def check_manifest(out: Path, lab: str, shard: str | None) -> None:
    """Refuse to grade into a folder that holds another lab or another shard (their rows would be overwritten)."""
    try:
        manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if (manifest.get("lab"), manifest.get("shard")) != (lab, shard):
        held = f"{manifest.get('lab')}" + (f", shard {manifest['shard']}" if manifest.get("shard") else "")
        raise UsageError(f"{out} holds the grades of {held}: give each lab and each shard its own --out folder")


def read_output(folder: Path) -> Output:
    """Read grades.csv, summary.csv, written.csv (if any) and the manifest of a grading output folder."""
    if not (folder / "summary.csv").exists():
        raise UsageError(f"{folder} is not a grading output folder (no summary.csv): give the --out folders of "
                         f"`grade`")
    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8")) if (folder / MANIFEST).exists() else {}
    grades, summary = read_csv(folder / "grades.csv"), read_csv(folder / "summary.csv")
    labs = {row["lab"] for row in grades} | ({manifest["lab"]} if manifest.get("lab") else set())
    if len(labs) > 1:
        raise UsageError(f"{folder} mixes labs: {', '.join(sorted(labs))}")
    written_path = folder / "written.csv"
    return Output(folder, labs.pop() if labs else "", manifest.get("shard"), grades, summary,
                  read_csv(written_path) if written_path.exists() else [], written_path.exists())


def _check_shards(outputs: list[Output]) -> None:
    """All outputs are of one lab; shards are of one N, distinct and complete."""
    labs = {o.lab for o in outputs if o.lab}
    if len(labs) > 1:
        raise UsageError("the folders hold different labs: " + ", ".join(f"{o.folder} ({o.lab})" for o in outputs))
    shards = [o.shard for o in outputs if o.shard]
    if not shards:
        return
    counts = {s.split("/")[1] for s in shards}
    if len(counts) > 1 or len(shards) != len(outputs):
        raise UsageError("the folders come from different splits: " + ", ".join(
            f"{o.folder} (shard {o.shard or 'none'})" for o in outputs))
    count = int(counts.pop())
    missing = sorted(set(range(1, count + 1)) - {int(s.split("/")[0]) for s in shards})
    duplicated = sorted({s for s in shards if shards.count(s) > 1})
    if duplicated:
        raise UsageError(f"shard {', '.join(duplicated)} given twice")
    if missing:
        raise UsageError(f"shard {', '.join(f'{k}/{count}' for k in missing)} missing: merge needs all {count} "
                         f"shards' folders")


def merge_outputs(folders: list[Path], out: Path) -> dict[str, int]:
    """Merge grading output folders into `out` (which may be one of them), folding in written.csv scores.

    Rows keep their folder's order, folders the order given; a submission found in two folders is an error.
    Feedback pages are copied. Returns counts for the report.
    """
    outputs = [read_output(folder.resolve()) for folder in folders]
    _check_shards(outputs)
    seen: dict[str, Path] = {}
    for output in outputs:
        for row in output.summary:
            if row["submission"] in seen:
                raise UsageError(f"submission {row['submission']!r} is in both {seen[row['submission']]} and "
                                 f"{output.folder}: merge folders of different submissions (e.g. the shards of one run)")
            seen[row["submission"]] = output.folder
    grades = [row for o in outputs for row in o.grades]
    summary = [row for o in outputs for row in o.summary]
    written = [row for o in outputs for row in o.written]
    folded = fold_written(grades, summary, written)
    out = out.resolve()
    for output in outputs:
        if output.folder != out and (output.folder / "feedback").is_dir():
            for page in sorted((output.folder / "feedback").rglob("*.html")):
                target = out / "feedback" / page.relative_to(output.folder / "feedback")
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(page, target)
    atomic_write(out / "grades.csv", _csv(_columns(GRADES_COLUMNS, outputs, "grades"), grades))
    atomic_write(out / "summary.csv", _csv(_columns(SUMMARY_COLUMNS, outputs, "summary"), summary))
    if any(o.has_written for o in outputs):
        atomic_write(out / "written.csv", _csv(_columns(WRITTEN_COLUMNS, outputs, "written"), written))
    lab = next((o.lab for o in outputs if o.lab), "")
    write_manifest(out, lab, None, seen)
    return {"folders": len(outputs), "submissions": len(summary), "written scores": folded}


def _columns(default: list[str], outputs: list[Output], table: str) -> list[str]:
    """The columns of a merged table: those the inputs have (older outputs lack some), in the gradebook's order."""
    present = {key for o in outputs for row in getattr(o, table) for key in row}
    return [c for c in default if c in present] if present else default


# ----------------------------------------------------------------------------------------------------- export


def _scores_by_id(summary: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    """Summary rows by student id; every row needs an id, and one row per id."""
    missing = [row["submission"] for row in summary if not (row.get("id") or "").strip()]
    if missing:
        raise UsageError(f"{len(missing)} submission(s) have no student id, e.g. {missing[0]!r}: grade with "
                         f"--id-pattern canvas|moodle|REGEX so that summary.csv gets an id column")
    by_id: dict[str, dict[str, str]] = {}
    for row in summary:
        if row["id"] in by_id:
            raise UsageError(f"student id {row['id']} has two submissions ({by_id[row['id']]['submission']!r} and "
                             f"{row['submission']!r}): keep one submission per student and grade again")
        by_id[row["id"]] = row
    return by_id


@dataclass
class Export:
    """A gradebook file's columns and rows, and what could not be matched."""

    lab: str
    columns: list[str]
    rows: list[dict[str, str]]
    matched: int
    not_in_roster: list[str]
    without_submission: list[str]

    def text(self) -> str:
        """The CSV text, as the LMS reads it (every cell quoted, like the LMS's own exports)."""
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self.columns, quoting=csv.QUOTE_ALL, lineterminator="\r\n",
                                extrasaction="ignore")
        writer.writeheader()
        writer.writerows(self.rows)
        return buffer.getvalue()


def export_canvas(summary: list[dict[str, str]], roster: list[dict[str, str]], roster_columns: list[str],
                  lab: str, column: str | None = None) -> Export:
    """Canvas: the student columns of the gradebook export, plus the lab's column filled by the ID column."""
    missing = [c for c in CANVAS_COLUMNS if c not in roster_columns]
    if missing:
        raise UsageError(f"the roster is not a Canvas gradebook export: no column {', '.join(map(repr, missing))} "
                         f"(Grades > Export > Export Entire Gradebook)")
    column = column or _find_column(roster_columns, lab) or lab
    by_id, rows, matched, without = _scores_by_id(summary), [], set(), []
    for entry in roster:
        row = {c: entry.get(c, "") for c in CANVAS_COLUMNS}
        student = (entry.get("ID") or "").strip()
        if not student:  # "Points Possible" and other header rows
            is_points = entry.get("Student", "").strip().lower() == "points possible"
            row[column] = _first(summary, "max_score") if is_points else entry.get(column, "")
        elif student in by_id:
            row[column] = format_score(parse_score(by_id[student]["score"]))
            matched.add(student)
        else:
            row[column] = ""
            without.append(student)
        rows.append(row)
    return Export(lab, CANVAS_COLUMNS + [column], rows, len(matched), sorted(set(by_id) - matched), without)


def export_moodle(summary: list[dict[str, str]], roster: list[dict[str, str]], roster_columns: list[str],
                  lab: str) -> Export:
    """Moodle: the assignment's grading worksheet, every column kept, with the Grade column filled by participant."""
    missing = [c for c in (MOODLE_ID, MOODLE_GRADE, MOODLE_MODIFIED) if c not in roster_columns]
    if missing:
        raise UsageError(f"the roster is not a Moodle grading worksheet: no column {', '.join(map(repr, missing))} "
                         f"(assignment > View all submissions > Download grading worksheet; enable the "
                         f"'Offline grading worksheet' feedback type)")
    by_id, rows, matched, without = _scores_by_id(summary), [], set(), []
    for entry in roster:
        row = dict(entry)
        identifier = (entry.get(MOODLE_ID) or "").strip()
        student = identifier[len(MOODLE_PARTICIPANT):] if identifier.startswith(MOODLE_PARTICIPANT) else identifier
        if student in by_id:
            row[MOODLE_GRADE] = format_score(parse_score(by_id[student]["score"]))
            matched.add(student)
        else:
            without.append(student)
        rows.append(row)
    return Export(lab, list(roster_columns), rows, len(matched), sorted(set(by_id) - matched), without)


def _find_column(columns: list[str], lab: str) -> str | None:
    """The roster's assignment column for `lab`: 'lab1', 'Lab 1 (1234)', ... (None if there is none or several)."""
    spaced = re.sub(r"(\D)(\d)", r"\1 ?\2", re.escape(lab))
    found = [c for c in columns if re.match(rf"^{spaced}\b", c, re.IGNORECASE)]
    return found[0] if len(found) == 1 else None


def _first(rows: list[dict[str, str]], key: str) -> str:
    """The value of `key` in the first row that has one (the lab's maximum score)."""
    return next((format_score(parse_score(r[key])) for r in rows if r.get(key)), "")


def export_gradebook(folder: Path, fmt: str, roster_path: Path, column: str | None = None) -> Export:
    """The gradebook CSV for `fmt` (canvas, moodle) from a grading output folder and the LMS's roster file."""
    output = read_output(folder)
    fold_written(output.grades, output.summary, output.written, str(folder / "written.csv"))
    roster, columns = read_csv(roster_path), csv_columns(roster_path)
    if fmt == "canvas":
        return export_canvas(output.summary, roster, columns, output.lab, column)
    return export_moodle(output.summary, roster, columns, output.lab)
