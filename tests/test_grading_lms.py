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
from utils.grading.lms import CANVAS_COLUMNS, ID_PRESETS, compile_id_pattern, merge_outputs, read_csv, student_id
from utils.grading.release import release_all
from utils.grading.scores import READ, WRITTEN_COLUMNS, Record, UsageError, csv_text, publish
from utils.grading.shard import Shard, parse_shard, select

LMS = Path(__file__).parent / "fixtures" / "lms"
CANVAS_ROSTER, MOODLE_ROSTER = LMS / "canvas-gradebook-export.csv", LMS / "moodle-grading-worksheet.csv"
FIXTURES = Path(__file__).parent / "fixtures" / "grading" / "solutions"
QUESTIONS = [{"id": "q1", "points": 10.0, "kind": "test"}, {"id": "w1", "points": 2.0, "kind": "written"}]


def fake_result(sid: str, code: str, answer: str, late: bool = False) -> dict:
    """An automatic result as the grader records it: code score ('' for a grader failure) and a written answer."""
    if code == "":
        questions = [{"question": q["id"], "score": 0.0, "max_score": q["points"], "status": "grader-error",
                      "message": "the grader failed"} for q in QUESTIONS]
        return {"status": "grader-error", "message": "the grader failed", "score": 0.0, "max_score": 12.0,
                "questions": questions, "id": sid, "late": late, "settings": "s"}
    questions = [{"question": "q1", "score": float(code), "max_score": 10.0, "status": "passed", "message": ""},
                 {"question": "w1", "score": 0.0, "max_score": 2.0, "status": "needs-reading",
                  "message": answer or "(no answer written)", "answer": answer}]
    return {"status": "needs-reading" if answer else "graded", "message": "", "score": float(code),
            "max_score": 12.0, "questions": questions, "id": sid, "late": late, "settings": "s"}


def fake_output(folder: Path, students: dict[str, tuple[str, str, str]], shard: str | None = None,
                written_score: str = "", classlist: list[str] | None = None) -> Path:
    """A grading output folder: name -> (id, code score or '' for a grader failure, written answer)."""
    record = Record("lab1", QUESTIONS, shard, sorted(classlist or students), sorted(students),
                    {name: fake_result(*value, late="_LATE_" in name) for name, value in students.items()})
    folder.mkdir(parents=True, exist_ok=True)
    record.save(folder)
    written = [{"submission": name, "lab": "lab1", "question": "w1", "max_score": 2.0,
                "score": written_score if answer else "", "answer": answer}
               for name, (sid, code, answer) in students.items() if code != ""]
    (folder / "written.csv").write_text(csv_text(WRITTEN_COLUMNS, written), encoding="utf-8")
    publish(folder, record)
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
    ("canvas", "o_brienpat_12345_678901_lab1", "12345"),  # Canvas keeps an underscore of the sortable name
    ("canvas", "o_brienpat_LATE_12345_678901_lab_1", "12345"),
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
    folder = fake_output(tmp_path / "run", CANVAS_CLASS, written_score="2")
    written = folder / "written.csv"
    written.write_text(written.read_text().replace(",2,", ",3,", 1))
    assert main(["merge", "--out", str(folder), str(folder)]) == 2
    assert "line 2: score '3' is outside 0..2" in capsys.readouterr().err
    assert main(["export", str(folder), "--format", "canvas", "--roster", str(CANVAS_ROSTER)]) == 2


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


def export(folder: Path, fmt: str, roster: Path, out: Path, *flags: str) -> int:
    return main(["export", str(folder), "--format", fmt, "--roster", str(roster), "--out", str(out), *flags])


def roster_variant(tmp_path: Path, source: Path, *replacements: tuple[str, str]) -> Path:
    """A copy of an LMS fixture with some text replaced (another maximum, a hand-entered value, ...)."""
    text = source.read_text(encoding="utf-8-sig")
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / f"roster-{len(list(tmp_path.glob('roster-*')))}.csv"
    path.write_text(text, encoding="utf-8-sig" if source == MOODLE_ROSTER else "utf-8")
    return path


