"""Student ids, shards, merge, written scores and the Canvas/Moodle gradebook files (utils/grading/lms.py, shard.py).

The LMS files are checked the way the LMS reads them: columns found by name, students by their id, and an
export fed back as the roster gives the same file (round trip). The last test grades real submissions.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from utils.grading.cli import main
from utils.grading.gradebook import GRADES_COLUMNS, SUMMARY_COLUMNS, WRITTEN_COLUMNS, UsageError, _csv
from utils.grading.lms import (ID_PRESETS, READ, read_csv, compile_id_pattern, merge_outputs, student_id,
                               write_manifest)
from utils.grading.release import release_all
from utils.grading.shard import Shard, parse_shard, select

LMS = Path(__file__).parent / "fixtures" / "lms"
CANVAS_ROSTER, MOODLE_ROSTER = LMS / "canvas-gradebook-export.csv", LMS / "moodle-grading-worksheet.csv"
FIXTURES = Path(__file__).parent / "fixtures" / "grading" / "solutions"



def fake_output(folder: Path, students: dict[str, tuple[str, str, str]], shard: str | None = None,
                written_score: str = "") -> Path:
    """A grading output folder: name -> (id, code score or '' for a grader failure, written answer)."""
    grades, summary, written = [], [], []
    for name, (sid, code, answer) in students.items():
        status = "grader-error" if code == "" else "passed"
        grades.append({"submission": name, "lab": "lab1", "question": "q1", "score": code, "max_score": "10.0",
                       "status": status, "message": ""})
        grades.append({"submission": name, "lab": "lab1", "question": "w1", "score": "" if code == "" else "0.0",
                       "max_score": "2.0", "status": status if code == "" else "needs-reading", "message": answer})
        summary.append({"submission": name, "id": sid, "score": code, "max_score": "12.0",
                        "status": "grader-error" if code == "" else "needs-reading"})
        if code != "":
            written.append({"submission": name, "lab": "lab1", "question": "w1", "max_score": "2.0",
                            "score": written_score, "answer": answer})
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "grades.csv").write_text(_csv(GRADES_COLUMNS, grades), encoding="utf-8")
    (folder / "summary.csv").write_text(_csv(SUMMARY_COLUMNS, summary), encoding="utf-8")
    (folder / "written.csv").write_text(_csv(WRITTEN_COLUMNS, written), encoding="utf-8")
    write_manifest(folder, "lab1", shard, students)
    return folder


CANVAS_CLASS = {"doejane_12345_678901_lab1": ("12345", "9.0", "Rare words get [UNK]."),
                "smithjohn_LATE_12346_678902_lab1": ("12346", "", "x"),
                "leeana_12347_678903_lab1": ("12347", "4.5", "")}
MOODLE_CLASS = {"Jane Doe_1234567_assignsubmission_file_/lab1": ("1234567", "10.0", "An answer."),
                "John Smith_1234568_assignsubmission_file_lab1": ("1234568", "", "x"),
                "Ana Lee_1234569_assignsubmission_file_lab1": ("1234569", "3.0", "")}


# ----------------------------------------------------------------------------------------------------- ids


@pytest.mark.parametrize("preset, name, expected", [
    ("canvas", "doejane_12345_678901_lab1", "12345"),
    ("canvas", "doejane_LATE_12345_678901_lab1-1", "12345"),
    ("canvas", "section-a/doejane_12345_678901_lab1", "12345"),
    ("moodle", "Jane Doe_1234567_assignsubmission_file_lab1", "1234567"),
    ("moodle", "Jane Doe_1234567_assignsubmission_file_/lab1", "1234567"),
    ("moodle", "Anne-Marie O'Neil_77_assignsubmission_onlinetext_/lab1", "77"),
    (r"s(\d{6})", "lab1-s123456", "123456"),
    (r"^(?P<id>[a-z]+)\.", "jdoe.lab1", "jdoe"),
    ("canvas", "lab1", ""),  # no match: empty id, never a guess
])
def test_id_patterns_take_the_id_from_lms_download_names(preset, name, expected):
    assert student_id(name, compile_id_pattern(preset)) == expected


def test_bad_id_patterns_say_what_to_write():
    with pytest.raises(UsageError, match="group named id"):
        compile_id_pattern(r"\d+")
    with pytest.raises(UsageError, match="not a regular expression"):
        compile_id_pattern("(")
    assert set(ID_PRESETS) == {"canvas", "moodle"}


# -------------------------------------------------------------------------------------------------- shards


def test_shards_partition_the_submissions_stably():
    names = [f"student{i:04d}" for i in range(1000)]
    parts = [select(names, Shard(k, 4), name=str) for k in range(1, 5)]
    assert sorted(n for part in parts for n in part) == sorted(names)  # each name in exactly one shard
    assert all(200 < len(part) < 300 for part in parts)  # roughly a quarter each
    late = names + ["late-submission"]
    assert [select(late, Shard(k, 4), name=str) for k in range(1, 5)] != parts  # the newcomer lands somewhere
    assert [[n for n in select(late, Shard(k, 4), name=str) if n != "late-submission"] for k in range(1, 5)] == parts


@pytest.mark.parametrize("text", ["0/4", "5/4", "1/0", "1-4", "a/b", ""])
def test_bad_shards_are_refused(text):
    with pytest.raises(ValueError, match="K/N|shard"):
        parse_shard(text)


def test_bad_shard_on_the_command_line_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["grade", "--lab", "labdemo", "--out", "x", "--shard", "3/2", "y"])
    assert exit_.value.code == 2 and "1 <= K <= N" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------- merge (fake runs)


def test_merge_refuses_incomplete_or_overlapping_shards(tmp_path):
    one = fake_output(tmp_path / "s1", {"a": ("1", "5.0", "")}, "1/3")
    two = fake_output(tmp_path / "s2", {"b": ("2", "5.0", "")}, "2/3")
    with pytest.raises(UsageError, match="3/3 missing"):
        merge_outputs([one, two], tmp_path / "out")
    with pytest.raises(UsageError, match="given twice"):
        merge_outputs([one, one, two], tmp_path / "out")
    other = fake_output(tmp_path / "other", {"a": ("1", "5.0", "")})
    with pytest.raises(UsageError, match="different splits"):
        merge_outputs([one, other], tmp_path / "out")
    with pytest.raises(UsageError, match="in both"):  # e.g. the same class graded twice
        merge_outputs([other, fake_output(tmp_path / "again", {"a": ("1", "5.0", "")})], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_merge_folds_written_scores_and_keeps_failures_empty(tmp_path):
    folder = fake_output(tmp_path / "run", CANVAS_CLASS, written_score="1.5")
    assert main(["merge", "--out", str(folder), str(folder)]) == 0
    summary = {r["submission"]: r for r in read_csv(folder / "summary.csv")}
    assert summary["doejane_12345_678901_lab1"]["score"] == "10.5"
    assert summary["doejane_12345_678901_lab1"]["status"] == "graded"
    assert summary["smithjohn_LATE_12346_678902_lab1"]["score"] == ""  # a grader failure is not a 0
    rows = [r for r in read_csv(folder / "grades.csv") if r["question"] == "w1" and r["submission"].startswith("doe")]
    assert rows[0]["status"] == READ and rows[0]["score"] == "1.5"
    assert main(["merge", "--out", str(folder), str(folder)]) == 0  # folding twice adds nothing
    assert {r["submission"]: r for r in read_csv(folder / "summary.csv")} == summary


def test_two_shards_cannot_share_an_output_folder(tmp_path, capsys):
    folder = fake_output(tmp_path / "out", {"a": ("1", "5.0", "")}, "1/2")
    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "x.ipynb").write_bytes(b"")
    assert main(["grade", "--lab", "labdemo", "--solutions", str(FIXTURES), "--out", str(folder), "--shard", "2/2",
                 "--quiet", str(subs)]) == 2
    assert "its own --out" in capsys.readouterr().err


def test_written_scores_outside_the_range_are_refused(tmp_path, capsys):
    folder = fake_output(tmp_path / "run", CANVAS_CLASS, written_score="3")
    assert main(["merge", "--out", str(folder), str(folder)]) == 2
    assert "outside 0..2" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ Canvas and Moodle


def canvas_import(path: Path, column: str) -> dict[str, str]:
    """What Canvas's gradebook import reads: the assignment column by student ID (header rows have no ID)."""
    rows = read_csv(path)
    assert list(rows[0]) [:5] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
    return {r["ID"]: r[column] for r in rows if r["ID"]}


