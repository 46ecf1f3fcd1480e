"""The new questions of labs 1 to 3 reject plausible wrong solutions, graded by the real grader.

Each submission is the released lab with only the new question's answer filled in: the correct answer must pass,
every wrong one (a sign error, a transposed matrix, an off-by-one and the mistakes natural to the question) must
score zero. The verdicts come from running the lab's setup cells and the question's whole test cell in this
process (seconds for all); one run of the real grader on a few of the same submissions shows it agrees.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import io
import json
from pathlib import Path

import pytest

from utils.grading.cli import main
from utils.grading.lms import read_csv
from utils.grading.notebook import cell_source, nbgrader_meta, parse_lab

ROOT = Path(__file__).resolve().parents[1]

LAB1_HEAD = '''def predict_moved_rows(first, second, num_rows, optimizer, padding_idx=None):
    now, before = set(second.flatten().tolist()), set(first.flatten().tolist())
'''
LAB1 = {
    "correct": '''    moved = {"sgd": now, "momentum": now | before, "adam": now | before, "adamw": set(range(num_rows))}[optimizer]
    return sorted(moved - {padding_idx})''',
    "adam-like-sgd": '''    moved = {"sgd": now, "momentum": now | before, "adam": now, "adamw": set(range(num_rows))}[optimizer]
    return sorted(moved - {padding_idx})''',
    "sgd-remembers": '''    moved = {"sgd": now | before, "momentum": now | before, "adam": now | before, "adamw": set(range(num_rows))}[optimizer]
    return sorted(moved - {padding_idx})''',
    "momentum-like-sgd": '''    moved = {"sgd": now, "momentum": now, "adam": now | before, "adamw": set(range(num_rows))}[optimizer]
    return sorted(moved - {padding_idx})''',
    "difference-not-union": '''    moved = {"sgd": now, "momentum": before - now, "adam": before - now, "adamw": set(range(num_rows))}[optimizer]
    return sorted(moved - {padding_idx})''',
    "adamw-like-adam": '''    moved = {"sgd": now, "momentum": now | before, "adam": now | before, "adamw": now | before}[optimizer]
    return sorted(moved - {padding_idx})''',
    "off-by-one-all-rows": '''    moved = {"sgd": now, "momentum": now | before, "adam": now | before, "adamw": set(range(num_rows - 1))}[optimizer]
    return sorted(moved - {padding_idx})''',
    "padding-row-moves": '''    moved = {"sgd": now, "momentum": now | before, "adam": now | before, "adamw": set(range(num_rows))}[optimizer]
    return sorted(moved)''',
    "decay-moves-padding": '''    moved = {"sgd": now, "momentum": now | before, "adam": now | before, "adamw": set(range(num_rows))}[optimizer]
    return sorted(moved - ({padding_idx} if optimizer != "adamw" else set()))''',
}

LAB2_HEAD = '''def embedding_backward(ids, upstream, num_rows, padding_idx=None):
    dim = upstream.shape[-1]
    flat_ids, flat_up = ids.reshape(-1), upstream.reshape(-1, dim)
'''
LAB2_PAD = '''
    if padding_idx is not None:
        grad[padding_idx] = 0
    return grad'''
LAB2 = {
    "correct": "    grad = torch.zeros(num_rows, dim, dtype=upstream.dtype).index_add_(0, flat_ids, flat_up)" + LAB2_PAD,
    "sign-error": "    grad = torch.zeros(num_rows, dim, dtype=upstream.dtype).index_add_(0, flat_ids, -flat_up)" + LAB2_PAD,
    "repeated-ids-overwrite": '''    grad = torch.zeros(num_rows, dim, dtype=upstream.dtype)
    grad[flat_ids] = flat_up''' + LAB2_PAD,
    "repeated-ids-averaged": '''    grad = torch.zeros(num_rows, dim, dtype=upstream.dtype).index_add_(0, flat_ids, flat_up)
    grad = grad / torch.bincount(flat_ids, minlength=num_rows).clamp(min=1).unsqueeze(1).to(grad.dtype)''' + LAB2_PAD,
    "transposed-result": '''    grad = flat_up.T @ F.one_hot(flat_ids, num_rows).to(upstream.dtype)''' + LAB2_PAD,
    "transposed-batch": '''    flat_up = upstream.transpose(0, -2).reshape(-1, dim) if upstream.dim() > 2 else flat_up
    grad = torch.zeros(num_rows, dim, dtype=upstream.dtype).index_add_(0, flat_ids, flat_up)''' + LAB2_PAD,
    "off-by-one-rows": "    grad = torch.zeros(num_rows - 1, dim, dtype=upstream.dtype).index_add_(0, flat_ids, flat_up)" + LAB2_PAD,
    "rows-from-largest-id": '''    grad = torch.zeros(int(flat_ids.max()) + 1, dim, dtype=upstream.dtype).index_add_(0, flat_ids, flat_up)''' + LAB2_PAD,
    "padding-ignored": '''    return torch.zeros(num_rows, dim, dtype=upstream.dtype).index_add_(0, flat_ids, flat_up)''',
    "always-float32": '''    grad = torch.zeros(num_rows, dim).index_add_(0, flat_ids, flat_up.float())''' + LAB2_PAD,
    # Autograd in disguise: right numbers in floating point, but the question asks for the gradient by hand.
    "autograd-backward": '''    table = torch.zeros(num_rows, dim, dtype=upstream.dtype, requires_grad=True)
    F.embedding(ids, table, padding_idx=padding_idx).backward(upstream)
    return table.grad''',
    "autograd-grad": '''    table = torch.zeros(num_rows, dim, dtype=upstream.dtype, requires_grad=True)
    return torch.autograd.grad(F.embedding(ids, table, padding_idx=padding_idx), table, upstream)[0]''',
    "autograd-one-hot-product": '''    table = torch.zeros(num_rows, dim, dtype=upstream.dtype, requires_grad=True)
    (F.one_hot(flat_ids, num_rows).to(upstream.dtype) @ table).backward(flat_up)
    grad = table.grad''' + LAB2_PAD,
    "functional-vjp": '''    table = torch.zeros(num_rows, dim, dtype=upstream.dtype)
    return torch.autograd.functional.vjp(lambda w: F.embedding(ids, w, padding_idx=padding_idx), table, upstream)[1]''',
    "func-vjp-through-float64": '''    table = torch.zeros(num_rows, dim, dtype=torch.float64)
    _, pull = torch.func.vjp(lambda w: F.embedding(ids, w, padding_idx=padding_idx), table)
    return pull(upstream.to(torch.float64))[0].to(upstream.dtype)''',
}

LAB3_HEAD = '''def predict_padded_mean(means, lengths, padded_length, pad_vector):
    n = lengths.to(means.dtype).unsqueeze(1)
'''
LAB3 = {
    "correct": "    return (n * means + (padded_length - n) * pad_vector) / padded_length",
    "sign-error": "    return (n * means - (padded_length - n) * pad_vector) / padded_length",
    "lengths-along-the-vector": '''    n = lengths.to(means.dtype)  # (batch,) broadcast against (batch, dim): scales columns, not rows
    return (n * means + (padded_length - n) * pad_vector) / padded_length''',
    "off-by-one-padding": "    return (n * means + (padded_length - n - 1) * pad_vector) / padded_length",
    "padding-vector-forgotten": "    return n * means / padded_length",
    "padding-at-every-position": "    return (n * means + padded_length * pad_vector) / padded_length",
    "ratio-inverted": "    return (padded_length * means + (padded_length - n) * pad_vector) / n.clamp(min=1)",
    "longest-text-as-length": '''    length = n.max()
    return (n * means + (length - n) * pad_vector) / length''',
}

NEW_QUESTIONS = {  # lab: (grade_id of the answer cell, grade_id of its test cell, head, {name: body})
    "lab1": ("q6_predict_moved_rows", "q6_tests", LAB1_HEAD, LAB1),
    "lab2": ("q6_embedding_backward", "q6_tests", LAB2_HEAD, LAB2),
    "lab3": ("q5_predict_padded_mean", "q5_tests", LAB3_HEAD, LAB3),
}


def with_answer(released: dict, grade_id: str, source: str) -> dict:
    """The released lab with the answer cell `grade_id` replaced by `source`."""
    notebook = copy.deepcopy(released)
    cells = [c for c in notebook["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") == grade_id]
    assert len(cells) == 1, grade_id
    cells[0]["source"] = source
    return notebook


@functools.cache
def setup_namespace(lab: str) -> dict:
    """The names the lab's setup cells (every cell before its first answer) define, run once per lab."""
    parsed = parse_lab(lab, ROOT / "solutions" / lab / f"{lab}.ipynb")
    first_answer = min(i for i, _ in parsed.student_cells())
    namespace: dict = {"__name__": "__main__"}
    with contextlib.redirect_stdout(io.StringIO()):
        for cell, kind in zip(parsed.cells[:first_answer], parsed.kinds):
            if cell["cell_type"] == "code":
                exec(compile(cell_source(cell), f"<{lab} setup>", "exec"), namespace)
    return namespace


