"""Grader pieces that need no kernel: reading submissions, matching cells, outputs, feedback pages."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from utils.grading.feedback import feedback_html
from utils.grading.gradebook import Submission, UsageError, atomic_write, collect_submissions, summary_table
from utils.grading.submission import parse_submission, student_answers
from utils.grading.notebook import parse_lab
from utils.grading.release import release_notebook

FIXTURES = Path(__file__).parent / "fixtures" / "grading" / "solutions"
LAB = parse_lab("labdemo", FIXTURES / "labdemo" / "labdemo.ipynb")


def answers_by_grade_id(notebook: dict) -> dict[str, str | None]:
    index_to_id = dict(LAB.student_cells())
    return {index_to_id[i]: source for i, source in student_answers(LAB, notebook).items()}


@pytest.mark.parametrize("data, status, words", [
    (b"", "invalid-notebook", "empty"),
    (b"  \n", "invalid-notebook", "empty"),
    (b"\xff\xfe garbage", "invalid-notebook", "not valid JSON"),
    (b"[1, 2]", "invalid-notebook", "JSON but not"),
    (b'{"nbformat": 3, "cells": []}', "invalid-notebook", "JSON but not"),
    (b'{"nbformat": 4, "cells": [], "metadata": {"course": {"lab": "lab9"}}}', "wrong-lab", "notebook of lab9"),
    (b'{"nbformat": 4, "cells": [{"cell_type": "code", "source": "x = 1", "id": "zzz", "metadata": {}}]}',
     "wrong-lab", "none of the answer cells"),
])
def test_unreadable_or_foreign_files_are_recognised(data, status, words):
    notebook, got, message = parse_submission(data, LAB)
    assert notebook is None and got == status and words in message


def test_the_released_lab_is_accepted():
    data = json.dumps(release_notebook("labdemo", LAB.path)).encode()
    notebook, status, _ = parse_submission(data, LAB)
    assert notebook is not None and status == ""


def test_cells_are_matched_by_grade_id_then_by_cell_id():
    notebook = copy.deepcopy(LAB.notebook)
    notebook["cells"].reverse()  # moving cells around changes nothing
    for cell in notebook["cells"]:
        if cell["id"] == "mean":
            cell["metadata"] = {}  # metadata lost: matched by id
            cell["source"] = "def mean(v):\n    return 1"
        if cell["id"] == "square":
            cell["id"] = "renamed"  # id changed: matched by grade_id
    answers = answers_by_grade_id(notebook)
    assert answers["mean"] == "def mean(v):\n    return 1"
    assert "return x * x" in answers["square"]
    notebook["cells"] = [c for c in notebook["cells"] if c["id"] != "squares"]
    assert answers_by_grade_id(notebook)["squares"] is None


def test_among_duplicated_cells_the_last_edited_one_wins():
    notebook = copy.deepcopy(LAB.notebook)
    index = next(i for i, c in enumerate(notebook["cells"]) if c["id"] == "square")
    stub = release_notebook("labdemo", LAB.path)["cells"][index]
    edited_first, edited_second = copy.deepcopy(stub), copy.deepcopy(stub)
    edited_first["source"], edited_second["source"] = "def square(x):\n    return 1", "def square(x):\n    return 2"
    notebook["cells"][index:index + 1] = [edited_first, edited_second, copy.deepcopy(stub)]
    assert answers_by_grade_id(notebook)["square"] == "def square(x):\n    return 2"


def test_collect_submissions_names_files_by_their_relative_path(tmp_path):
    for path in ["alice/lab1.ipynb", "bob/lab1.ipynb", "bob/.ipynb_checkpoints/lab1-checkpoint.ipynb", "notes.txt"]:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("{}")
    extra = tmp_path / "alice" / "lab1.ipynb"
    found = collect_submissions([tmp_path, extra, tmp_path / "notes.txt"])
    assert [s.name for s in found] == ["alice/lab1", "bob/lab1", "notes.txt"]
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "lab1.ipynb").write_text("{}")
    names = [s.name for s in collect_submissions([tmp_path / "alice", tmp_path / "x"])]
    assert names == ["lab1", "lab1-2"]
    with pytest.raises(UsageError, match="no such file"):
        collect_submissions([tmp_path / "missing"])


def test_atomic_write_replaces_whole_files_and_leaves_no_temporary_files(tmp_path):
    target = tmp_path / "deep" / "grades.csv"
    atomic_write(target, "old\n")
    with pytest.raises(TypeError):
        atomic_write(target, None)  # the write fails half-way
    assert target.read_text() == "old\n"
    atomic_write(target, "new\n")
    assert target.read_text() == "new\n"
    assert [p.name for p in target.parent.iterdir()] == ["grades.csv"]


def test_feedback_escapes_student_text_and_shows_messages():
    result = {"status": "needs-reading", "score": 2.0, "max_score": 4.0, "message": "", "questions": [
        {"question": "q1", "score": 2.0, "max_score": 2.0, "status": "passed", "message": ""},
        {"question": "q2", "score": 0.0, "max_score": 1.0, "status": "failed", "message": "AssertionError: x < 1"},
        {"question": "w", "score": 0.0, "max_score": 1.0, "status": "needs-reading", "message": "<script>alert(1)</script>"},
    ]}
    html = feedback_html("alice", "labdemo", result)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "AssertionError: x &lt; 1" in html and "2 / 4" in html


def test_summary_table_lists_every_submission_and_counts_statuses():
    results = {"a": {"score": 5.0, "max_score": 7.0, "status": "graded"},
               "b": {"score": 0.0, "max_score": 7.0, "status": "invalid-notebook"}}
    text = summary_table([Submission("a", Path("a")), Submission("b", Path("b"))], results)
    assert "5 / 7" in text and "invalid-notebook" in text
    assert text.splitlines()[-1] == "2 submissions: 1 graded, 1 invalid-notebook"
