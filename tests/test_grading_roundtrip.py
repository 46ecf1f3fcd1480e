"""An instructor's round trip with real grading (utils/grading/scores.py, gradebook.py, lms.py): grade a class of
labdemo notebooks named as Canvas names them, score the written answers in a spreadsheet, re-grade in every way
(cached, one new file, --force, interrupted), correct a score, shard and merge, and export to Canvas; every
number that reaches the export is checked. labdemo grades in well under a second per notebook.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest

from utils.grading import gradebook as gradebook_module
from utils.grading.cli import main
from utils.grading.lms import read_csv
from utils.grading.release import release_all
from utils.grading.scores import CHANGED, feedback_file

FIXTURES = Path(__file__).parent / "fixtures" / "grading" / "solutions"
CANVAS_ROSTER = Path(__file__).parent / "fixtures" / "lms" / "canvas-gradebook-export.csv"
SOLUTION = json.loads((FIXTURES / "labdemo" / "labdemo.ipynb").read_text())
FORMULA = "=1+1 is how I would check it: the product of two negatives is positive."
DOE, SMITH, LEE = "doejane_12345_678901_labdemo", "smithjohn_LATE_12346_678902_labdemo", "leeana_12347_678903_labdemo"
OKAFOR = "okaforchidi_12348_678904_labdemo"


def with_answer(text: str) -> bytes:
    """The solution notebook with another written answer."""
    notebook = json.loads(json.dumps(SOLUTION))
    for cell in notebook["cells"]:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "explain":
            cell["source"] = text
    return json.dumps(notebook).encode()


def grade(subs: Path, out: Path, *flags: str) -> int:
    return main(["grade", "--lab", "labdemo", "--solutions", str(FIXTURES), "--out", str(out), "--jobs", "2",
                 "--timeout", "20", "--memory", "1G", "--id-pattern", "canvas", "--quiet", *flags, str(subs)])


def canvas_roster(tmp_path: Path) -> Path:
    """Canvas's gradebook export with an assignment 'labdemo (4103)' out of 7 points (the lab's maximum)."""
    path = tmp_path / "roster.csv"
    path.write_text(CANVAS_ROSTER.read_text(encoding="utf-8").replace("Lab 2 (4102)", "labdemo (4103)")
                    .replace("12.00,10.00", "12.00,7.00"), encoding="utf-8")
    return path


def export(folder: Path, roster: Path, *flags: str) -> dict[str, str]:
    """Export to Canvas and read back what Canvas imports: the labdemo column by student ID."""
    out = folder.parent / f"{folder.name}-canvas.csv"
    assert main(["export", str(folder), "--format", "canvas", "--roster", str(roster), "--out", str(out),
                 *flags]) == 0
    return {r["ID"]: r["labdemo (4103)"] for r in read_csv(out) if r["ID"]}


def spreadsheet_save(path: Path, scores: dict[str, str], encoding: str, note: str = "") -> None:
    """Fill written.csv's score column as a spreadsheet does: apostrophes gone, CRLF line ends, its encoding."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:  # the spreadsheet opens what it saved itself
        text = data.decode("cp1252")
    rows = list(csv.DictReader(io.StringIO(text)))
    for row in rows:
        row["score"] = scores.get(row["submission"], row["score"])
        row["answer"] = row["answer"].removeprefix("'")
        row["note"] = note
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_bytes(buffer.getvalue().encode(encoding))


def summary(folder: Path) -> dict[str, dict[str, str]]:
    return {r["submission"]: r for r in read_csv(folder / "summary.csv")}


@pytest.fixture()
def subs(tmp_path):
    folder = tmp_path / "subs"
    folder.mkdir()
    (folder / f"{DOE}.ipynb").write_bytes(with_answer("A negative times a negative is positive."))
    (folder / f"{SMITH}.ipynb").write_bytes(with_answer(FORMULA))
    release_all(FIXTURES, tmp_path / "labs")
    (folder / f"{LEE}.ipynb").write_bytes((tmp_path / "labs" / "labdemo" / "labdemo.ipynb").read_bytes())
    return folder