def moodle_import(path: Path) -> dict[str, str]:
    """What Moodle's grading worksheet import reads: Grade by the number after 'Participant '."""
    rows = read_csv(path)
    assert {"Identifier", "Grade", "Last modified (grade)"} <= set(rows[0])
    return {r["Identifier"].removeprefix("Participant "): r["Grade"] for r in rows}


def test_canvas_export_imports_and_round_trips(tmp_path):
    folder = fake_output(tmp_path / "run", CANVAS_CLASS, written_score="2")
    out = tmp_path / "canvas.csv"
    assert main(["export", str(folder), "--format", "canvas", "--roster", str(CANVAS_ROSTER), "--out", str(out),
                 "--skip-unknown"]) == 0
    grades = canvas_import(out, "Lab 1 (4101)")
    assert grades == {"12345": "11", "12346": "", "12347": "6.5", "12348": "", "99999": ""}
    rows = read_csv(out)
    assert rows[0]["Student"].strip() == "Points Possible" and rows[0]["Lab 1 (4101)"] == "12"
    assert [r["Student"] for r in rows[1:]] == [r["Student"] for r in read_csv(CANVAS_ROSTER)[1:]]
    assert "Lab 2 (4102)" not in rows[0]  # other assignments are left out, so the import cannot change them
    again = tmp_path / "again.csv"
    assert main(["export", str(folder), "--format", "canvas", "--roster", str(out), "--out", str(again)]) == 0
    assert again.read_bytes() == out.read_bytes()


