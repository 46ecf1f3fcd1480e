"""From a grading output folder to a learning management system: student ids, merged shards, gradebook CSVs.

- Student ids come from submission names through a regular expression, with presets for the names Canvas and
  Moodle give the files of a "download all submissions".
- `merge` combines the output folders of the shards of one class into one folder, exactly as one run writes it,
  after checking that the shards were graded from the same list, lab and settings.
- `export` fills the lab's column of the gradebook file the LMS itself exported (the roster), on the LMS's scale,
  so that the result imports as the instructor means it: Canvas's gradebook export, or Moodle's grading worksheet.
Scores are read and written through utils/grading/scores.py. An empty score (a submission the grader failed on)
is never 0, and no roster value is blanked or column added.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from utils.grading.scores import (WRITTEN, Record, UsageError, class_view, combine_entered, format_score,
                                  publish, read_entered, read_table, require_record)

#: Id patterns for the file names of "download all submissions". Canvas: `doejane_12345_678901_lab1.ipynb`
#: (`doejane_LATE_12345_...` when late; 12345 is the Canvas user id, the gradebook's ID column). Moodle:
#: `Jane Doe_1234567_assignsubmission_file_lab1.ipynb`, or that name as a folder (1234567 is the participant id,
#: the grading worksheet's "Participant 1234567").
ID_PRESETS = {
    "canvas": r"^(?:.*/)?[^/]*?_(?:LATE_)?(?P<id>\d+)_\d+_",  # the sortable name may keep an underscore
    "moodle": r"_(?P<id>\d+)_assignsubmission_",
}
#: The status of a written answer whose points an instructor entered in written.csv.
READ = "read"
#: Canvas gradebook export: the student columns an import needs (the assignment columns follow them).
CANVAS_COLUMNS = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
#: Moodle's offline grading worksheet: the importer finds these three columns by name.
MOODLE_ID, MOODLE_GRADE, MOODLE_MODIFIED = "Identifier", "Grade", "Last modified (grade)"
MOODLE_PARTICIPANT = "Participant "
#: Moodle's worksheet: the assignment's maximum (per row) and when the student last changed the submission.
MOODLE_MAXIMUM, MOODLE_SUBMITTED = "Maximum Grade", "Last modified (submission)"
#: How Moodle writes dates in the worksheet ("Monday, 30 November 2026, 11:40 PM"), and how --due is given.
MOODLE_DATE, DUE_FORMATS = "%A, %d %B %Y, %I:%M %p", ("%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d")
#: Shown in a refusal: how many names to list before "and N more".
LISTED = 10


def canvas_late(name: str) -> bool:
    """Whether Canvas marked a downloaded submission late: `_LATE_` before the user id of its own naming pattern
    (a `_LATE_` in the student's own file name, after Canvas's part, does not count)."""
    match = re.search(ID_PRESETS["canvas"], name)
    return bool(match) and "_LATE_" in match.group(0)


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


def read_csv(path: Path) -> list[dict[str, str]]:
    """Rows of a CSV file with a header, read strictly (UTF-8, with or without a byte-order mark)."""
    return read_table(path)[1]


def _names(items: list[str]) -> str:
    """Up to LISTED items, then how many more."""
    more = f" and {len(items) - LISTED} more" if len(items) > LISTED else ""
    return ", ".join(items[:LISTED]) + more


# ------------------------------------------------------------------------------------------------------ merge


def _check_shards(records: list[tuple[Path, Record]], allow_mismatch: bool) -> None:
    """One lab; shards of one N, distinct, complete, graded from one class list with one grader and options."""
    labs = {r.lab for _, r in records}
    if len(labs) > 1:
        raise UsageError("the folders hold different labs: " + ", ".join(f"{f} ({r.lab})" for f, r in records))
    settings = set().union(*(r.settings() for _, r in records)) - {""}
    if len(settings) > 1 and not allow_mismatch:
        raise UsageError("the folders were graded with different grader versions or options (--timeout, --memory, "
                         "--output-limit, --no-sandbox) or a changed lab: grade every shard with the same ones "
                         "(or pass --allow-mismatch to merge them anyway)")
    shards = [r.shard for _, r in records if r.shard]
    if not shards:
        return
    counts = {s.split("/")[1] for s in shards}
    if len(counts) > 1 or len(shards) != len(records):
        raise UsageError("the folders come from different splits: " + ", ".join(
            f"{f} (shard {r.shard or 'none'})" for f, r in records))
    count = int(counts.pop())
    duplicated = sorted({s for s in shards if shards.count(s) > 1})
    if duplicated:
        raise UsageError(f"shard {', '.join(duplicated)} given twice")
    missing = sorted(set(range(1, count + 1)) - {int(s.split("/")[0]) for s in shards})
    if missing:
        raise UsageError(f"shard {', '.join(f'{k}/{count}' for k in missing)} missing: merge needs all {count} "
                         f"shards' folders")
    lists = {tuple(sorted(r.classlist)) for _, r in records}
    if len(lists) > 1 and not allow_mismatch:
        union = set().union(*lists)
        differ = [f"{f} (shard {r.shard}: {len(r.classlist)} submissions, lacks "
                  f"{_names(sorted(union - set(r.classlist)))})" for f, r in records if set(r.classlist) != union]
        raise UsageError("the shards were graded from different submission lists: " + "; ".join(differ) +
                         ". Grade every shard from the same folder of submissions (or pass --allow-mismatch: the "
                         "merged folder then lists the students no shard graded as not-graded)")


def merge_outputs(folders: list[Path], out: Path, allow_mismatch: bool = False) -> dict[str, Any]:
    """Merge grading output folders into `out` (which may be one of them), with every written.csv's scores.

    The merged folder is what one run over the whole class writes: the same rows in the same order, feedback
    pages made from the merged scores. A submission graded in two folders is refused. Returns counts.
    """
    records = [(folder.resolve(), require_record(folder.resolve())) for folder in folders]
    _check_shards(records, allow_mismatch)
    owner: dict[str, Path] = {}
    for folder, record in records:
        for name in record.results:
            if name in owner:
                raise UsageError(f"submission {name!r} is in both {owner[name]} and {folder}: merge folders of "
                                 f"different submissions (e.g. the shards of one run)")
            owner[name] = folder
    out = out.resolve()
    existing = require_record(out) if (out / "grading.json").exists() else None
    lab = records[0][1].lab
    if existing is not None and existing.lab != lab:
        raise UsageError(f"{out} holds the grades of {existing.lab}, not {lab}: merge into another --out folder")
    classlist = sorted(set().union(*(r.classlist for _, r in records)))
    listed = set().union(*(r.listed for _, r in records))
    if any(r.shard for _, r in records):
        listed |= set(classlist)  # a student of the class that no shard graded shows as not graded
    merged = Record(lab, records[0][1].questions, None, classlist, sorted(listed),
                    {name: result for _, r in records for name, result in r.results.items()})
    sources = [folder / WRITTEN for folder, _ in records]
    if out not in {folder for folder, _ in records}:
        sources.append(out / WRITTEN)  # scores entered in the merged folder after an earlier merge
    entered, conflicts = combine_entered([read_entered(path, merged) for path in sources])
    out.mkdir(parents=True, exist_ok=True)
    merged.save(out)
    report = publish(out, merged, entered=entered)
    return {"folders": len(records), "submissions": len(merged.results), "report": report, "conflicts": conflicts,
            "written scores": sum(1 for e in entered if e.score is not None)}


# ----------------------------------------------------------------------------------------------------- export


@dataclass
class Export:
    """A gradebook file's columns and rows, and what the instructor must be told."""

    lab: str
    columns: list[str]
    rows: list[dict[str, str]]
    matched: int
    not_in_roster: list[str]
    without_submission: list[str]
    notes: list[str] = field(default_factory=list)

    def text(self) -> str:
        """The CSV text, as the LMS reads it (every cell quoted, like the LMS's own exports)."""
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self.columns, quoting=csv.QUOTE_ALL, lineterminator="\r\n",
                                extrasaction="ignore")
        writer.writeheader()
        writer.writerows(self.rows)
        return buffer.getvalue()