def test_canvas_export_imports_and_round_trips(tmp_path, capsys):
    folder = fake_output(tmp_path / "run", CANVAS_CLASS, written_score="2")
    out = tmp_path / "canvas.csv"
    assert export(folder, "canvas", CANVAS_ROSTER, out) == 2  # smithjohn: the grader failed
    assert "not completely graded: smithjohn" in capsys.readouterr().err and not out.exists()
    assert export(folder, "canvas", CANVAS_ROSTER, out, "--partial") == 0
    grades = canvas_import(out, "Lab 1 (4101)")
    assert grades == {"12345": "11", "12346": "", "12347": "4.5", "12348": "", "99999": ""}
    rows = read_csv(out)
    assert rows[0]["Student"] == "    Points Possible" and rows[0]["Lab 1 (4101)"] == "12.00"  # as Canvas wrote it
    assert [r["Student"] for r in rows[1:]] == [r["Student"] for r in read_csv(CANVAS_ROSTER)[1:]]
    assert list(rows[0]) == CANVAS_COLUMNS + ["Lab 1 (4101)"]  # no other assignment, no new column
    again = tmp_path / "again.csv"
    assert export(folder, "canvas", out, again, "--partial") == 0
    assert again.read_bytes() == out.read_bytes()


def test_canvas_scores_go_out_on_the_assignments_maximum(tmp_path, capsys):
    folder = fake_output(tmp_path / "run", CANVAS_CLASS, written_score="1.5")
    roster = roster_variant(tmp_path, CANVAS_ROSTER, ("12.00,10.00", "100.00,10.00"))
    out = tmp_path / "canvas.csv"
    assert export(folder, "canvas", roster, out, "--partial") == 2
    err = capsys.readouterr().err
    assert "out of 100 points but the lab is out of 12" in err and "--scale" in err and not out.exists()
    assert export(folder, "canvas", roster, out, "--partial", "--scale") == 0
    grades = canvas_import(out, "Lab 1 (4101)")
    assert grades["12345"] == "87.5" and grades["12347"] == "37.5"  # 10.5/12 and 4.5/12 of 100
    assert read_csv(out)[0]["Lab 1 (4101)"] == "100.00"  # Canvas keeps its maximum


def test_canvas_roster_values_without_a_submission_are_kept(tmp_path, capsys):
    folder = fake_output(tmp_path / "run", CANVAS_CLASS, written_score="2")
    roster = roster_variant(tmp_path, CANVAS_ROSTER, ("NLP 2026 B,,,,,\n\"Okafor", "NLP 2026 B,EX,,,,\n\"Okafor"),
                            ("cokafor,NLP 2026 B,,", "cokafor,NLP 2026 B,7.25,"),
                            ("jsmith,NLP 2026 A,,", "jsmith,NLP 2026 A,9,"))
    out = tmp_path / "canvas.csv"
    assert export(folder, "canvas", roster, out, "--partial") == 0
    grades = canvas_import(out, "Lab 1 (4101)")
    assert grades["12347"] == "4.5"  # Lee has a submission: graded
    assert grades["12348"] == "7.25"  # no submission: the hand-entered score stays
    assert grades["12346"] == "9"  # the grader failed (--partial): the roster's value stays, never blanked
    excused = roster_variant(tmp_path, CANVAS_ROSTER, ("jdoe,NLP 2026 A,,", "jdoe,NLP 2026 A,EX,"))
    assert export(folder, "canvas", excused, out, "--partial") == 0
    assert "values already in the roster that this file changes: 12345 ('EX' -> '11')" in capsys.readouterr().out


def test_canvas_column_is_found_never_added(tmp_path, capsys):
    folder = fake_output(tmp_path / "run", {"doejane_12345_678901_lab1": ("12345", "9.0", "")})
    out = tmp_path / "canvas.csv"
    no_column = roster_variant(tmp_path, CANVAS_ROSTER, ("Lab 1 (4101)", "Essay (4101)"))
    assert export(folder, "canvas", no_column, out) == 2
    assert "no column matches it" in capsys.readouterr().err
    assert export(folder, "canvas", no_column, out, "--column", "Lab 1 (4101)") == 2
    assert "no column 'Lab 1 (4101)'" in capsys.readouterr().err
    two = roster_variant(tmp_path, CANVAS_ROSTER, ("Lab 2 (4102)", "Lab 1 redo (4109)"))
    assert export(folder, "canvas", two, out) == 2
    assert "2 columns match it" in capsys.readouterr().err and not out.exists()
    assert export(folder, "canvas", two, out, "--column", "Lab 1 redo (4109)", "--scale") == 0
    assert canvas_import(out, "Lab 1 redo (4109)")["12345"] == "7.5"  # 9/12 of 10 points
    assert "Lab 1 (4101)" not in read_csv(out)[0]
    no_points = roster_variant(tmp_path, CANVAS_ROSTER, ("    Points Possible", "Nobody"))
    assert export(folder, "canvas", no_points, out) == 2
    assert "no 'Points Possible' row" in capsys.readouterr().err