def test_an_instructors_round_trip_keeps_every_score(subs, tmp_path, capsys):
    out, roster = tmp_path / "out", canvas_roster(tmp_path)
    assert grade(subs, out) == 0
    written = out / "written.csv"
    assert {r["submission"]: r["score"] for r in read_csv(written)} == {DOE: "", SMITH: "", LEE: ""}
    assert main(["export", str(out), "--format", "canvas", "--roster", str(roster)]) == 2
    assert "2 written answer(s) have no score" in capsys.readouterr().err

    # Saved by a Windows spreadsheet as "CSV": cp1252. Refused before anything runs; the file is left as it was.
    spreadsheet_save(written, {DOE: "2", SMITH: "1,5"}, "cp1252", note="très bien")
    saved = written.read_bytes()
    assert grade(subs, out) == 2
    err = capsys.readouterr().err
    assert "is not UTF-8" in err and "CSV UTF-8" in err and written.read_bytes() == saved
    # Saved again as "CSV UTF-8": BOM, CRLF, the formula's protective apostrophe removed. Every score is kept.
    spreadsheet_save(written, {DOE: "2", SMITH: "1,5"}, "utf-8-sig", note="très bien")
    assert grade(subs, out) == 0
    rows = {r["submission"]: r for r in read_csv(written)}
    assert (rows[DOE]["score"], rows[SMITH]["score"], rows[SMITH]["check"]) == ("2", "1.5", "")
    assert rows[SMITH]["answer"] == "'" + FORMULA and rows[DOE]["note"] == "très bien"
    assert {n: r["score"] for n, r in summary(out).items()} == {DOE: "7.0", SMITH: "6.5", LEE: "0.0"}
    assert summary(out)[SMITH]["late"] == "yes" and summary(out)[DOE]["late"] == ""

    # One late file graded alone into the folder: the outputs still describe the whole class.
    late = tmp_path / "late"
    late.mkdir()
    (late / f"{OKAFOR}.ipynb").write_bytes(with_answer("Because the signs cancel."))
    assert grade(late, out) == 0
    assert set(summary(out)) == {DOE, SMITH, LEE, OKAFOR}
    assert {r["submission"]: r["score"] for r in read_csv(written)}[SMITH] == "1.5"
    # --force grades everything again; the entered scores stay.
    assert grade(subs, out, "--force") == 0
    assert {r["submission"]: r["score"] for r in read_csv(written)} == {DOE: "2", SMITH: "1.5", LEE: "", OKAFOR: ""}

    # A correction, then the last answer scored: export folds in the latest value, on Canvas's scale.
    spreadsheet_save(written, {DOE: "1", OKAFOR: "0.5"}, "utf-8")
    grades = export(out, roster)
    assert grades == {"12345": "6", "12346": "6.5", "12347": "0", "12348": "5.5", "99999": ""}
    page = (out / "feedback" / f"{DOE}.html").read_text()  # regenerated: the page agrees with the export
    assert "<b>6 / 7</b>" in page and ">read<" in page
    assert "late" in capsys.readouterr().out  # smithjohn's _LATE_ is reported for the course's policy


def test_an_interrupted_regrade_keeps_entered_scores_and_says_what_is_missing(subs, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    assert grade(subs, out) == 0
    spreadsheet_save(out / "written.csv", {DOE: "2", SMITH: "1"}, "utf-8")
    real = gradebook_module.Gradebook.grade_one

    def interrupted(self, submission, scratch, index):
        if submission.name == SMITH:
            raise KeyboardInterrupt
        return real(self, submission, scratch, index)
    monkeypatch.setattr(gradebook_module.Gradebook, "grade_one", interrupted)
    (subs / "zz_99999_1_labdemo.ipynb").write_bytes(with_answer("New."))
    assert grade(subs, out, "--force", "--jobs", "1") == 130  # doejane, leeana, then Ctrl-C on smithjohn
    rows = {r["submission"]: r["score"] for r in read_csv(out / "written.csv")}
    assert rows[DOE] == "2" and rows[SMITH] == "1"  # nothing a person entered is lost
    status = {n: r["status"] for n, r in summary(out).items()}
    assert status == {DOE: "graded", LEE: "graded", SMITH: "graded", "zz_99999_1_labdemo": "not-graded"}
    assert main(["export", str(out), "--format", "canvas", "--roster", str(canvas_roster(tmp_path))]) == 2
    assert "not completely graded: zz_99999_1_labdemo (not graded)" in capsys.readouterr().err
    monkeypatch.setattr(gradebook_module.Gradebook, "grade_one", real)
    assert grade(subs, out) == 0 and summary(out)["zz_99999_1_labdemo"]["status"] == "needs-reading"


def test_a_changed_answer_keeps_its_score_but_is_flagged(subs, tmp_path, capsys):
    out = tmp_path / "out"
    assert grade(subs, out) == 0
    spreadsheet_save(out / "written.csv", {DOE: "2", SMITH: "1"}, "utf-8")
    (subs / f"{DOE}.ipynb").write_bytes(with_answer("A completely different answer, submitted again."))
    assert grade(subs, out) == 0
    rows = {r["submission"]: r for r in read_csv(out / "written.csv")}
    assert rows[DOE]["score"] == "2" and rows[DOE]["check"] == CHANGED and rows[SMITH]["check"] == ""
    roster = canvas_roster(tmp_path)
    assert main(["export", str(out), "--format", "canvas", "--roster", str(roster)]) == 2
    assert "--ignore-checks" in capsys.readouterr().err
    rows[DOE]["check"] = ""  # read again and accepted
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[DOE]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows.values())
    (out / "written.csv").write_text(text.getvalue(), encoding="utf-8")
    assert export(out, roster)["12345"] == "7"


