"""Release of labs (solutions/ -> labs/): stubs, hidden tests, tags, determinism and --check. No kernels here."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from utils.grading.cli import main, parse_size
from utils.grading.notebook import LabError, find_labs, parse_lab
from utils.grading.release import (
    ANSWER_PLACEHOLDER,
    notebook_text,
    release_all,
    release_notebook,
    remove_hidden_tests,
    stub_answer,
    stub_solution,
)

FIXTURES = Path(__file__).parent / "fixtures" / "grading" / "solutions"


def cells_by_id(notebook: dict) -> dict[str, dict]:
    return {cell["id"]: cell for cell in notebook["cells"]}


def source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def test_stub_keeps_indentation_and_uses_the_hint():
    code = "def f(x):\n    y = 1\n    ### BEGIN SOLUTION\n    return x + y\n    ### HINT: add y\n    ### END SOLUTION\n\nz = 2"
    stubbed, top_level = stub_solution(code)
    assert stubbed == 'def f(x):\n    y = 1\n    raise NotImplementedError("add y")\n\nz = 2'
    assert not top_level


def test_stub_handles_several_blocks_and_top_level_blocks():
    code = "### BEGIN SOLUTION\na = 1\n### END SOLUTION\nfor i in range(2):\n  ### BEGIN SOLUTION\n  pass\n  ### END SOLUTION"
    stubbed, top_level = stub_solution(code)
    assert stubbed == ('raise NotImplementedError("Replace this line with your code")\nfor i in range(2):\n'
                       '  raise NotImplementedError("Replace this line with your code")')
    assert top_level
    compile(stubbed, "cell", "exec")


def test_a_cell_without_markers_is_replaced_whole_like_nbgrader():
    assert stub_solution("x = 42") == ('raise NotImplementedError("Replace this line with your code")', True)


def test_hints_with_quotes_stay_valid_python():
    stubbed, _ = stub_solution('### BEGIN SOLUTION\n### HINT: use "sum" and \\ carefully\nx = 1\n### END SOLUTION')
    with pytest.raises(NotImplementedError, match='use "sum" and \\\\ carefully'):
        exec(stubbed)


@pytest.mark.parametrize("code", ["### BEGIN SOLUTION\nx = 1", "x = 1\n### END SOLUTION",
                                  "### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION"])
def test_unbalanced_markers_are_an_authoring_error(code):
    with pytest.raises(LabError, match="SOLUTION"):
        stub_solution(code)


def test_written_answers_accept_both_marker_styles():
    assert stub_answer("Intro\n=== BEGIN SOLUTION ===\nsecret\n=== END SOLUTION ===") == f"Intro\n{ANSWER_PLACEHOLDER}"
    assert stub_answer("### BEGIN SOLUTION\nsecret\n### END SOLUTION\nOutro") == f"{ANSWER_PLACEHOLDER}\nOutro"
    assert stub_answer("an unmarked model answer") == ANSWER_PLACEHOLDER


def test_hidden_tests_are_removed_with_their_markers():
    code = "assert f(1) == 1\n### BEGIN HIDDEN TESTS\nassert f(2) == 4\n### END HIDDEN TESTS\n"
    assert remove_hidden_tests(code) == "assert f(1) == 1"
    with pytest.raises(LabError, match="HIDDEN TESTS"):
        remove_hidden_tests("### BEGIN HIDDEN TESTS\nassert False")


def test_released_fixture_lab():
    released = release_notebook("labdemo", FIXTURES / "labdemo" / "labdemo.ipynb")
    solution = json.loads((FIXTURES / "labdemo" / "labdemo.ipynb").read_text())
    cells = cells_by_id(released)
    assert [c["id"] for c in released["cells"]] == [c["id"] for c in solution["cells"]]
    assert [c["metadata"].get("nbgrader") for c in released["cells"]] == [c["metadata"].get("nbgrader") for c in solution["cells"]]
    assert released["metadata"]["course"] == {"lab": "labdemo"}
    text = json.dumps(released)
    for secret in ("return x * x", "np.arange(5) ** 2", "math.fsum", "square(-2)", "HIDDEN", "negative number times"):
        assert secret not in text
    assert source(cells["squares"]) == 'raise NotImplementedError("use np.arange and **")'
    assert source(cells["explain"]) == ANSWER_PLACEHOLDER
    tags = {cid: cell["metadata"].get("tags", []) for cid, cell in cells.items()}
    # The stub of `squares` is at the top level, so that cell raises; `square` and `mean` only define functions.
    assert tags["squares"] == ["raises-exception"]
    assert tags["square"] == tags["mean"] == tags["setup"] == []
    assert all(tags[t] == ["raises-exception"] for t in ("test-square", "test-squares", "test-mean"))
    assert tags["use-squares"] == ["raises-exception"]  # the author's fails-unfilled tag, translated
    assert "fails-unfilled" not in text
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in released["cells"] if c["cell_type"] == "code")
    nbformat.validate(nbformat.from_dict(released))


def test_release_is_byte_identical_and_in_nbformat_style(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    assert release_all(FIXTURES, first) == [str(first / n / f"{n}.ipynb") for n in ("labdemo", "labtorch")]
    release_all(FIXTURES, second)
    for name in ("labdemo", "labtorch"):
        data = (first / name / f"{name}.ipynb").read_bytes()
        assert data == (second / name / f"{name}.ipynb").read_bytes()
        assert data.endswith(b"}\n") and data.startswith(b'{\n "cells": [\n')
        assert notebook_text(nbformat.reads(data.decode(), as_version=4)) == data.decode()
    assert release_all(FIXTURES, first) == []  # nothing changed, nothing written


def test_release_check_reports_missing_stale_and_orphan_files(tmp_path, capsys):
    labs = tmp_path / "labs"
    args = ["release", "--check", "--solutions", str(FIXTURES), "--out", str(labs)]
    assert main(args) == 1
    assert "missing" in capsys.readouterr().err
    assert main(["release", "--solutions", str(FIXTURES), "--out", str(labs)]) == 0
    assert main(args) == 0
    assert "in sync" in capsys.readouterr().out
    stale = labs / "labdemo" / "labdemo.ipynb"
    stale.write_text(stale.read_text().replace("YOUR ANSWER HERE", "my answer"))
    (labs / "labold").mkdir()
    (labs / "labold" / "labold.ipynb").write_text("{}")
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "stale" in err and "labdemo.ipynb" in err and "orphan" in err and "labold" in err


def test_release_of_an_unknown_lab_is_a_usage_error(tmp_path, capsys):
    assert main(["release", "nosuchlab", "--solutions", str(FIXTURES), "--out", str(tmp_path)]) == 2
    assert "nosuchlab" in capsys.readouterr().err


def test_authoring_errors_name_the_cell(tmp_path):
    lab = tmp_path / "labx"
    lab.mkdir()
    notebook = json.loads((FIXTURES / "labdemo" / "labdemo.ipynb").read_text())
    notebook["cells"][4]["metadata"]["nbgrader"]["grade_id"] = "square"  # duplicate grade_id
    (lab / "labx.ipynb").write_text(json.dumps(notebook))
    with pytest.raises(LabError, match="'square' is used by more than one cell"):
        parse_lab("labx", lab / "labx.ipynb")
    notebook["cells"][4]["metadata"]["nbgrader"].update(grade_id="t", points=None)
    (lab / "labx.ipynb").write_text(json.dumps(notebook))
    with pytest.raises(LabError, match="needs 'points'"):
        parse_lab("labx", lab / "labx.ipynb")


def test_questions_and_their_dependencies():
    lab = parse_lab("labdemo", FIXTURES / "labdemo" / "labdemo.ipynb")
    assert [(q.id, q.kind, q.points, q.depends_on) for q in lab.questions] == [
        ("test_square", "test", 2.0, ("square",)),
        ("test_squares", "test", 1.0, ("squares",)),
        ("test_mean", "test", 2.0, ("mean",)),
        ("explain", "written", 2.0, ()),
    ]
    assert lab.max_score == 7.0
    assert set(find_labs(FIXTURES)) == {"labdemo", "labtorch"}


@pytest.mark.parametrize("text, expected", [("2G", 2 * 2**30), ("512M", 512 * 2**20), ("1.5GiB", 3 * 2**29),
                                            ("1000", 1000), ("0", 0)])
def test_parse_size(text, expected):
    assert parse_size(text) == expected

