"""Labs teach the idea, not the typing: stubs and hints carry no code, every question has hints, one voice.

Checks every lab in solutions/ as the release makes it: no stub message (the `### HINT:` line) holds code or API
names, no hint step holds code (the last step may name functions, never call them), every question has two or
three steps that point at a chapter section that exists, and every lab opens with the same environment check,
imports `hint`, says what it practises and how long it takes, and prints the same message after each visible check.
"""

from __future__ import annotations

import ast
import builtins
import collections
import json
import re
from functools import cache
from pathlib import Path

import pytest

from utils.grading.notebook import cell_source, find_labs, nbgrader_meta, parse_lab
from utils.grading.release import release_notebook, remove_hidden_tests
from utils.hints import HINTS_FILE, read_hints

ROOT = Path(__file__).resolve().parents[1]
LABS = find_labs(ROOT / "solutions")

#: The first statement of every lab's setup cell, character for character.
ENVIRONMENT_CHECK = "from utils.setup_check import check_course\n\ncheck_course()\n"

#: Shapes of code in prose: what each looks like, and the pattern that finds it.
CODE_PATTERNS = {
    "a call": r"[A-Za-z_][\w.]*\(",
    "inline code": r"`",
    "an assignment or keyword argument": r"(?<![=!<>])=(?!=)",
    "a comparison": r"==|!=|<=|>=|\s[<>]\s",
    "an arithmetic expression": r"\w\s*(?:\*\*|//|[*/@%+])\s*[\w(]|\w\s+-\s+[\w(]|\w-1\b",
    "indexing or a slice": r"\w\[|\[\s*:|:\s*\]",
    "a loop or a lambda": r"\bfor\s+\w+\s+in\b|\blambda\b|\brange\b",
    "an einsum string": r"->|'[a-z]+,[a-z]+",
}
#: Stubs say what and why in words: they name no attribute, module or API either.
STUB_PATTERNS = {
    "an attribute or module name": r"\b(?!e\.g\b|i\.e\b)[A-Za-z_]\w*\.[A-Za-z_]\w*",
    "a snake_case name": r"\b[a-z]+_\w+|\b_\w+",
}
#: API names that are not English words (English words such as sum or mean may appear in prose).
CODE_WORDS = {"unsqueeze", "arange", "nonzero", "einsum", "clamp", "argmax", "argmin", "argsort", "topk", "numel",
              "bincount", "cumsum", "matmul", "bmm", "linspace", "logsumexp", "softmax", "isclose", "allclose",
              "tolist", "detach", "randn", "randint", "dtype", "len", "enumerate", "isinstance", "elif", "ddof",
              "sqrt", "cdist", "keepdim", "requires", "torch", "nn", "np", "numpy"}


@cache
def api_names() -> frozenset[str]:
    """Public names of torch, its layers, functions, tensors and optimisers, Python's builtins and collections."""
    import torch
    from torch import nn
    from torch.nn import functional

    modules = [torch, nn, functional, torch.Tensor, torch.optim, builtins, collections]
    return frozenset(n for m in modules for n in dir(m) if not n.startswith("_"))


def code_in(text: str, stub: bool) -> list[str]:
    """What in `text` looks like code (empty when it is plain prose); stubs are also checked for API names."""
    found = [f"{what}: {m.group(0)!r}" for what, pattern in CODE_PATTERNS.items() for m in [re.search(pattern, text)]
             if m]
    if stub:
        found += [f"{what}: {m.group(0)!r}" for what, pattern in STUB_PATTERNS.items()
                  for m in [re.search(pattern, text)] if m]
        words = set(re.findall(r"[A-Za-z_]\w*", text))
        found += [f"an API name: {w!r}" for w in sorted(words)
                  if w in CODE_WORDS or (w in api_names() and re.search(r"_|[a-z][A-Z]|^[A-Z][a-z]+[A-Z]|^[A-Z]", w)
                                         and w not in {"I", "A"})]
    return found


def stub_messages(lab: str) -> list[tuple[str, str]]:
    """(cell id, message) of every `raise NotImplementedError(...)` in the released lab."""
    notebook = release_notebook(lab, LABS[lab])
    messages = []
    for cell in notebook["cells"]:
        if cell["cell_type"] != "code" or "NotImplementedError" not in cell_source(cell):
            continue
        for node in ast.walk(ast.parse(cell_source(cell))):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and node.exc.args:
                messages.append((cell["id"], ast.literal_eval(node.exc.args[0])))
    return messages


def question_key(question_id: str) -> str:
    """The hint key of a question: 'q3' for the test cell 'q3_tests', 'w1' for the written answer 'w1_min_freq'."""
    return question_id.split("_")[0]


@cache
def section_titles() -> frozenset[str]:
    """The headings of every chapter, without markdown code marks."""
    titles = set()
    for path in (ROOT / "book").glob("[0-9][0-9]-*.ipynb"):
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            if cell["cell_type"] == "markdown":
                titles |= {line.lstrip("#").strip().replace("`", "") for line in cell_source(cell).split("\n")
                           if line.startswith("#")}
    return frozenset(titles)