def test_unmatched_rows_are_reported_and_kept(subs, tmp_path, capsys):
    out = tmp_path / "out"
    assert grade(subs, out) == 0
    with (out / "written.csv").open("a", encoding="utf-8") as handle:
        handle.write("nobody_1_1_labdemo,labdemo,explain,2,1.5,,,typed by hand\n")
    assert grade(subs, out) == 0
    assert "1 written.csv rows that match no graded answer" in capsys.readouterr().err
    row = next(r for r in read_csv(out / "written.csv") if r["submission"] == "nobody_1_1_labdemo")
    assert row["score"] == "1.5" and row["check"].startswith("not matched: no submission")
    assert main(["export", str(out), "--format", "canvas", "--roster", str(canvas_roster(tmp_path)),
                 "--unscored-zero"]) == 2
    assert "nobody_1_1_labdemo" in capsys.readouterr().err


def test_shards_merge_into_exactly_what_one_run_writes(subs, tmp_path, capsys):
    (subs / f"{OKAFOR}.ipynb").write_bytes(with_answer("Signs cancel."))
    whole, merged = tmp_path / "whole", tmp_path / "merged"
    assert grade(subs, whole) == 0
    for k in (1, 2):
        assert grade(subs, tmp_path / f"s{k}", "--shard", f"{k}/2") == 0
    assert main(["merge", "--out", str(merged), str(tmp_path / "s1"), str(tmp_path / "s2")]) == 0
    for table in ("grades.csv", "summary.csv", "written.csv"):
        assert (merged / table).read_bytes() == (whole / table).read_bytes(), table
    scores = {DOE: "2", SMITH: "1.5", OKAFOR: "1"}
    for folder in (whole, merged):
        spreadsheet_save(folder / "written.csv", scores, "utf-8")
    # a shard graded again afterwards (its written.csv is newer, with empty scores), merged again: scores kept
    assert grade(subs, tmp_path / "s1", "--shard", "1/2", "--force") == 0
    assert main(["merge", "--out", str(merged), str(tmp_path / "s1"), str(tmp_path / "s2")]) == 0
    assert main(["merge", "--out", str(whole), str(whole)]) == 0
    for table in ("grades.csv", "summary.csv", "written.csv"):
        assert (merged / table).read_bytes() == (whole / table).read_bytes(), table
    pages = lambda folder: {p.name: p.read_text() for p in (folder / "feedback").glob("*.html")}
    assert pages(merged) == pages(whole) and "<b>6.5 / 7</b>" in pages(merged)[f"{SMITH}.html"]
    roster = canvas_roster(tmp_path)
    assert export(merged, roster) == export(whole, roster) == {
        "12345": "7", "12346": "6.5", "12347": "0", "12348": "6", "99999": ""}


