"""A class of 300 students, as instructors receive it, through the command line: LMS downloads, three shards,
`merge`, and the Canvas and Moodle gradebook files.

The same 300 students (ids 20000-20299) are enrolled in a Canvas and a Moodle course, so that one run covers both
naming schemes: half the class comes from Canvas's "Download Submissions" zip, the other half from two Moodle
"Download all submissions" zips (one in folders, one flat); the names follow the LMSs' rules (see
tests/test_grading_intake.py for where they come from). Among them: late and repeated uploads, broken files (not
JSON, JSON but not a notebook, empty) and names of 240 bytes or more. The notebooks are a few variants of the
labdemo fixture lab, so the cache grades each variant once per shard and the test stays cheap.

Everything goes through `python -m utils.grading` as an instructor types it, so the test holds whatever the
modules inside look like.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from test_grading_intake import build_zip, canvas_name, moodle_name
from utils.grading.lms import read_csv
from utils.grading.notebook import find_labs, parse_lab
from utils.grading.release import release_all

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures" / "grading" / "solutions"
SOLUTION = json.loads((FIXTURES / "labdemo" / "labdemo.ipynb").read_text())
MAX_SCORE = parse_lab("labdemo", find_labs(FIXTURES)["labdemo"]).max_score
STUDENTS = range(20000, 20300)
#: Both LMSs' names: Canvas `name_[LATE_]<id>_<file id>_`, Moodle `name_<id>_assignsubmission_`.
ID_PATTERN = r"_(?:LATE_)?(?P<id>\d+)_(?:\d+_|assignsubmission_)"
BROKEN = {20010: b"{not json", 20160: b'{"cells": "not a notebook"}', 20240: b"", 20011: b"\x00\x01",
          20161: b"[]", 20241: b"   \n"}
LONG = {20020: "canvas", 20170: "moodle-folders", 20250: "moodle-flat"}
SHARDS = 3
#: Each variant's total once every written answer has WRITTEN_SCORE points: the solution, the released lab (no code
#: point; its written placeholder is scored like any answer), a wrong `square` (-2 points) and another correct one.
EXPECTED = [6.5, 1.5, 4.5, 6.5]
WRITTEN_SCORE = "1.5"
CANVAS_COLUMN = "Lab demo (4242)"  # the assignment as the instructor named it in Canvas


def variant(square: str) -> bytes:
    """The solution notebook with another answer to the `square` question."""
    notebook = copy.deepcopy(SOLUTION)
    for cell in notebook["cells"]:
        if cell["metadata"].get("nbgrader", {}).get("grade_id") == "square":
            cell["source"] = square
    return json.dumps(notebook).encode()


def person(sid: int) -> tuple[str, str]:
    """(family name, given name) of a generated student, some of them not ASCII."""
    given = ["Ana", "Jürgen", "Chidi", "Søren", "Mei", "José", "Aoife", "Dmitri"][sid % 8]
    return f"Student{sid}", given


def write_class(folder: Path, released: bytes) -> dict[str, list[Path]]:
    """The three LMS archives of the class, written into `folder`."""
    contents = [json.dumps(SOLUTION).encode(), released, variant("def square(x):\n    return 9"),
                variant("def square(x):\n    return x ** 2")]
    canvas, folders, flat = {}, {}, {}
    for sid in STUDENTS:
        data = BROKEN.get(sid, contents[sid % len(contents)])
        family, given = person(sid)
        own = "labdemo.ipynb" if sid not in LONG else "labdemo " + "très long nom de fichier " * 10 + ".ipynb"
        if sid < 20150:
            late = sid % 7 == 0
            if sid % 25 == 0:  # uploaded twice: Canvas renames the second file and gives it a higher id
                canvas[canvas_name(f"{family}, {given}", sid, 500000 + sid, own)] = b"an older upload"
                own = "labdemo-1.ipynb"
            canvas[canvas_name(f"{family}, {given}", sid, 600000 + sid, own, late=late)] = data
        elif sid < 20225:
            folders[moodle_name(f"{given} {family}", sid, own)] = data
            if sid % 30 == 0:
                folders[moodle_name(f"{given} {family}", sid, "notes.pdf")] = b"%PDF-1.4"
        else:
            flat[moodle_name(f"{given} {family}", sid, own, folders=False)] = data
    assert all(len(n.encode()) >= 240 for n in [*canvas, *folders, *flat] if "très long" in n)
    return {"archives": [build_zip(folder / "NLP-Lab demo submissions.zip", canvas, utf8_flag=False),
                         build_zip(folder / "NLP-Lab demo-4242.zip", folders),
                         build_zip(folder / "NLP-Lab demo-4242 (1).zip", flat)]}


def cli(*args: str) -> subprocess.CompletedProcess:
    """`python -m utils.grading ARGS` from the repository, as an instructor runs it."""
    return subprocess.run([sys.executable, "-m", "utils.grading", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)


def rosters(folder: Path) -> tuple[Path, Path]:
    """A Canvas gradebook export and a Moodle grading worksheet listing exactly the 300 students, with the lab's
    maximum (the layout of tests/fixtures/lms/)."""
    canvas, moodle = io.StringIO(), io.StringIO()
    rows = csv.writer(canvas, lineterminator="\n")
    rows.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section", CANVAS_COLUMN, "Current Score"])
    rows.writerow(["    Points Possible", "", "", "", "", f"{MAX_SCORE:.2f}", "(read only)"])
    worksheet = csv.writer(moodle, lineterminator="\n")
    worksheet.writerow(["Identifier", "Full name", "Email address", "Status", "Grade", "Maximum Grade",
                        "Grade can be changed", "Last modified (submission)", "Last modified (grade)",
                        "Feedback comments"])
    for sid in STUDENTS:
        family, given = person(sid)
        rows.writerow([f"{family}, {given}", sid, f"S{sid}", f"s{sid}", "NLP 2026", "", ""])
        worksheet.writerow([f"Participant {sid}", f"{given} {family}", f"s{sid}@example.edu",
                            "Submitted for grading - Not graded", "", f"{MAX_SCORE:.2f}", "Yes",
                            "Monday, 30 November 2026, 10:02 AM", "-", ""])
    (folder / "canvas-roster.csv").write_text(canvas.getvalue(), encoding="utf-8")
    (folder / "moodle-roster.csv").write_text("\ufeff" + moodle.getvalue(), encoding="utf-8")
    return folder / "canvas-roster.csv", folder / "moodle-roster.csv"


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory):
    """Grade the class in three shards, merge them, score the written answers, merge again, export to both LMSs."""
    root = tmp_path_factory.mktemp("class")
    release_all(FIXTURES, root / "labs")
    made = write_class(root, (root / "labs" / "labdemo" / "labdemo.ipynb").read_bytes())
    runs, start = {}, time.monotonic()
    common = ["--lab", "labdemo", "--solutions", str(FIXTURES), "--id-pattern", ID_PATTERN, "--jobs", "2",
              "--timeout", "20", "--quiet", *map(str, made["archives"])]
    for k in range(1, SHARDS + 1):
        runs[f"shard {k}"] = cli("grade", *common, "--out", str(root / f"shard{k}"), "--shard", f"{k}/{SHARDS}")
    merged = root / "merged"
    runs["merge"] = cli("merge", "--out", str(merged), *(str(root / f"shard{k}") for k in range(1, SHARDS + 1)))
    if (merged / "written.csv").exists():  # the instructor scores every written answer, then folds them in
        written = read_csv(merged / "written.csv")
        for row in written:
            row["score"] = WRITTEN_SCORE
        with (merged / "written.csv").open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(written[0]) if written else ["submission"])
            writer.writeheader()
            writer.writerows(written)
        runs["merge written"] = cli("merge", "--out", str(merged), str(merged))
    canvas_roster, moodle_roster = rosters(root)
    for lms, roster, column in (("canvas", canvas_roster, ["--column", CANVAS_COLUMN]), ("moodle", moodle_roster, [])):
        runs[f"export {lms}"] = cli("export", str(merged), "--format", lms, "--roster", str(roster), *column,
                                    "--out", str(root / f"{lms}.csv"))
    return {"root": root, "runs": runs, "seconds": time.monotonic() - start}


def test_the_archives_give_every_student_one_submission_in_exactly_one_shard(graded_class):
    """What `grade` took in (each shard's manifest lists its submissions): 300 students, once each."""
    root = graded_class["root"]
    shards = [json.loads((root / f"shard{k}" / "grading.json").read_text())["listed"] for k in (1, 2, 3)]
    names = [name for shard in shards for name in shard]
    assert len(names) == len(set(names)) == len(STUDENTS) and all(shards)
    assert sorted(int(re.search(ID_PATTERN, n).group("id")) for n in names) == list(STUDENTS)
    assert sum("_LATE_" in n for n in names) == sum(1 for s in STUDENTS if s < 20150 and s % 7 == 0)
    uploaded_twice = [s for s in STUDENTS if s < 20150 and s % 25 == 0]
    assert all(any(f"_{s}_{600000 + s}_labdemo-1" in n for n in names) for s in uploaded_twice)  # the later upload
    assert sum("très long" in n for n in names) == len(LONG)


def test_every_student_gets_exactly_one_row_with_a_status(graded_class):
    runs = graded_class["runs"]
    assert {k: r.returncode for k, r in runs.items() if k.startswith(("shard", "merge"))} == {
        k: 0 for k in runs if k.startswith(("shard", "merge"))}, {k: r.stderr[-2000:] for k, r in runs.items()}
    summary = read_csv(graded_class["root"] / "merged" / "summary.csv")
    assert sorted(int(r["id"]) for r in summary) == list(STUDENTS)
    status = {int(r["id"]): r["status"] for r in summary}
    assert {s for s, st in status.items() if st == "invalid-notebook"} == set(BROKEN)
    assert not any(status[s] in ("invalid-notebook", "grader-error") for s in STUDENTS if s not in BROKEN)
    assert all(f"_{r['id']}_" in r["submission"] for r in summary)
    pages = list((graded_class["root"] / "merged" / "feedback").rglob("*.html"))
    assert len(pages) == len(summary)  # one feedback page per student, long names included


def test_each_export_has_one_value_per_student_equal_to_the_gradebook(graded_class):
    runs, root = graded_class["runs"], graded_class["root"]
    assert runs["export canvas"].returncode == runs["export moodle"].returncode == 0, (
        runs["export canvas"].stderr, runs["export moodle"].stderr)
    score = {r["id"]: r["score"] for r in read_csv(root / "merged" / "summary.csv")}
    canvas = [r for r in read_csv(root / "canvas.csv") if r["ID"]]
    moodle = read_csv(root / "moodle.csv")
    for rows, key, column in ((canvas, "ID", CANVAS_COLUMN), (moodle, "Identifier", "Grade")):
        values = {r[key].removeprefix("Participant "): r[column] for r in rows}
        assert len(rows) == len(values) == len(STUDENTS) and set(values) == {str(s) for s in STUDENTS}
        assert all(values[s] != "" and float(values[s]) == pytest.approx(float(score[s])) for s in values)
        assert all(float(values[str(s)]) == EXPECTED[s % len(EXPECTED)] for s in STUDENTS if s not in BROKEN)


def test_the_class_is_graded_in_well_under_two_minutes(graded_class):
    """The whole path (three shards, merges, exports): about 15 s on 2 busy cores, 35 s at a load of 16; a
    cache that stopped working (300 notebooks graded one by one) would take several minutes."""
    print(f"class of {len(STUDENTS)}: {graded_class['seconds']:.1f} s")
    assert graded_class["seconds"] < 120