BAD = [  # stub messages of the old labs: each spells out the code
    "count all tokens with a Counter, keep those seen at least min_freq times, sort them with key=lambda t: "
    "(-counts[t], t), and put PAD and UNK in front",
    "dict.get takes a default value",
    "loop over int(i) for i in ids and skip PAD_ID",
    "compare ids.unsqueeze(-1) with torch.arange(num_classes); broadcasting does the rest; then convert to float",
    "the number of classes is weight.shape[0]; the @ operator multiplies the last dimension of the left with the "
    "first of the right",
    "nn.Linear(V, d, bias=False) has a weight of shape (d, V): copy the transposed table into it under "
    "torch.no_grad()",
    "model = MeanClassifier(vocab_size, 16, 2); history = train(model, train_data, dev_data, epochs=..., lr=..., "
    "progress=False)",
    "nn.Embedding takes a padding_idx argument",
    "sum over range(max(0, i - window), min(len(ids), i + window + 1))",
    "use torch.einsum('bd,vd->bv', queries, table)",
    "the standard deviation with ddof 1",
    "an EmbeddingBag in mean mode",
]
GOOD = ["count how often each token occurs in all the documents, keep the tokens seen often enough, and put the two "
        "special tokens first",
        "start from a gradient of zeros for the whole table and let every position add its upstream gradient to the "
        "row of its id, so that repeated ids accumulate; the padding row gets nothing"]


@pytest.mark.parametrize("text", BAD)
def test_the_detector_finds_the_code_in_old_stubs(text):
    assert code_in(text, stub=True)


@pytest.mark.parametrize("text", GOOD)
def test_the_detector_lets_prose_through(text):
    assert code_in(text, stub=True) == []


def test_hint_steps_may_name_functions_but_not_call_them():
    assert code_in("Look up torch.zeros and the in-place method index_add_.", stub=False) == []
    assert code_in("Look up torch.zeros(num_rows, dim).", stub=False)


@pytest.mark.parametrize("lab", sorted(LABS))
def test_no_stub_message_contains_code(lab):
    messages = stub_messages(lab)
    assert messages, f"{lab}: no stubs found"
    found = {cell: code_in(message, stub=True) for cell, message in messages}
    assert not {c: f for c, f in found.items() if f}, f"{lab}: stub messages with code: {found}"


@pytest.mark.parametrize("lab", sorted(LABS))
def test_every_question_has_two_or_three_hint_steps_without_code(lab):
    path = LABS[lab].parent / HINTS_FILE
    assert path.is_file(), f"{lab}: no {HINTS_FILE} beside the solution"
    hints = read_hints(path)
    keys = {question_key(q.id) for q in parse_lab(lab, LABS[lab]).questions}
    assert keys == set(hints), f"{lab}: questions without hints {keys - set(hints)}, hints without a question " \
                               f"{set(hints) - keys}"
    for key, steps in hints.items():
        assert 2 <= len(steps) <= 3, f"{lab} {key}: {len(steps)} steps (the idea, the chapter section, the names)"
        assert re.search(r"\bchapter\b", steps[1], re.IGNORECASE), f"{lab} {key}: step 2 should name the chapter"
        for step in steps:
            assert not code_in(step, stub=False), f"{lab} {key}: {step!r} holds {code_in(step, stub=False)}"


@pytest.mark.parametrize("lab", sorted(LABS))
def test_the_sections_the_hints_name_exist(lab):
    hints = read_hints(LABS[lab].parent / HINTS_FILE)
    for key, steps in hints.items():
        quoted = re.findall(r"'((?:[^']|'(?=s\b))+)'", steps[1])  # step 2 names sections in quotes
        assert quoted, f"{lab} {key}: step 2 should name a chapter section in quotes"
        for section in quoted:
            assert any(title.startswith(section) for title in section_titles()), \
                f"{lab} {key}: no chapter has a section {section!r}"


@pytest.mark.parametrize("lab", sorted(LABS))
def test_the_setup_checks_the_environment_and_imports_hint(lab):
    cells = parse_lab(lab, LABS[lab]).cells
    setup = next(c for c in cells if c["cell_type"] == "code")
    source = cell_source(setup)
    assert source.startswith(ENVIRONMENT_CHECK), f"{lab}: the setup cell should start with the course's environment check"
    assert "from utils.hints import hint\n" in source, f"{lab}: the setup cell should import hint"


@pytest.mark.parametrize("lab", sorted(LABS))
def test_every_visible_check_prints_the_same_message(lab):
    parsed = parse_lab(lab, LABS[lab])
    for question in parsed.questions:
        if question.kind == "test":
            visible = remove_hidden_tests(cell_source(parsed.cells[question.cell_index]))
            number = question_key(question.id).lstrip("q")
            assert visible.rstrip().endswith(f'print("Question {number}: the visible checks passed.")'), \
                f"{lab} {question.id}: the visible checks should end by printing the same message as the other labs"


@pytest.mark.parametrize("lab", sorted(LABS))
def test_the_intro_says_what_it_practises_and_how_long_and_each_question_why(lab):
    parsed = parse_lab(lab, LABS[lab])
    intro = cell_source(parsed.cells[0])
    for part in ("**What you practise.**", "**How long it takes.**", "hint(", "the visible checks passed."):
        assert part in intro, f"{lab}: the intro should contain {part!r}"
    texts = [cell_source(c) for c in parsed.cells if c["cell_type"] == "markdown"]
    for question in parsed.questions:
        if question.kind == "test":
            number = question_key(question.id).lstrip("q")
            text = next((t for t in texts if t.startswith(f"## Question {number}:")), "")
            assert "**Why it matters.**" in text, f"{lab}: Question {number} should say why it matters"
