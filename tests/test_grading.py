"""Grading the fixture lab: full marks, zero, and every bad input and cheat we know, in one batched run.

Starting sandboxes costs time, so all labdemo submissions are graded by ONE run (module fixture) and the tests
read its outputs. Each submission targets one question, so the others must still be graded normally. Many of
these cheats aimed at the old in-kernel design (tests and student code in one process); they stay, and must
still earn nothing.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from utils.grading.cli import main
from utils.grading.lms import read_csv
from utils.grading.release import release_all

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures" / "grading" / "solutions"
CANVAS_ROSTER = Path(__file__).parent / "fixtures" / "lms" / "canvas-gradebook-export.csv"
SOLUTION = json.loads((FIXTURES / "labdemo" / "labdemo.ipynb").read_text())
FULL = {"test_square": "passed", "test_squares": "passed", "test_mean": "passed"}
TIMEOUT = "5"

WRONG_SQUARE = "def square(x):\n    return 9"  # passes the visible test, fails the hidden one
SNOOP = f"""
import os
from pathlib import Path
places = [Path.cwd(), *Path.cwd().parents] + [Path(v) for v in os.environ.values() if v.startswith("/")]
found = any((p / "solutions" / "labdemo" / "labdemo.ipynb").exists() for p in places)
found = found or any({str(FIXTURES)!r} in v or {str(ROOT)!r} in v for v in [os.getcwd(), *os.environ.values()])
found = found or any(p.exists() for p in [Path("solutions/labdemo/labdemo.ipynb"), Path("../solutions")])
def square(x):
    return x * x if found else None
"""
OVERRIDE_RUN_CELL = """
from IPython.core.interactiveshell import InteractiveShell
_run_cell, _run_cell_async = InteractiveShell.run_cell, InteractiveShell.run_cell_async
def run_cell(self, *args, **kwargs):
    result = _run_cell(self, *args, **kwargs)
    result.error_in_exec = result.error_before_exec = None
    return result
async def run_cell_async(self, *args, **kwargs):
    result = await _run_cell_async(self, *args, **kwargs)
    result.error_in_exec = result.error_before_exec = None
    return result
InteractiveShell.run_cell, InteractiveShell.run_cell_async = run_cell, run_cell_async
InteractiveShell.showtraceback = lambda *args, **kwargs: None
get_ipython().showtraceback = lambda *args, **kwargs: None
def mean(values):
    return 0
"""
FORGE_REPLY = """
kernel = get_ipython().kernel
_do_execute = kernel.do_execute
async def do_execute(*args, **kwargs):
    reply = await _do_execute(*args, **kwargs)
    reply["status"] = "ok"
    print("All tests passed")
    return reply
kernel.do_execute = do_execute
squares = [1, 2, 3]
"""
PATCH_FROM_THREAD = """
import math, threading, time
def patch():
    while True:
        math.isclose = lambda *a, **k: True
        time.sleep(0.0001)
threading.Thread(target=patch, daemon=True).start()
def mean(values):
    return 0
"""
PATCH_FROM_EVENT_LOOP = """
import asyncio, math
loop = asyncio.get_event_loop()
def patch():
    math.isclose = lambda *a, **k: True
    loop.call_later(0.0001, patch)
loop.call_soon(patch)
def mean(values):
    return 0
"""
NO_ASSERTS = """
import ast
class NoAsserts(ast.NodeTransformer):
    def visit_Assert(self, node):
        return ast.Pass()
get_ipython().ast_transformers.append(NoAsserts())
def square(x):
    return 0
"""


def variant(replace: dict[str, str] | None = None, drop: tuple[str, ...] = (), edit=None) -> dict:
    """The solution notebook with some cells' sources replaced (by grade_id) or dropped (by cell id)."""
    notebook = copy.deepcopy(SOLUTION)
    for cell in notebook["cells"]:
        gid = cell["metadata"].get("nbgrader", {}).get("grade_id")
        if replace and gid in replace:
            cell["source"] = replace[gid]
    notebook["cells"] = [c for c in notebook["cells"] if c["id"] not in drop]
    if edit:
        edit(notebook)
    return notebook


def _strip_metadata(notebook):
    for cell in notebook["cells"]:
        cell["metadata"] = {}


def _duplicate_square(notebook):
    index = next(i for i, c in enumerate(notebook["cells"]) if c["id"] == "square")
    stub = copy.deepcopy(notebook["cells"][index])
    stub["source"], stub["id"] = 'def square(x):\n    raise NotImplementedError("Replace this line with your code")', "copy"
    notebook["cells"].insert(index, stub)