@dataclass
class Policy:
    """What `export` may do that it refuses by default (each a command-line flag)."""

    column: str | None = None
    scale: bool = False
    partial: bool = False
    unscored_zero: bool = False
    ignore_checks: bool = False
    due: datetime | None = None


@dataclass
class Scores:
    """The class's scores by student id: score on the lab's scale (None: no score to export) and late flags."""

    lab: str
    maximum: float
    by_id: dict[str, float | None]
    late: dict[str, bool]
    notes: list[str]


def class_scores(folder: Path, policy: Policy) -> Scores:
    """The scores to export, after the refusals: a partial folder, tool checks, unscored answers, missing ids."""
    record, views, report = class_view(folder)
    notes = []
    problems = [f"{n} (not graded)" for n in report.missing] + [f"{n} (the grader failed)" for n in report.failed]
    if problems and not policy.partial:
        raise UsageError(f"{folder} is not completely graded: {_names(problems)}. Run `grade` again to finish "
                         f"(or pass --partial to export the others; these students' roster values stay as they were)")
    if problems:
        notes.append(f"left as in the roster (--partial): {_names(problems)}")
    checks = report.unmatched + [f"{c}: {'answer changed since it was scored'}" for c in report.changed]
    if checks and not policy.ignore_checks:
        raise UsageError(f"written.csv in {folder} has rows to look at: {_names(checks)}. Read them, then empty "
                         f"their check cell (or pass --ignore-checks to export the scores as they are)")
    if report.unscored and not policy.unscored_zero:
        raise UsageError(f"{len(report.unscored)} written answer(s) have no score in {folder}/written.csv: "
                         f"{_names(report.unscored)}. Score them (or pass --unscored-zero to count them as 0)")
    if report.unscored:
        notes.append(f"counted as 0 (--unscored-zero): {_names(report.unscored)}")
    unusable = [f"{n} ({v['status']})" for n, v in views.items() if v["status"] in ("invalid-notebook", "wrong-lab")]
    if unusable:
        notes.append(f"0 points because the file is not a notebook of {record.lab} (see summary.csv's message; the "
                     f"student may resubmit): {_names(unusable)}")
    missing = [n for n, v in views.items() if not str(v.get("id", "")).strip()]
    if missing:
        raise UsageError(f"{len(missing)} submission(s) have no student id, e.g. {missing[0]!r}: grade with "
                         f"--id-pattern canvas|moodle|REGEX so that summary.csv gets an id column")
    by_id: dict[str, float | None] = {}
    late: dict[str, bool] = {}
    owner: dict[str, str] = {}
    for name, view in views.items():
        sid = str(view["id"]).strip()
        if sid in owner:
            raise UsageError(f"student id {sid} has two submissions ({owner[sid]!r} and {name!r}): keep one "
                             f"submission per student and grade again")
        owner[sid], by_id[sid], late[sid] = name, view["score"], bool(view.get("late"))
    return Scores(record.lab, record.max_score, by_id, late, notes)


