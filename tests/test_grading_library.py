"""The course library cannot answer a lab: per lab, only the modules its setup needs reach the sandbox, with the
functions that do a question's work disabled, and the visible check `own_work` names an answer that delegates."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from utils.checks import LAB_LIBRARY, own_work
from utils.grading.sandbox import prepare_library

ROOT = Path(__file__).resolve().parents[1]
LABS = sorted(p.parent.name for p in (ROOT / "solutions").glob("*/*.ipynb") if p.stem == p.parent.name)


def _utils_imports(source: str) -> set[tuple[str, str]]:
    """(module, name) of every `from utils.m import name` and ("m", "*") of every `import utils.m` in Python source."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("utils."):
            found |= {(node.module.removeprefix("utils."), alias.name) for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {(a.name.removeprefix("utils."), "*") for a in node.names if a.name.startswith("utils.")}
    return found


def _lab_cells(lab: str) -> list[tuple[str, dict]]:
    """(source, nbgrader metadata) of the lab's code cells."""
    notebook = json.loads((ROOT / "solutions" / lab / f"{lab}.ipynb").read_text())
    return [("".join(c["source"]), c["metadata"].get("nbgrader", {})) for c in notebook["cells"]
            if c["cell_type"] == "code"]


def test_every_lab_has_a_rule_and_states_it():
    assert set(LABS) <= set(LAB_LIBRARY)
    for lab in LABS:
        notebook = json.loads((ROOT / "labs" / lab / f"{lab}.ipynb").read_text())
        assert any("The course library in this lab" in "".join(c["source"]) for c in notebook["cells"]
                   if c["cell_type"] == "markdown"), lab


@pytest.mark.parametrize("lab", LABS)
def test_a_labs_modules_are_closed_under_imports_and_cover_its_setup(lab):
    allowed = LAB_LIBRARY[lab]
    for module in allowed:
        needed = {m for m, _ in _utils_imports((ROOT / "utils" / f"{module}.py").read_text())}
        assert needed <= set(allowed), f"{lab}: utils.{module} imports {sorted(needed - set(allowed))}"
    for source, meta in _lab_cells(lab):
        if meta.get("grade") or meta.get("solution"):
            continue  # test cells run in the grader's harness; answers are the student's
        source = re.sub(r"(?m)^\s*[%!].*$", "", source)
        for module, name in _utils_imports(source):
            assert module in allowed, f"{lab}'s setup imports utils.{module}, which {lab} may not use"
            assert name not in allowed[module], (
                f"{lab}'s setup or demonstration imports utils.{module}.{name}, which answers one of its questions: "
                "use the student's own function")


def test_no_demonstration_keeps_an_answer_of_the_library():
    """Labs 1 and 2 once kept utils.text.Vocab and utils.one_hot.one_hot_lookup for their demonstration cells."""
    assert "Vocab" in LAB_LIBRARY["lab1"]["text"] and "one_hot" not in LAB_LIBRARY["lab2"]


#: Per lab, answers that delegate to the course library: each must fail in the library the grader mounts.
ATTACKS = {
    "lab6": ["from utils.subwords import char_ngrams\nchar_ngrams('cat')",
             "import utils.bias\nutils.bias.weat_effect_size([[1.0]], [[1.0]], [[1.0]], [[1.0]])",
             "from utils.bias import associations\nassociations(None, None, None)",
             "from utils.cooccurrence import ppmi"],
    "lab5": ["from utils.transfer import align_embeddings", "from utils.pretraining import sgns_loss_and_gradients"],
    "lab4": ["from utils.similarity import cosine_similarity\ncosine_similarity([[1.0]])",
             "from utils.similarity import spearman\nspearman([1, 2], [1, 2])"],
    "lab2": ["from utils.one_hot import count_vectors\ncount_vectors(None, None, 3)",
             "from utils.one_hot import one_hot_lookup\none_hot_lookup(None, None)"],
    "lab1": ["from utils.similarity import nearest_neighbours",
             "from utils.text import Vocab, tokenize\nVocab(tokenize('a b'))",
             "import utils.text\nutils.text.Vocab(['a'])",
             "from utils.text import Vocab\nVocab.build([['a']])"],  # a class method says why too
    "lab3": ["import importlib\nimportlib.import_module('utils.grading')", "import utils.transfer"],
}


def test_the_graders_library_refuses_answers_that_delegate(tmp_path):
    """Each delegating answer fails with a clear error in its lab's library (one process for all labs; that a lab's
    own setup still works with its library is what test_grading.py's real-lab grading shows)."""
    folders = {lab: prepare_library(tmp_path / lab, lab=lab).parent for lab in ATTACKS}
    code = f"""
import json, sys
sys.meta_path[:] = [f for f in sys.meta_path if 'Editable' not in getattr(f, '__name__', '')]  # as in the sandbox
results = {{}}
for lab, folder in {({lab: str(f) for lab, f in folders.items()})!r}.items():
    for name in [n for n in sys.modules if n == "utils" or n.startswith("utils.")]:
        del sys.modules[name]
    sys.path.insert(0, folder)
    for attack in {ATTACKS!r}[lab]:
        try:
            exec(attack, {{}})
            results[attack] = "passed"
        except (ImportError, NotImplementedError) as error:
            results[attack] = type(error).__name__ + ": " + str(error)
    sys.path.remove(folder)
print(json.dumps(results))
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=300,
                         check=False)
    assert run.returncode == 0, run.stderr
    results = json.loads(run.stdout)
    refused = r"ModuleNotFoundError: No module named 'utils\.|NotImplementedError: utils\.\w+\.\w+ does what"
    for attack in [a for attacks in ATTACKS.values() for a in attacks]:
        assert re.match(refused, results[attack]), (attack, results[attack])


def test_own_work_names_an_answer_that_delegates_and_accepts_ones_own():
    import numpy as np

    from utils import bias
    from utils.subwords import char_ngrams

    def weat(x, y, a, b):
        return bias.weat_effect_size(x, y, a, b)

    def lookup(ids, weight):
        from utils.one_hot import one_hot_lookup
        return one_hot_lookup(ids, weight)

    def own(x):
        return np.asarray(x).mean()

    for answer, lab in [(char_ngrams, "lab6"), (weat, "lab6"), (lookup, "lab2")]:
        with pytest.raises(AssertionError, match=r"course library.*write it yourself"):
            own_work(answer, lab)
    from utils.text import Vocab

    def vocabulary(docs):
        return Vocab.build(docs).itos

    with pytest.raises(AssertionError, match="utils.text.Vocab"):
        own_work(vocabulary, "lab1")
    own_work(own, "lab6")
    own_work(object(), "lab6")  # a proxy of the autograder: nothing to inspect here