def _fake_tests(notebook):
    for cell in notebook["cells"]:
        if cell["metadata"].get("nbgrader", {}).get("grade"):
            cell["source"] = 'print("All tests passed")'


#: name -> (notebook dict or raw bytes, expected status per question (None: not checked)).
SUBMISSIONS = {
    "solution": (SOLUTION, FULL | {"explain": "needs-reading"}),
    "empty": (b"", dict.fromkeys(FULL, "invalid-notebook")),
    "not-json": (b"print('hello')\n", dict.fromkeys(FULL, "invalid-notebook")),
    "json-not-notebook": (b'{"cells": "none", "nbformat": 4}', dict.fromkeys(FULL, "invalid-notebook")),
    "loop": (variant({"squares": "while True:\n    pass"}), FULL | {"test_squares": "timeout"}),
    "loop-in-test": (variant({"mean": "def mean(values):\n    while True:\n        pass"}), FULL | {"test_mean": "timeout"}),
    "memory": (variant({"squares": "big = bytearray(50 * 2**30)\nsquares = np.arange(5) ** 2"}), FULL | {"test_squares": "memory"}),
    "memory-numpy": (variant({"mean": "def mean(values):\n    return np.ones(50 * 2**30 // 8).mean()"}), FULL | {"test_mean": "memory"}),
    "os-exit": (variant({"square": "import os\nos._exit(1)"}), FULL | {"test_square": "kernel-died"}),
    "segfault": (variant({"mean": "import ctypes\nctypes.string_at(0)"}), FULL | {"test_mean": "kernel-died"}),
    "sys-exit": (variant({"square": "import sys\nsys.exit()"}), FULL | {"test_square": "error"}),
    "exit-builtin": (variant({"squares": "exit()"}), FULL | {"test_squares": "error"}),
    "flood": (variant({"square": "def square(x):\n    return x * x\nprint('x' * 100_000_000)"}), FULL),
    "fake-tests": (variant({"square": WRONG_SQUARE, "mean": "def mean(v):\n    return 0"}, edit=_fake_tests),
                   FULL | {"test_square": "failed", "test_mean": "failed"}),
    "patch-compare": (variant({"squares": "squares = [0]\nnp.allclose = lambda *a, **k: True",
                               "mean": "import math\nmath.isclose = lambda *a, **k: True\ndef mean(v):\n    return 0"}),
                      FULL | {"test_squares": "failed", "test_mean": "failed"}),
    "override-run-cell": (variant({"mean": OVERRIDE_RUN_CELL}), FULL | {"test_mean": "failed"}),
    "forge-reply": (variant({"squares": FORGE_REPLY}), FULL | {"test_squares": "error"}),
    "no-asserts": (variant({"square": NO_ASSERTS}), FULL | {"test_square": "failed"}),
    "rebind-np": (variant({"squares": "squares = [1]\nclass Fake:\n    def allclose(self, *a, **k):\n        return True\nnp = Fake()"}),
                  FULL | {"test_squares": "failed"}),
    "event-hook": (variant({"mean": "get_ipython().events.register('pre_run_cell', lambda *a: setattr("
                                    "__import__('math'), 'isclose', lambda *a, **k: True))\ndef mean(v):\n    return 0"}),
                   FULL | {"test_mean": "failed"}),
    "patch-from-thread": (variant({"mean": PATCH_FROM_THREAD}), FULL | {"test_mean": "failed"}),
    "patch-from-event-loop": (variant({"mean": PATCH_FROM_EVENT_LOOP}), FULL | {"test_mean": "failed"}),
    "shadow-print": (variant({"square": "import builtins\nbuiltins.print = lambda *a, **k: None\ndef print(*a, **k):\n"
                                        "    pass\ndef square(x):\n    return x * x"}), FULL),
    "edited-tests": (variant({"square": WRONG_SQUARE, "test_square": "pass"}, drop=("test-mean",)),
                     FULL | {"test_square": "failed"}),
    "missing-cell": (variant(drop=("squares",)), FULL | {"test_squares": "missing-cell"}),
    "duplicated-cell": (variant(edit=_duplicate_square), FULL),
    "no-metadata": (variant(edit=_strip_metadata), FULL),
    "writes-files": (variant({"square": "for name in ['grades.csv', '../grades.csv', '../summary.csv', '/tmp/x']:\n"
                                        "    try:\n        open(name, 'w').write('hacked')\n"
                                        "    except OSError:\n        pass\ndef square(x):\n    return x * x"}), FULL),
    "snoop": (variant({"square": SNOOP}), FULL | {"test_square": "failed"}),
}