def test_moodle_export_imports_and_round_trips(tmp_path):
    folder = fake_output(tmp_path / "run", MOODLE_CLASS)
    out = tmp_path / "moodle.csv"
    assert main(["export", str(folder), "--format", "moodle", "--roster", str(MOODLE_ROSTER), "--out", str(out)]) == 0
    assert moodle_import(out) == {"1234567": "10", "1234568": "", "1234569": "3", "1234570": ""}
    rows, roster = read_csv(out), read_csv(MOODLE_ROSTER)
    assert list(rows[0]) == list(roster[0])  # every column kept, in Moodle's order
    assert [{k: v for k, v in r.items() if k != "Grade"} for r in rows] == [
        {k: v for k, v in r.items() if k != "Grade"} for r in roster]
    again = tmp_path / "again.csv"
    assert main(["export", str(folder), "--format", "moodle", "--roster", str(out), "--out", str(again)]) == 0
    assert again.read_bytes() == out.read_bytes()


def test_export_stops_on_ids_it_cannot_place(tmp_path, capsys):
    folder = fake_output(tmp_path / "run", CANVAS_CLASS | {"stranger_55555_1_lab1": ("55555", "1.0", "")})
    assert main(["export", str(folder), "--format", "canvas", "--roster", str(CANVAS_ROSTER)]) == 2
    assert "55555" in capsys.readouterr().err and not list(folder.glob("canvas-*.csv"))
    assert main(["export", str(folder), "--format", "moodle", "--roster", str(CANVAS_ROSTER)]) == 2
    assert "not a Moodle grading worksheet" in capsys.readouterr().err
    no_ids = fake_output(tmp_path / "no-ids", {"lab1": ("", "5.0", "")})
    assert main(["export", str(no_ids), "--format", "canvas", "--roster", str(CANVAS_ROSTER)]) == 2
    assert "--id-pattern" in capsys.readouterr().err
    twice = fake_output(tmp_path / "twice", {"a_12345_1_lab1": ("12345", "5.0", ""), "b_12345_2_lab1": ("12345", "6.0", "")})
    assert main(["export", str(twice), "--format", "canvas", "--roster", str(CANVAS_ROSTER)]) == 2
    assert "two submissions" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------- real grading, sharded