def test_unscored_written_answers_are_never_a_silent_zero(tmp_path, capsys):
    folder = fake_output(tmp_path / "run", {"doejane_12345_678901_lab1": ("12345", "9.0", "My answer."),
                                            "leeana_12347_678903_lab1": ("12347", "4.5", "")})
    out = tmp_path / "canvas.csv"
    assert export(folder, "canvas", CANVAS_ROSTER, out) == 2
    err = capsys.readouterr().err
    assert "1 written answer(s) have no score" in err and "doejane_12345_678901_lab1 w1" in err
    assert "--unscored-zero" in err and not out.exists()
    assert export(folder, "canvas", CANVAS_ROSTER, out, "--unscored-zero") == 0
    assert "counted as 0 (--unscored-zero): doejane_12345_678901_lab1 w1" in capsys.readouterr().out
    assert canvas_import(out, "Lab 1 (4101)")["12345"] == "9"


def test_moodle_export_imports_and_round_trips(tmp_path):
    folder = fake_output(tmp_path / "run", MOODLE_CLASS)
    out = tmp_path / "moodle.csv"
    assert export(folder, "moodle", MOODLE_ROSTER, out, "--partial", "--unscored-zero") == 0
    assert moodle_import(out) == {"1234567": "10", "1234568": "", "1234569": "3", "1234570": ""}
    rows, roster = read_csv(out), read_csv(MOODLE_ROSTER)
    assert list(rows[0]) == list(roster[0])  # every column kept, in Moodle's order
    assert [{k: v for k, v in r.items() if k != "Grade"} for r in rows] == [
        {k: v for k, v in r.items() if k != "Grade"} for r in roster]
    again = tmp_path / "again.csv"
    assert export(folder, "moodle", out, again, "--partial", "--unscored-zero") == 0
    assert again.read_bytes() == out.read_bytes()


def test_moodle_grades_respect_each_rows_maximum_and_dates_mark_late(tmp_path, capsys):
    folder = fake_output(tmp_path / "run", MOODLE_CLASS, written_score="2")
    roster = roster_variant(tmp_path, MOODLE_ROSTER, (",12.00,", ",100.00,"), ("Chidi Okafor\",chidi.okafor@example.edu,"
                            "\"No submission\",", "Chidi Okafor\",chidi.okafor@example.edu,\"No submission\",55.5"))
    out = tmp_path / "moodle.csv"
    assert export(folder, "moodle", roster, out, "--partial") == 2  # Moodle would skip 12 > ... or keep 10/100
    assert "out of 100 points but the lab is out of 12" in capsys.readouterr().err
    assert export(folder, "moodle", roster, out, "--partial", "--scale", "--due", "2026-11-30 23:00") == 0
    grades = moodle_import(out)
    assert grades == {"1234567": "100", "1234568": "", "1234569": "25", "1234570": "55.5"}  # 12/12, 3/12; kept
    assert all(0 <= float(g) <= 100 for g in grades.values() if g)  # what Moodle's range check accepts
    assert "late (after --due" in capsys.readouterr().out
    late = {r["id"]: r["late"] for r in read_csv(folder / "summary.csv")}
    assert late == {"1234567": "", "1234568": "yes", "1234569": "yes"}  # 10:02 AM; 11:40 PM; the next morning


def test_export_stops_on_ids_it_cannot_place(tmp_path, capsys):
    folder = fake_output(tmp_path / "run", CANVAS_CLASS | {"stranger_55555_1_lab1": ("55555", "1.0", "")},
                         written_score="1")
    assert main(["export", str(folder), "--format", "canvas", "--roster", str(CANVAS_ROSTER), "--partial"]) == 2
    assert "55555" in capsys.readouterr().err and not list(folder.glob("canvas-*.csv"))
    assert main(["export", str(folder), "--format", "moodle", "--roster", str(CANVAS_ROSTER), "--partial"]) == 2
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
    written.write_text(csv_text(list(rows[0]), rows), encoding="utf-8")
    main([*common, "--out", str(tmp_path / "whole")])
    kept = next(r for r in read_csv(written) if r["submission"] == answered["submission"])["score"]
    assert float(kept) == float(answered["score"])
    before = float(summary["12345"]["score"])
    assert main(["merge", "--out", str(tmp_path / "whole"), str(tmp_path / "whole")]) == 0
    after = {r["id"]: r for r in read_csv(tmp_path / "whole" / "summary.csv")}["12345"]
    assert float(after["score"]) == before + float(answered["max_score"]) and after["status"] == "graded"
    shutil.rmtree(tmp_path / "whole" / ".cache", ignore_errors=True)