def _on_scale(score: float, lab_max: float, lms_max: float, scale: bool, where: str) -> float:
    """A score on the LMS's scale: as it is when the maxima agree, scaled with --scale, else refused."""
    if abs(lab_max - lms_max) < 1e-9:
        return score
    if not scale:
        raise UsageError(f"{where} is out of {lms_max:g} points but the lab is out of {lab_max:g}: pass --scale to "
                         f"convert the scores to {lms_max:g} points (score x {lms_max:g} / {lab_max:g}, 2 decimals), "
                         f"or set the assignment's points to {lab_max:g} in the LMS and export the roster again")
    return round(score * lms_max / lab_max, 2)


def _maximum(text: str, where: str) -> float:
    """The LMS's maximum for an assignment, which must be a positive number."""
    try:
        value = float((text or "").strip().replace(",", "."))
    except ValueError:
        value = 0.0
    if not value > 0:
        raise UsageError(f"{where} has no points possible ({text!r}): choose the assignment's column (--column) "
                         f"and give it a maximum in the LMS, then export the roster again")
    return value


def export_canvas(scores: Scores, roster: list[dict[str, str]], columns: list[str], policy: Policy) -> Export:
    """Canvas: the student columns and the lab's existing column; the Points Possible row kept as Canvas wrote it."""
    missing = [c for c in CANVAS_COLUMNS if c not in columns]
    if missing:
        raise UsageError(f"the roster is not a Canvas gradebook export: no column {', '.join(map(repr, missing))} "
                         f"(Grades > Export > Export Entire Gradebook)")
    column = _canvas_column(columns, scores.lab, policy.column)
    points = next((r for r in roster if r.get("Student", "").strip().lower() == "points possible"), None)
    if points is None:
        raise UsageError("the roster has no 'Points Possible' row: export it again from Canvas (Grades > Export > "
                         "Export Entire Gradebook), which writes the assignments' maxima there")
    lms_max = _maximum(points.get(column, ""), f"column {column!r}")
    rows, matched, without = [], set(), []
    for entry in roster:
        row = {c: entry.get(c, "") for c in CANVAS_COLUMNS + [column]}
        student = (entry.get("ID") or "").strip()
        if student and student in scores.by_id:
            score = scores.by_id[student]
            if score is not None:  # a score the grader could not give keeps the roster's value
                value = _on_scale(score, scores.maximum, lms_max, policy.scale, f"column {column!r}")
                row[column] = format_score(value)
            matched.add(student)
        elif student:
            without.append(student)
        rows.append(row)
    return Export(scores.lab, CANVAS_COLUMNS + [column], rows, len(matched), sorted(set(scores.by_id) - matched),
                  without, _replaced(roster, rows, "ID", column))


