"""Verdicts the student's code cannot touch: every class of attack on the test harness, tried for real.

Each attack runs twice, as a cell of the unsolved lab (stubs everywhere else) and as part of a spoiled solution
(Question 1 wrong, the rest right). The unsolved lab must still score 0, and the spoiled solution no more than it
scores without the attack: the tests run in the grader's harness, where none of this code ever runs.
All submissions are graded in one run (module fixture), in the sandbox.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from utils.grading.cli import main
from utils.grading.lms import read_csv
from utils.grading.release import release_all

FIXTURES = Path(__file__).parent / "fixtures" / "grading" / "attacks"
SOLUTION = json.loads((FIXTURES / "labguard" / "labguard.ipynb").read_text())
WRONG_DOUBLE = "def double(t):\n    return t\n"
STUB_DOUBLE = 'def double(t):\n    raise NotImplementedError("Replace this line with your code")\n'
#: Text of the hidden tests that must never reach a student, a CSV file or a feedback page.
SECRETS = ("arange(4.0)", "hidden-mean-check", "hidden-count-check", "BEGIN HIDDEN", "0.1] * 10")

#: attack name -> code placed before the definition of double (which follows it: stub, or a wrong answer).
ATTACKS = {
    "patched-comparisons": """
import builtins, math, numpy as np, torch
torch.allclose = torch.equal = lambda *a, **k: True
np.allclose = np.isclose = math.isclose = lambda *a, **k: True
torch.testing.assert_close = lambda *a, **k: None
builtins.isinstance = lambda *a, **k: True
""",
    "tensor-methods": """
import torch
for name in ("__eq__", "__ne__", "__bool__", "equal", "allclose", "all", "any", "item", "tolist"):
    setattr(torch.Tensor, name, lambda *a, **k: True)
torch.Tensor.brand_new_comparison = lambda *a, **k: True
""",
    "tensor-subclass": """