def verdict_of(lab: str, answer: str) -> str:
    """Run `answer`, then the new question's whole test cell (visible and hidden checks), as the grader does.

    The grader runs the same test cell on the same inputs; the only difference is that it reaches the answer's
    function through a proxy in a sandboxed process (test_the_grader_agrees_with_the_in_process_verdicts).
    """
    _, test_id, _, _ = NEW_QUESTIONS[lab]
    parsed = parse_lab(lab, ROOT / "solutions" / lab / f"{lab}.ipynb")
    test = next(c for c in parsed.cells if nbgrader_meta(c).get("grade_id") == test_id)
    namespace = dict(setup_namespace(lab))
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            exec(compile(answer, "<answer>", "exec"), namespace)
            exec(compile(cell_source(test), f"<{test_id}>", "exec"), namespace)
    except Exception as error:  # noqa: BLE001 - any exception fails the question, as in the grader
        return f"failed: {type(error).__name__}: {str(error)[:200]}"
    return "passed"


CASES = [(lab, name) for lab, (_, _, _, bodies) in sorted(NEW_QUESTIONS.items()) for name in bodies]


@pytest.mark.parametrize("lab, name", CASES)
def test_the_correct_answer_passes_and_every_wrong_one_fails(lab, name):
    _, _, head, bodies = NEW_QUESTIONS[lab]
    verdict = verdict_of(lab, head + bodies[name])
    if name == "correct":
        assert verdict == "passed", verdict
    else:
        assert verdict.startswith("failed"), f"{lab}: the wrong answer {name!r} passed the tests"