@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Grade every labdemo submission (plus the released lab and another lab's notebook) in one run."""
    root = tmp_path_factory.mktemp("grading")
    labs, submissions, out = root / "labs", root / "submissions", root / "out"
    release_all(FIXTURES, labs)
    submissions.mkdir()
    for name, (content, _) in SUBMISSIONS.items():
        data = content if isinstance(content, bytes) else json.dumps(content).encode()
        (submissions / f"{name}.ipynb").write_bytes(data)
    (submissions / "released.ipynb").write_bytes((labs / "labdemo" / "labdemo.ipynb").read_bytes())
    (submissions / "other-lab.ipynb").write_bytes((labs / "labtorch" / "labtorch.ipynb").read_bytes())
    start = time.monotonic()
    code = main(["grade", "--lab", "labdemo", "--solutions", str(FIXTURES), "--out", str(out), "--jobs", "2",
                 "--timeout", TIMEOUT, "--memory", "1G", "--quiet", str(submissions)])
    seconds = time.monotonic() - start
    grades = read_csv(out / "grades.csv")
    table: dict[str, dict[str, dict[str, str]]] = {}
    for row in grades:
        table.setdefault(row["submission"], {})[row["question"]] = row
    return {"code": code, "out": out, "table": table, "seconds": seconds, "submissions": submissions, "labs": labs,
            "summary": {r["submission"]: r for r in read_csv(out / "summary.csv")}}


def test_grading_completes_with_exit_code_zero(graded):
    assert graded["code"] == 0
    assert set(graded["table"]) == set(SUBMISSIONS) | {"released", "other-lab"}


@pytest.mark.parametrize("name", sorted(SUBMISSIONS))
def test_each_submission_gets_the_expected_status_per_question(graded, name):
    rows = graded["table"][name]
    _, expected = SUBMISSIONS[name]
    got = {q: rows[q]["status"] for q in expected}
    assert got == expected, {q: rows[q]["message"] for q in expected}
    for row in rows.values():
        assert float(row["score"]) == (float(row["max_score"]) if row["status"] == "passed" else 0.0)


def test_the_solution_gets_full_marks_and_its_written_answer_is_kept(graded):
    assert graded["summary"]["solution"] == {"submission": "solution", "id": "", "late": "", "score": "5.0",
                                             "max_score": "7.0", "status": "needs-reading", "message": "",
                                             "feedback": "feedback/solution.html"}
    written = {r["submission"]: r for r in read_csv(graded["out"] / "written.csv")}
    assert written["solution"]["answer"] == "A negative number times a negative number is positive."
    assert written["released"]["answer"] == ""


def test_the_unfilled_lab_scores_zero_everywhere(graded):
    rows = graded["table"]["released"]
    assert all(float(r["score"]) == 0 for r in rows.values())
    assert rows["test_squares"]["status"] == "error" and "use np.arange and **" in rows["test_squares"]["message"]
    assert rows["test_square"]["status"] == "failed"
    assert graded["summary"]["released"]["status"] == "graded"


def test_bad_files_get_clear_messages(graded):
    table = graded["table"]
    assert "empty" in table["empty"]["test_square"]["message"]
    assert "not valid JSON" in table["not-json"]["test_square"]["message"]
    assert "JSON but not a Jupyter notebook" in table["json-not-notebook"]["test_square"]["message"]
    assert {r["status"] for r in table["other-lab"].values()} == {"wrong-lab"}
    assert "labtorch" in table["other-lab"]["test_square"]["message"]
    assert graded["summary"]["other-lab"]["status"] == "wrong-lab"


def test_messages_explain_what_happened(graded):
    table = graded["table"]
    assert "5 s" in table["loop"]["test_squares"]["message"]
    assert "SIGSEGV" in table["segfault"]["test_mean"]["message"]
    assert "exit code 1" in table["os-exit"]["test_square"]["message"]
    assert "SystemExit" in table["sys-exit"]["test_square"]["message"]
    assert "memory" in table["memory"]["test_squares"]["message"]
    assert table["edited-tests"]["test_square"]["message"] == "AssertionError: square of a negative number should be positive"
    assert "'squares'" in table["missing-cell"]["test_squares"]["message"]
    assert table["patch-from-thread"]["test_mean"]["message"] == "AssertionError: mean([1, 2]) should be 1.5"


def test_feedback_never_shows_hidden_tests_or_solutions(graded):
    pages = list((graded["out"] / "feedback").glob("*.html"))
    assert len(pages) == len(graded["table"])
    for page in pages:
        html = page.read_text()
        for secret in ("square(-2)", "mean([0.1] * 10)", "HIDDEN", "return x * x", "math.fsum", "np.arange(5) ** 2"):
            assert secret not in html, (page.name, secret)
    html = (graded["out"] / "feedback" / "edited-tests.html").read_text()
    assert "square of a negative number should be positive" in html and "failed" in html


def test_outputs_stay_small_and_intact_after_flood_and_file_writes(graded):
    out = graded["out"]
    assert (out / "grades.csv").stat().st_size < 100_000
    assert "hacked" not in (out / "grades.csv").read_text() + (out / "summary.csv").read_text()
    assert not list(out.rglob("*.tmp"))


def test_the_kernel_cannot_find_the_solutions(graded):
    assert graded["table"]["snoop"]["test_square"]["status"] == "failed"


def test_a_rerun_uses_the_cache_and_force_grades_again(graded, tmp_path):
    out, submissions = graded["out"], graded["submissions"]
    before = (out / "grades.csv").read_text()
    caches = sorted((out / ".cache").glob("*.json"))
    assert len(caches) == len(SUBMISSIONS) + 2
    start = time.monotonic()
    assert main(["grade", "--lab", "labdemo", "--solutions", str(FIXTURES), "--out", str(out), "--timeout", TIMEOUT,
                 "--memory", "1G", "--quiet", str(submissions)]) == 0
    assert time.monotonic() - start < 5  # nothing ran again: 29 submissions would take far longer
    assert (out / "grades.csv").read_text() == before
    one = tmp_path / "one"
    one.mkdir()
    (one / "solution.ipynb").write_bytes((submissions / "solution.ipynb").read_bytes())
    stamps = {p: p.stat().st_mtime_ns for p in caches}
    assert main(["grade", "--lab", "labdemo", "--solutions", str(FIXTURES), "--out", str(out), "--force",
                 "--timeout", TIMEOUT, "--memory", "1G", "--quiet", str(one)]) == 0
    summary = read_csv(out / "summary.csv")  # every submission graded into the folder, not only this run's
    assert len(summary) == len(SUBMISSIONS) + 2 and read_csv(out / "grades.csv") == read_csv_text(before)
    assert next(r for r in summary if r["submission"] == "solution")["score"] == "5.0"
    changed = [p for p in caches if p.stat().st_mtime_ns != stamps[p]]
    assert len(changed) == 1 and json.loads(changed[0].read_text())["score"] == 5.0


def test_raises_exception_tags_match_what_happens_in_the_released_lab(graded):
    """nbval requires a cell tagged raises-exception to raise: check every released cell against the real run."""
    released = json.loads((graded["labs"] / "labdemo" / "labdemo.ipynb").read_text())
    results = [json.loads(p.read_text()) for p in (graded["out"] / ".cache").glob("*.json")]
    unfilled = [r for r in results if r["status"] == "graded" and r["score"] == 0
                and any(c.get("evalue") == "use np.arange and **" for c in r["cells"])
                and all(q["status"] in ("failed", "error") for q in r["questions"][:3])]
    assert len(unfilled) == 1
    records = {r["id"]: r for r in unfilled[0]["cells"]}
    for cell in released["cells"]:
        if cell["cell_type"] == "code":
            tagged = "raises-exception" in cell["metadata"].get("tags", [])
            assert tagged == (records[cell["id"]]["status"] != "ok"), cell["id"]


def test_torch_comparison_functions_cannot_be_patched(tmp_path):
    cheat = json.loads((FIXTURES / "labtorch" / "labtorch.ipynb").read_text())
    cheat["cells"][2]["source"] = ("import torch\ntorch.allclose = lambda *a, **k: True\n"
                                   "torch.testing.assert_close = lambda *a, **k: None\n"
                                   "torch.Tensor.__eq__ = lambda self, other: True\ndef double(t):\n    return t")
    (tmp_path / "cheat.ipynb").write_text(json.dumps(cheat))
    (tmp_path / "solution.ipynb").write_bytes((FIXTURES / "labtorch" / "labtorch.ipynb").read_bytes())
    out = tmp_path / "out"
    assert main(["grade", "--lab", "labtorch", "--solutions", str(FIXTURES), "--out", str(out), "--jobs", "2",
                 "--quiet", str(tmp_path / "cheat.ipynb"), str(tmp_path / "solution.ipynb")]) == 0
    rows = {r["submission"]: r for r in read_csv(out / "grades.csv")}
    assert rows["solution"]["status"] == "passed"
    assert rows["cheat"]["status"] == "failed"


def _run_cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "utils.grading", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, **kwargs)