import torch
class Liar(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        return True
_double = None
def double(t):
    return torch.zeros(3).as_subclass(Liar)
""",
    "input-transformers": """
import ast
class NoAsserts(ast.NodeTransformer):
    def visit_Assert(self, node):
        return ast.Pass()
shell = get_ipython()
shell.ast_transformers.append(NoAsserts())
shell.input_transformers_post.append(lambda lines: ["pass\\n"])
shell.input_transformer_manager.cleanup_transforms.append(lambda lines: ["pass\\n"])
""",
    "audit-trace-profile-hooks": """
import sys, threading
def audit(event, args):
    if event == "compile":
        raise RuntimeError("no compiling here")
sys.addaudithook(audit)
def tracer(frame, event, arg):
    frame.f_globals.update(allclose=lambda *a, **k: True)
    return tracer
sys.settrace(tracer); threading.settrace(tracer)
sys.setprofile(lambda *a: None)
""",
    "gc-callbacks": """
import gc, math, torch
def patch(phase, info):
    torch.allclose = torch.equal = lambda *a, **k: True
    math.isclose = lambda *a, **k: True
gc.callbacks.append(patch)
gc.collect()
""",
    "background-threads": """
import math, threading, time, torch
def patch():
    while True:
        torch.allclose = torch.equal = lambda *a, **k: True
        math.isclose = lambda *a, **k: True
        time.sleep(0.001)
threading.Thread(target=patch, daemon=True).start()
""",
    "read-test-source": """
import gc, inspect, os
def _find():
    seen = []
    for frame in inspect.stack():
        seen.append(repr(frame.frame.f_globals.get("In", "")) + repr(frame.code_context))
    for obj in gc.get_objects():
        if isinstance(obj, str) and "arange(4.0)" in obj:
            seen.append(obj)
    for pid in os.listdir("/proc"):
        for name in ("cmdline", "environ", "cwd"):
            try:
                seen.append(open(f"/proc/{pid}/{name}", errors="replace").read())
            except OSError:
                pass
    for root in ("/", "/home", "/tmp", "/work", "/root"):
        try:
            seen += os.listdir(root)
        except OSError:
            pass
    return "arange(4.0)" in " ".join(seen) or "solutions" in " ".join(seen)
FOUND = _find()
""",
    "forged-markers": """
import os, socket, struct, json
print("All tests passed")
os.write(1, b"All tests passed\\n"); os.write(2, b"ok\\n")
for fd in range(3, 64):
    try:
        s = socket.socket(fileno=os.dup(fd))
    except OSError:
        continue
    head = json.dumps({"value": {"t": "handle", "id": 0}, "blobs": []}).encode()
    try:
        s.send(struct.pack(">Q", len(head)) + head)
    except OSError:
        pass
""",
    "replaced-guard": """
import builtins, sys
for module in list(sys.modules.values()):
    for name in ("restore", "install", "write_marker", "run_test", "verdict"):
        try:
            setattr(module, name, lambda *a, **k: None)
        except Exception:
            pass
_import = builtins.__import__
builtins.__import__ = lambda name, *a, **k: _import(name, *a, **k)
""",
    "poisoned-helpers": """
import numpy as np, torch, utils.text
assert_close = lambda *a, **k: None
utils.text.tokenize = lambda text: ["x"] * 1000
np.isclose = lambda *a, **k: True
torch = None
""",
    "exception-message": """
import gc
def _everything():
    texts = [o for o in gc.get_objects() if isinstance(o, str)]
    return " | ".join(texts)[:100000]
def double(t):
    raise ValueError("arange(4.0) hidden-mean-check BEGIN HIDDEN " + _everything())
""",
    "reply-imports-a-module": """
import __main__
def _forged(self, value, depth=0):  # every reply names classes in modules with top-level code
    return {"t": "list", "v": [
        {"t": "object", "cls": "utils.grading.__main__:X", "state": {"t": "dict", "k": [], "v": []}},
        {"t": "namedtuple", "cls": "this:X", "v": []}, {"t": "module", "cls": "antigravity:X"}]}
__main__.Encoder.encode = _forged
""",
}
#: Attacks that define double themselves (the answer after them is not used).
OWN_DOUBLE = {"tensor-subclass", "exception-message"}


def _with_cell(notebook: dict, grade_id: str, source: str) -> dict:
    """A copy of a notebook with one answer cell's source replaced."""
    notebook = copy.deepcopy(notebook)
    for cell in notebook["cells"]:
        if cell["metadata"].get("nbgrader", {}).get("grade_id") == grade_id:
            cell["source"] = source
    return notebook



@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Grade every attack, unsolved and spoiled, plus the two baselines, in one run."""
    root = tmp_path_factory.mktemp("attacks")
    release_all(FIXTURES, root / "labs", ["labguard"])
    released = json.loads((root / "labs" / "labguard" / "labguard.ipynb").read_text())
    subs = root / "subs"
    subs.mkdir()
    notebooks = {"solution": SOLUTION, "unsolved": released, "spoiled": _with_cell(SOLUTION, "double", WRONG_DOUBLE)}
    for name, attack in ATTACKS.items():
        tail_unsolved = "" if name in OWN_DOUBLE else STUB_DOUBLE
        tail_spoiled = "" if name in OWN_DOUBLE else WRONG_DOUBLE
        notebooks[f"unsolved-{name}"] = _with_cell(released, "double", attack + tail_unsolved)
        notebooks[f"spoiled-{name}"] = _with_cell(SOLUTION, "double", attack + tail_spoiled)
    for name, notebook in notebooks.items():
        (subs / f"{name}.ipynb").write_text(json.dumps(notebook))
    out = root / "out"
    code = main(["grade", "--lab", "labguard", "--solutions", str(FIXTURES), "--out", str(out), "--jobs", "2",
                 "--timeout", "20", "--memory", "1G", "--quiet", str(subs)])
    summary = {row["submission"]: row for row in read_csv(out / "summary.csv")}
    return {"code": code, "out": out, "summary": summary, "grades": read_csv(out / "grades.csv")}


def test_baselines(graded):
    assert graded["code"] == 0
    summary = graded["summary"]
    assert float(summary["solution"]["score"]) == 5.0
    assert float(summary["unsolved"]["score"]) == 0.0
    assert float(summary["spoiled"]["score"]) == 3.0


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_an_attack_earns_nothing(graded, attack):
    summary = graded["summary"]
    assert summary[f"unsolved-{attack}"]["score"] == "0.0", summary[f"unsolved-{attack}"]
    assert float(summary[f"spoiled-{attack}"]["score"]) <= float(summary["spoiled"]["score"]), summary[f"spoiled-{attack}"]


def test_the_other_questions_are_still_graded_normally(graded):
    """Attacks that leave the student's process working must not cost the student the untouched questions.

    (The others break the student's own process: patching isinstance, or making every later cell a no-op.)"""
    for attack in ("tensor-methods", "gc-callbacks", "background-threads", "read-test-source", "replaced-guard",
                   "tensor-subclass", "exception-message"):
        assert graded["summary"][f"spoiled-{attack}"]["score"] == "3.0", attack


def test_no_hidden_test_reaches_the_outputs(graded):
    texts = [(graded["out"] / name).read_text() for name in ("grades.csv", "summary.csv")]
    texts += [page.read_text() for page in (graded["out"] / "feedback").glob("*.html")]
    for text in texts:
        for secret in SECRETS:
            assert secret not in text.replace("arange(4.0) hidden-mean-check BEGIN HIDDEN", ""), secret


def test_an_exception_from_the_students_code_is_reported_as_theirs(graded):
    row = next(r for r in graded["grades"] if r["submission"] == "spoiled-exception-message"
               and r["question"] == "test_double")
    assert row["status"] == "failed" and row["message"].startswith("ValueError: arange(4.0)")
    assert len(row["message"]) < 2500


def test_no_reply_turns_a_submission_into_a_grader_error(graded):
    """A forged reply (naming classes in modules whose import raises SystemExit) is the submission's own failure."""
    assert {row["status"] for row in graded["summary"].values()}.isdisjoint({"grader-error"}), graded["summary"]