def test_merge_refuses_shards_of_different_lists_or_settings(subs, tmp_path, capsys):
    (subs / f"{OKAFOR}.ipynb").write_bytes(with_answer("Signs cancel."))
    assert grade(subs, tmp_path / "s1", "--shard", "1/2") == 0
    fewer = tmp_path / "fewer"
    shutil.copytree(subs, fewer)
    (fewer / f"{DOE}.ipynb").unlink()
    assert grade(fewer, tmp_path / "s2", "--shard", "2/2") == 0
    assert main(["merge", "--out", str(tmp_path / "m"), str(tmp_path / "s1"), str(tmp_path / "s2")]) == 2
    err = capsys.readouterr().err
    assert "different submission lists" in err and DOE in err and "--allow-mismatch" in err
    assert grade(subs, tmp_path / "t2", "--shard", "2/2", "--timeout", "30") == 0
    assert main(["merge", "--out", str(tmp_path / "m"), str(tmp_path / "s1"), str(tmp_path / "t2")]) == 2
    assert "different grader versions or options" in capsys.readouterr().err


def test_one_bad_file_is_its_own_row(subs, tmp_path, capsys):
    long_name = "x" * 220 + "_12349_678905_labdemo"  # 241 bytes: legal on Linux (247 with .ipynb)
    (subs / f"{long_name}.ipynb").write_bytes(with_answer("Long."))
    (subs / "broken_12350_678906_labdemo.ipynb").write_bytes(b"\xff\xfe\x00 not a notebook")
    out = tmp_path / "out"
    (out / "feedback" / f"{DOE}.html").mkdir(parents=True)  # a page that cannot be written
    assert grade(subs, out) == 0
    rows = summary(out)
    assert len(rows) == 5
    assert rows[long_name]["status"] == "needs-reading" and rows[long_name]["score"] == "5.0"
    page = out / rows[long_name]["feedback"]
    assert page.exists() and len(page.name.encode()) < 255 and page.name == feedback_file(long_name)
    assert rows["broken_12350_678906_labdemo"]["status"] == "invalid-notebook"
    assert rows[DOE]["score"] == "5.0" and "feedback page could not be written" in rows[DOE]["message"]
    assert rows[DOE]["feedback"] == ""
    grades = export(out, canvas_roster(tmp_path), "--unscored-zero", "--skip-unknown")
    assert grades["12345"] == "5" and grades["12347"] == "0"
    assert "0 points because the file is not a notebook of labdemo" in capsys.readouterr().out
    modes = {p.name: p.stat().st_mode & 0o777 for p in out.glob("*.csv")}
    assert all(mode & 0o044 == 0o044 for mode in modes.values()), modes  # the course's group can read them


def test_moodle_names_graded_and_exported_on_the_worksheets_maximum(tmp_path, capsys):
    subs = tmp_path / "moodle"
    (subs / "Jane Doe_1234567_assignsubmission_file_").mkdir(parents=True)  # Moodle: a folder per participant
    (subs / "Jane Doe_1234567_assignsubmission_file_" / "labdemo.ipynb").write_bytes(with_answer("Signs cancel."))
    (subs / "John Smith_1234568_assignsubmission_file_labdemo.ipynb").write_bytes(with_answer("Positive."))
    out = tmp_path / "out"
    assert main(["grade", "--lab", "labdemo", "--solutions", str(FIXTURES), "--out", str(out), "--jobs", "2",
                 "--timeout", "20", "--memory", "1G", "--id-pattern", "moodle", "--quiet", str(subs)]) == 0
    spreadsheet_save(out / "written.csv", {"Jane Doe_1234567_assignsubmission_file_/labdemo": "2",
                                           "John Smith_1234568_assignsubmission_file_labdemo": "0.5"}, "utf-8")
    roster = Path(__file__).parent / "fixtures" / "lms" / "moodle-grading-worksheet.csv"
    target = tmp_path / "moodle.csv"
    command = ["export", str(out), "--format", "moodle", "--roster", str(roster), "--out", str(target)]
    assert main(command) == 2 and "out of 12 points but the lab is out of 7" in capsys.readouterr().err
    assert main([*command, "--scale", "--due", "2026-11-30 23:00"]) == 0
    grades = {r["Identifier"]: r["Grade"] for r in read_csv(target)}
    assert grades == {"Participant 1234567": "12", "Participant 1234568": "9.43",  # 7/7 and 5.5/7 of 12
                      "Participant 1234569": "", "Participant 1234570": ""}
    assert {r["id"]: r["late"] for r in read_csv(out / "summary.csv")} == {"1234567": "", "1234568": "yes"}
