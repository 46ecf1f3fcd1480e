"""Every hidden test of every lab, against answers that spoil what they are given: no question's points.

The labs' test cells run with their visible asserts made no-ops, so that the hidden asserts alone decide.

The attack: an answer that first empties the dicts and sets it receives (and those in its lists), zeroes its
tensors, arrays and modules' weights, fills its boolean masks and moves gradients, and then returns what the
reference solution returns for those spoiled arguments. A test that computed its expected value from an argument
after the call (with the student's changes copied back) would compare that wrong answer with itself. The same
answers also look for test code among their arguments (a function compiled from a cell) and put what they find
into their error message.
One grading run per lab, in the sandbox.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest

from utils.grading.cli import main
from utils.grading.harness import bound_names
from utils.grading.lms import read_csv

ROOT = Path(__file__).resolve().parents[1]
LABS = sorted(p.parent.name for p in (ROOT / "solutions").glob("*/*.ipynb") if p.stem == p.parent.name)

#: Questions whose hidden asserts a spoiling answer satisfies by right. Every other question must earn nothing.
UNSPOILABLE: dict[str, set[str]] = {
    # Only words, ids (in lists) and numbers go in: nothing to spoil, the answer is the reference's.
    "lab1": {"q1_tests", "q5_tests"},  # build_vocab(lists of words), make_embedding(numbers)
    "lab2": {"q5_tests"},  # bag_of_words(lists of ids, a number)
    "lab5": {"q1_tests",  # skipgram_pairs(a list of ids, numbers)
             # The hidden asserts check only the tables' gradient flags and a dev accuracy; the comparison with the
             # GloVe rows (visible part) uses the test's own GloVe, which the answer's spoiling never reaches.
             "q4_tests",
             # paired_differences(lists of numbers, the test's own accuracy function, which stays in the harness)
             "q7_tests"},
    "lab6": {"q3_tests"},  # char_ngrams(a word, numbers)
}

SPOILER = '''
import sys as _sys


def _spoil(value, depth=0):
    """Empty, zero or fill what an answer was given (the test's objects, if the grader copied changes back)."""
    torch, np = _sys.modules.get("torch"), _sys.modules.get("numpy")
    if depth > 3:
        return
    try:
        if isinstance(value, (dict, set)):
            value.clear()
        elif isinstance(value, (list, tuple)):  # their items, not their length: the answer keeps its shape
            for item in value:
                _spoil(item, depth + 1)
        elif torch is not None and isinstance(value, torch.nn.Module):
            for parameter in value.parameters():
                with torch.no_grad():
                    parameter.zero_()
                parameter.grad = torch.ones_like(parameter)
        elif torch is not None and isinstance(value, torch.Tensor):
            with torch.no_grad():
                value.fill_(True) if value.dtype == torch.bool else value.zero_()
            if value.is_leaf and value.is_floating_point():
                value.grad = torch.ones_like(value)
        elif np is not None and isinstance(value, np.ndarray) and value.flags.writeable:
            value.fill(True if value.dtype == bool else 0)
        elif type(value).__module__.startswith(("utils.", "pandas.")) and hasattr(value, "__dict__"):
            for item in list(vars(value).values()):
                _spoil(item, depth + 1)
    except Exception:
        pass


def _hostile(function):
    def answer(*args, **kwargs):
        for value in [*args, *kwargs.values()]:
            code = getattr(value, "__code__", None)
            if code is not None and code.co_filename.startswith("<"):  # written in a cell, not a library's
                raise RuntimeError(f"LEAKED TEST CODE {code.co_consts!r} {code.co_names!r}")
            _spoil(value)
        return function(*args, **kwargs)
    answer.__name__ = function.__name__
    return answer
'''


def _hidden_only(source: str) -> str:
    """A test cell whose visible asserts are `pass` (its other statements stay): only its hidden asserts decide."""
    import ast
    begin = source.find("### BEGIN HIDDEN TESTS")
    if begin < 0:
        return source
    visible, hidden = source[:begin], source[begin:]
    lines = visible.splitlines(keepends=True)
    for node in sorted((n for n in ast.walk(ast.parse(visible)) if isinstance(n, ast.Assert)),
                       key=lambda n: n.lineno, reverse=True):
        lines[node.lineno - 1:node.end_lineno] = [" " * node.col_offset + "pass\n"]
    return "".join(lines) + hidden


def _hidden_tests_lab(lab: str, folder: Path) -> Path:
    """A copy of the lab's solutions folder whose test cells keep only their hidden asserts."""
    shutil.copytree(ROOT / "solutions" / lab, folder / lab)
    path = folder / lab / f"{lab}.ipynb"
    notebook = json.loads(path.read_text())
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code" and cell.get("metadata", {}).get("nbgrader", {}).get("grade"):
            cell["source"] = _hidden_only("".join(cell["source"]))
    path.write_text(json.dumps(notebook))
    return folder


def _hostile_notebook(notebook: dict) -> dict:
    """The reference solution with every function of every answer cell wrapped by the spoiler."""
    notebook = copy.deepcopy(notebook)
    first = True
    for cell in notebook["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell["cell_type"] != "code" or not meta.get("solution") or meta.get("grade"):
            continue
        source = "".join(cell["source"])
        names = sorted(bound_names(source))
        wrap = (f"\nfor _name in {names!r}:\n"
                "    if type(globals().get(_name)).__name__ == 'function':\n"
                "        globals()[_name] = _hostile(globals()[_name])\n")
        cell["source"] = (SPOILER if first else "") + source + wrap
        first = False
    return notebook


@pytest.mark.parametrize("lab", LABS)
def test_answers_that_spoil_their_arguments_earn_nothing_and_see_no_test_code(lab, tmp_path):
    subs, out = tmp_path / "subs", tmp_path / "out"
    subs.mkdir()
    solution = json.loads((ROOT / "solutions" / lab / f"{lab}.ipynb").read_text())
    (subs / "hostile.ipynb").write_text(json.dumps(_hostile_notebook(solution)))
    solutions = _hidden_tests_lab(lab, tmp_path / "solutions")
    assert main(["grade", "--lab", lab, "--solutions", str(solutions), "--out", str(out), "--jobs", "1",
                 "--timeout", "300", "--quiet", str(subs)]) == 0
    rows = read_csv(out / "grades.csv")
    assert rows and all(row["status"] != "grader-error" for row in rows), rows
    earned = {row["question"] for row in rows if row["status"] == "passed"}
    assert earned <= UNSPOILABLE.get(lab, set()), f"{lab}: spoiling answers earned {sorted(earned)}"
    assert not any("LEAKED" in row["message"] for row in rows), [r["message"] for r in rows if "LEAKED" in r["message"]]