def test_two_shards_merged_give_the_rows_of_one_run(tmp_path):
    """Grade four labdemo submissions once, and as shards 1/2 and 2/2; merged, the shards give the same CSVs."""
    labs = tmp_path / "labs"
    release_all(FIXTURES, labs)
    solution = (FIXTURES / "labdemo" / "labdemo.ipynb").read_bytes()
    subs = tmp_path / "submissions"
    subs.mkdir()
    files = {"doejane_12345_1_labdemo": solution, "leeana_12347_3_labdemo": b"not a notebook",
             "smithjohn_LATE_12346_2_labdemo": (labs / "labdemo" / "labdemo.ipynb").read_bytes(),
             "okaforchidi_12348_4_labdemo": b""}
    for name, data in files.items():
        (subs / f"{name}.ipynb").write_bytes(data)
    assert all(select(list(files), Shard(k, 2), name=str) for k in (1, 2)), "pick names that fill both shards"
    common = ["grade", "--lab", "labdemo", "--solutions", str(FIXTURES), "--id-pattern", "canvas", "--jobs", "1",
              "--timeout", "20", "--quiet", str(subs)]
    main([*common, "--out", str(tmp_path / "whole")])
    for k in (1, 2):
        main([*common, "--out", str(tmp_path / f"shard{k}"), "--shard", f"{k}/2"])
    with pytest.raises(UsageError, match="2/2 missing"):
        merge_outputs([tmp_path / "shard1"], tmp_path / "merged")
    assert main(["merge", "--out", str(tmp_path / "merged"), str(tmp_path / "shard1"), str(tmp_path / "shard2")]) == 0
    for table in ("grades.csv", "summary.csv", "written.csv"):
        key = lambda row: (row["submission"], row.get("question", ""))
        whole = sorted(read_csv(tmp_path / "whole" / table), key=key)
        assert whole and sorted(read_csv(tmp_path / "merged" / table), key=key) == whole, table
    pages = lambda folder: sorted(p.name for p in (folder / "feedback").glob("*.html"))
    assert pages(tmp_path / "merged") == pages(tmp_path / "whole") == sorted(f"{n}.html" for n in files)
    summary = {r["id"]: r for r in read_csv(tmp_path / "merged" / "summary.csv")}
    assert set(summary) == {"12345", "12346", "12347", "12348"}
    assert json.loads((tmp_path / "shard2" / "grading.json").read_text())["shard"] == "2/2"

    # The instructor scores the written answer; re-grading (from the cache) keeps the score, merge folds it in.
    written = tmp_path / "whole" / "written.csv"
    rows = read_csv(written)
    answered = next(r for r in rows if r["submission"] == "doejane_12345_1_labdemo")
    answered["score"] = answered["max_score"]
    written.write_text(_csv(list(rows[0]), rows), encoding="utf-8")
    main([*common, "--out", str(tmp_path / "whole")])
    assert next(r for r in read_csv(written) if r["submission"] == answered["submission"])["score"] == answered["score"]
    before = float(summary["12345"]["score"])
    assert main(["merge", "--out", str(tmp_path / "whole"), str(tmp_path / "whole")]) == 0
    after = {r["id"]: r for r in read_csv(tmp_path / "whole" / "summary.csv")}["12345"]
    assert float(after["score"]) == before + float(answered["max_score"]) and after["status"] == "graded"
    shutil.rmtree(tmp_path / "whole" / ".cache", ignore_errors=True)