def _replaced(roster: list[dict[str, str]], rows: list[dict[str, str]], key: str, column: str) -> list[str]:
    """A note naming the values the LMS already had that the export changes (an EX, a grade entered there)."""
    changed = [f"{old[key]} ({old.get(column, '')!r} -> {new[column]!r})" for old, new in zip(roster, rows)
               if (old.get(column) or "").strip() and _differs(old.get(column, ""), new[column])]
    return [f"values already in the roster that this file changes: {_names(changed)}"] if changed else []


def _differs(old: str, new: str) -> bool:
    """Whether two gradebook cells hold different values (12.00 and 12 are the same)."""
    try:
        return abs(float(old.replace(",", ".")) - float(new)) > 1e-9
    except ValueError:
        return old.strip() != new.strip()


def _canvas_column(columns: list[str], lab: str, chosen: str | None) -> str:
    """The roster's one assignment column for the lab: --column, or the one column named like the lab."""
    if chosen is not None:
        if chosen not in columns:
            raise UsageError(f"the roster has no column {chosen!r} (a new column would become a new assignment in "
                             f"Canvas): create the assignment in Canvas, export the gradebook again, and pass its "
                             f"column's exact name")
        return chosen
    spaced = re.sub(r"(\D)(\d)", r"\1 ?\2", re.escape(lab))
    found = [c for c in columns if re.match(rf"^{spaced}\b", c, re.IGNORECASE) and c not in CANVAS_COLUMNS]
    if len(found) != 1:
        which = f"{len(found)} columns match it ({', '.join(map(repr, found))})" if found else "no column matches it"
        raise UsageError(f"cannot tell the roster's column for {lab}: {which}. Pass --column 'NAME (ID)' with the "
                         f"assignment's column (never a new one: Canvas would create a new assignment)")
    return found[0]