def test_usage_errors_exit_with_2_and_a_clear_message(tmp_path):
    (tmp_path / "empty").mkdir()
    sub = tmp_path / "a.ipynb"
    sub.write_text("{}")
    cases = [
        (["--lab", "nosuchlab", str(sub)], "unknown lab 'nosuchlab'"),
        (["--lab", "labdemo", str(tmp_path / "empty")], "no submissions"),
        (["--lab", "labdemo", str(tmp_path / "missing.ipynb")], "no such file or folder"),
        (["--lab", "labdemo", "--jobs", "0", str(sub)], "must be positive"),
        (["--lab", "labdemo", "--memory", "lots", str(sub)], "not a size"),
    ]
    for args, message in cases:
        result = _run_cli("grade", "--solutions", str(FIXTURES), "--out", str(tmp_path / "out"), *args)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr
    help_text = _run_cli("grade", "--help").stdout
    assert "--timeout" in help_text and "needs-reading" in help_text


def test_an_interrupted_run_keeps_what_was_graded(tmp_path):
    subs, out = tmp_path / "subs", tmp_path / "out"
    subs.mkdir()
    (subs / "a-quick.ipynb").write_bytes((FIXTURES / "labdemo" / "labdemo.ipynb").read_bytes())
    (subs / "b-slow.ipynb").write_text(json.dumps(variant({"squares": "while True:\n    pass"})))
    process = subprocess.Popen([sys.executable, "-m", "utils.grading", "grade", "--lab", "labdemo", "--solutions",
                                str(FIXTURES), "--out", str(out), "--jobs", "1", "--timeout", "60", "--quiet", str(subs)],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (out / "summary.csv").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)  # the slow one is now stuck in its loop
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    assert "interrupted" in err
    summary = {r["submission"]: r for r in read_csv(out / "summary.csv")}
    assert summary["a-quick"]["status"] == "needs-reading" and summary["a-quick"]["score"] == "5.0"
    assert summary["b-slow"]["status"] == "not-graded" and summary["b-slow"]["score"] == ""  # the folder says so
    assert len(list((out / ".cache").glob("*.json"))) == 1
    assert main(["export", str(out), "--format", "canvas", "--roster", str(CANVAS_ROSTER)]) == 2  # refused


