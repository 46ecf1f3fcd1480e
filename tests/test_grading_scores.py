"""The scores module without grading (utils/grading/scores.py): strict reading of the files a person edits, the
keys scores are matched on, and clear messages instead of raw errors."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from utils.grading import lms
from utils.grading.cli import main
from utils.grading.scores import (WRITTEN_COLUMNS, Record, UsageError, csv_text, feedback_file, load_record, publish,
                                  read_entered, read_table, unprotect)
from utils.grading.spreadsheet import safe_cell

QUESTIONS = [{"id": "q1", "points": 10.0, "kind": "test"}, {"id": "w1", "points": 2.0, "kind": "written"}]


def record(*names: str) -> Record:
    return Record("lab1", QUESTIONS, None, list(names), list(names), {})


def written(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "written.csv"
    path.write_bytes(data)
    return path


HEADER = ",".join(WRITTEN_COLUMNS)


@pytest.mark.parametrize("encoding, words", [("cp1252", "not UTF-8"), ("latin-1", "not UTF-8"),
                                             ("utf-16", "UTF-16")])
def test_other_encodings_are_refused_with_how_to_save_again(tmp_path, encoding, words):
    path = written(tmp_path, f"{HEADER}\r\na,lab1,w1,2,1,Très juste,,\r\n".encode(encoding))
    with pytest.raises(UsageError, match=words) as error:
        read_entered(path, record("a"))
    assert "CSV UTF-8" in str(error.value) and "nothing was read" in str(error.value)


@pytest.mark.parametrize("text", [f"{HEADER}\na,lab1,w1,2,1.5,ok,,\n", f"{HEADER}\r\na,lab1,w1,2,\"1,5\",ok,,\r\n",
                                  f"{HEADER.replace(',', ';')}\r\na;lab1;w1;2;1,5;ok;;\r\n"])
def test_utf8_with_or_without_bom_crlf_and_semicolons_are_read(tmp_path, text):
    for data in (text.encode(), codecs.BOM_UTF8 + text.encode()):
        [entry] = read_entered(written(tmp_path, data), record("a"))
        assert (entry.submission, entry.question, entry.score) == ("a", "w1", 1.5)


def test_a_removed_apostrophe_does_not_orphan_the_score(tmp_path):
    name = "-cmd|' /C calc'!A0"
    assert safe_cell(name) == "'" + name
    for cell in ("'" + name, name):  # as written, and as a spreadsheet saves it again
        quoted = '"' + cell.replace('"', '""') + '"'
        [entry] = read_entered(written(tmp_path, f"{HEADER}\n{quoted},lab1,w1,2,2,,,\n".encode()), record(name))
        assert entry.submission == name
    assert unprotect("'=x", {"'=x"}) == "'=x"  # a name that really starts with an apostrophe is kept


def test_two_rows_for_one_answer_and_bad_scores_are_refused(tmp_path):
    twice = written(tmp_path, f"{HEADER}\na,lab1,w1,2,1,,,\na,lab1,w1,2,2,,,\n".encode())
    with pytest.raises(UsageError, match="line 3 and line 2 both hold 'a' w1"):
        read_entered(twice, record("a"))
    for score, words in (("lots", "not a number"), ("2.5", "outside 0..2"), ("-1", "outside")):
        with pytest.raises(UsageError, match=words):
            read_entered(written(tmp_path, f"{HEADER}\na,lab1,w1,2,{score},,,\n".encode()), record("a"))
    with pytest.raises(UsageError, match="no column 'score'"):
        read_entered(written(tmp_path, b"submission,question\na,w1\n"), record("a"))


def test_scores_for_submissions_not_graded_yet_are_kept(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    pending = record("a")
    (folder / "written.csv").write_text(csv_text(WRITTEN_COLUMNS, [
        {"submission": "a", "lab": "lab1", "question": "w1", "max_score": 2, "score": "1.5", "answer": "x"}]))
    report = publish(folder, pending)
    assert read_table(folder / "written.csv")[1][0]["score"] == "1.5" and not report.unmatched
    assert report.missing == ["a"]
    summary = read_table(folder / "summary.csv")[1]
    assert [(r["submission"], r["status"], r["score"]) for r in summary] == [("a", "not-graded", "")]


def test_feedback_file_names_stay_short_and_distinct():
    long_a, long_b = "a" * 300 + "1", "a" * 300 + "2"
    names = {feedback_file(n) for n in (long_a, long_b, "x/" + "é" * 200, "../up", "ok")}
    assert len(names) == 5 and "ok.html" in names and "_/up.html" in names
    assert all(len(part.encode()) <= 190 for name in names for part in name.split("/"))


def test_permission_denied_is_a_clear_message(tmp_path, monkeypatch, capsys):
    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path / "out" / "grades.csv"))
    monkeypatch.setattr(lms, "publish", denied)
    monkeypatch.setattr("utils.grading.cli.merge_outputs", lambda *a, **k: denied())
    assert main(["merge", "--out", str(tmp_path / "out"), str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert "permission denied" in err and "grades.csv" in err and "Traceback" not in err
    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(UsageError, match="permission denied .* chmod -R g\\+rX"):
        read_table(tmp_path / "x.csv")


def test_a_folder_from_the_older_grader_is_refused_by_merge_and_export_with_what_to_do(tmp_path, capsys):
    (tmp_path / "summary.csv").write_text("submission,id,score,max_score,status\n")
    (tmp_path / "grading.json").write_text('{"lab": "labdemo", "shard": null, "submissions": []}')
    assert main(["export", str(tmp_path), "--format", "canvas", "--roster", str(tmp_path / "summary.csv")]) == 2
    assert "older version of the grader" in capsys.readouterr().err
    assert load_record(tmp_path, upgrade=True).lab == "labdemo"  # grading into it starts the record afresh


def test_a_score_survives_a_grader_failure_on_its_submission(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    failed = [{"question": q["id"], "score": 0.0, "max_score": q["points"], "status": "grader-error",
               "message": "the grader failed"} for q in QUESTIONS]
    graded = Record("lab1", QUESTIONS, None, ["a"], ["a"], {"a": {
        "status": "grader-error", "message": "", "score": 0.0, "max_score": 12.0, "questions": failed, "id": "1"}})
    (folder / "written.csv").write_text(csv_text(WRITTEN_COLUMNS, [
        {"submission": "a", "lab": "lab1", "question": "w1", "max_score": 2, "score": "1.5", "answer": "x"}]))
    publish(folder, graded)
    [row] = read_table(folder / "written.csv")[1]
    assert (row["submission"], row["score"], row["answer"]) == ("a", "1.5", "x")
    assert read_table(folder / "summary.csv")[1][0]["score"] == ""  # a failure is never a 0