def export_moodle(scores: Scores, roster: list[dict[str, str]], columns: list[str], policy: Policy) -> Export:
    """Moodle: the grading worksheet with every column kept and Grade filled on each row's Maximum Grade."""
    missing = [c for c in (MOODLE_ID, MOODLE_GRADE, MOODLE_MODIFIED) if c not in columns]
    if missing:
        raise UsageError(f"the roster is not a Moodle grading worksheet: no column {', '.join(map(repr, missing))} "
                         f"(assignment > View all submissions > Download grading worksheet; enable the "
                         f"'Offline grading worksheet' feedback type)")
    rows, matched, without = [], set(), []
    for entry in roster:
        row = dict(entry)
        identifier = (entry.get(MOODLE_ID) or "").strip()
        student = identifier.removeprefix(MOODLE_PARTICIPANT)
        if student in scores.by_id:
            score = scores.by_id[student]
            if score is not None:
                where = f"{identifier}'s {MOODLE_MAXIMUM!r}"
                lms_max = (_maximum(entry.get(MOODLE_MAXIMUM, ""), where) if MOODLE_MAXIMUM in columns
                           else scores.maximum)
                row[MOODLE_GRADE] = format_score(_on_scale(score, scores.maximum, lms_max, policy.scale, where))
            matched.add(student)
        else:
            without.append(student)
        if policy.due and _submitted_late(entry.get(MOODLE_SUBMITTED, ""), policy.due, identifier):
            scores.late[student] = True
        rows.append(row)
    notes = _replaced(roster, rows, MOODLE_ID, MOODLE_GRADE)
    return Export(scores.lab, list(columns), rows, len(matched), sorted(set(scores.by_id) - matched), without, notes)


def _submitted_late(text: str, due: datetime, who: str) -> bool:
    """Whether Moodle's 'Last modified (submission)' is after the due date ('-': no submission, not late)."""
    text = text.strip()
    if not text or text == "-":
        return False
    try:
        return datetime.strptime(text, MOODLE_DATE) > due
    except ValueError:
        raise UsageError(f"{who}: cannot read the date {text!r} in {MOODLE_SUBMITTED!r} (expected e.g. 'Monday, "
                         f"30 November 2026, 11:40 PM', Moodle's English format): leave out --due") from None


def parse_due(text: str) -> datetime:
    """--due 'YYYY-MM-DD HH:MM' (a date alone means its midnight)."""
    for form in DUE_FORMATS:
        try:
            return datetime.strptime(text.strip(), form)
        except ValueError:
            continue
    raise UsageError(f"--due {text!r} is not a date: write it as 'YYYY-MM-DD HH:MM'")


def export_gradebook(folder: Path, fmt: str, roster_path: Path, policy: Policy | None = None) -> Export:
    """The gradebook CSV for `fmt` (canvas, moodle) from a grading output folder and the LMS's roster file."""
    policy = policy or Policy()
    scores = class_scores(folder, policy)
    columns, roster = read_table(roster_path)
    export = (export_canvas if fmt == "canvas" else export_moodle)(scores, roster, columns, policy)
    export.notes = scores.notes + export.notes
    late = sorted(sid for sid, flag in scores.late.items() if flag)
    if late:
        export.notes.append(f"late ({'after --due' if policy.due else '_LATE_ in the file name'}; summary.csv's "
                            f"late column): {_names(late)}")
    try:
        _refresh(folder, scores.late if policy.due else {})
    except OSError as error:  # e.g. a TA allowed to read the folder but not to write it
        export.notes.append(f"the folder's summary.csv and feedback pages were not brought up to date ({error}): "
                            f"run `merge --out {folder} {folder}` as the folder's owner")
    return export


def _refresh(folder: Path, late: dict[str, bool]) -> None:
    """Bring the folder's outputs up to the exported scores (feedback pages agree with the export), with the late
    flags found from Moodle's dates stored in the record (summary.csv's late column)."""
    record = require_record(folder)
    for result in record.results.values():
        if late.get(str(result.get("id", "")).strip()):
            result["late"] = True
    if late:
        record.save(folder)
    publish(folder, record)