@pytest.mark.parametrize("lab", sorted(NEW_QUESTIONS))
def test_each_new_question_has_five_wrong_answers(lab):
    assert len(NEW_QUESTIONS[lab][3]) - 1 >= 5


#: Graded by the real grader (one run): the correct answer, one wrong answer the visible checks catch, two that
#: use autograd (the grader runs the answer in another process, so the checks' torch.no_grad() must reach it there)
#: and one only the hidden checks catch; "library-lookup" also answers Question 2 with the course library's version.
GRADED = ("lab2", ["correct", "sign-error", "autograd-backward", "func-vjp-through-float64", "transposed-batch"])
LIBRARY_LOOKUP = """def one_hot_lookup(ids, weight):
    from utils.one_hot import one_hot_lookup as library
    return library(ids, weight)"""


def test_the_grader_agrees_with_the_in_process_verdicts(tmp_path):
    lab, names = GRADED
    answer_id, test_id, head, bodies = NEW_QUESTIONS[lab]
    released = json.loads((ROOT / "labs" / lab / f"{lab}.ipynb").read_text(encoding="utf-8"))
    subs, out = tmp_path / "subs", tmp_path / "out"
    subs.mkdir()
    for name in names:
        (subs / f"{name}.ipynb").write_text(json.dumps(with_answer(released, answer_id, head + bodies[name])))
    delegating = with_answer(with_answer(released, answer_id, head + bodies["correct"]), "q2_one_hot_lookup", LIBRARY_LOOKUP)
    (subs / "library-lookup.ipynb").write_text(json.dumps(delegating))
    assert main(["grade", "--lab", lab, "--out", str(out), "--jobs", "2", "--timeout", "120", "--quiet", str(subs)]) == 0
    grades = read_csv(out / "grades.csv")
    rows = {r["submission"]: r for r in grades if r["question"] == test_id}
    assert rows["correct"]["status"] == "passed" and float(rows["correct"]["score"]) == float(rows["correct"]["max_score"])
    for name in names:
        in_process = verdict_of(lab, head + bodies[name])
        assert (rows[name]["status"] == "passed") == (in_process == "passed"), (name, rows[name], in_process)
    library = next(r for r in grades if r["submission"] == "library-lookup" and r["question"] == "q2_tests")
    assert float(library["score"]) == 0 and "utils.one_hot" in library["message"], library