def read_csv_text(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def _lab_names() -> list[str]:
    return sorted(p.parent.name for p in (ROOT / "solutions").glob("*/*.ipynb") if p.stem == p.parent.name)


@pytest.mark.parametrize("lab", _lab_names() or [pytest.param("none", marks=pytest.mark.skip("no labs in solutions/ yet"))])
def test_real_labs_solution_full_marks_released_zero(lab, tmp_path):
    """Every solutions/labN grades to full marks; every released labs/labN to zero on every graded question."""
    subs, out = tmp_path / "subs", tmp_path / "out"
    subs.mkdir()
    (subs / "solution.ipynb").write_bytes((ROOT / "solutions" / lab / f"{lab}.ipynb").read_bytes())
    release_all(ROOT / "solutions", tmp_path / "labs", [lab])  # identical to labs/ (CI runs `release --check`)
    released = tmp_path / "labs" / lab / f"{lab}.ipynb"
    (subs / "released.ipynb").write_bytes(released.read_bytes())
    assert main(["grade", "--lab", lab, "--out", str(out), "--jobs", "2", "--timeout", "300", "--quiet", str(subs)]) == 0
    rows = read_csv(out / "grades.csv")
    for row in rows:
        if row["submission"] == "solution":
            assert row["status"] in ("passed", "needs-reading"), row
        else:
            assert float(row["score"]) == 0.0, row
    cache = [json.loads(p.read_text()) for p in (out / ".cache").glob("*.json")]
    unfilled = next(c for c in cache if c["score"] == 0.0 and all(q["status"] != "passed" for q in c["questions"]))
    records = {r["id"]: r for r in unfilled["cells"]}
    for cell in json.loads(released.read_text())["cells"]:
        if cell["cell_type"] == "code":
            tagged = "raises-exception" in cell["metadata"].get("tags", [])
            assert tagged == (records[cell["id"]]["status"] != "ok"), f"cell {cell['id']}: tag raises-exception={tagged}"


def test_an_out_that_is_a_file_is_refused_with_the_reason(graded, tmp_path, capsys):
    """A file where the output folder should go (a typo, a Slurm task's shard path taken) is a usage error that says
    so, before anything is graded, never a traceback."""
    taken = tmp_path / "taken"
    taken.write_text("not a folder")
    assert main(["grade", "--lab", "labdemo", "--solutions", str(FIXTURES), "--out", str(taken), "--quiet",
                 str(graded["submissions"])]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err and taken.read_text() == "not a folder"
