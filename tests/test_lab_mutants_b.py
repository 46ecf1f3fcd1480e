"""Plausible wrong answers to lab 5's new questions, each graded by the real grader: its hidden tests reject them.

Every submission is the solution with one wrong answer put into each of Questions 5 (the negative-sampling gradients
by hand), 6 (finite differences) and 7 (paired differences over seeds); the three questions do not depend on each
other, so one run grades three mutants. Question 4 is left unanswered to keep the runs short.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from utils.grading.cli import main
from utils.grading.lms import read_csv

ROOT = Path(__file__).resolve().parents[1]

Q5 = '''def sgns_gradients(centre, context, negatives):
    positive = torch.sigmoid(centre @ context)
    negative = torch.sigmoid(negatives @ centre)
    grad_centre = (positive - 1) * context + negative @ negatives
    grad_context = (positive - 1) * centre
    grad_negatives = negative[:, None] * centre[None, :]
    return grad_centre, grad_context, grad_negatives
'''
Q5_WRONG = {
    "sign error": ("grad_centre = (positive - 1) * context", "grad_centre = (1 - positive) * context"),
    "transposed (d, K) gradient of the negatives": ("negative[:, None] * centre[None, :]", "centre[:, None] * negative[None, :]"),
    "off by one: the last negative left out": ("negative @ negatives", "negative[:-1] @ negatives[:-1]"),
    "the negatives' pull on the centre forgotten": (" + negative @ negatives", ""),
    "sigma(-c.n) instead of sigma(c.n)": ("torch.sigmoid(negatives @ centre)", "torch.sigmoid(-(negatives @ centre))"),
    "context gradient along the context": ("grad_context = (positive - 1) * centre", "grad_context = (positive - 1) * context"),
}
Q6 = '''def numerical_gradients(centre, context, negatives, eps=1e-5):
    def loss(c, o, n):
        return negative_sampling_loss(c[None], o[None], n[None]).item()

    gradients = []
    for which in range(3):
        inputs = [centre.detach().clone(), context.detach().clone(), negatives.detach().clone()]
        values, gradient = inputs[which].view(-1), torch.zeros(inputs[which].numel(), dtype=torch.float64)
        for i in range(values.numel()):
            original = values[i].item()
            base = loss(*inputs)
            values[i] = original + eps
            up = loss(*inputs)
            values[i] = original - eps
            down = loss(*inputs)
            values[i] = original
            gradient[i] = (up - down) / (2 * eps)
        gradients.append(gradient.view(inputs[which].shape))
    return tuple(gradients)
'''
Q6_WRONG = {
    "one-sided (forward) difference": ("gradient[i] = (up - down) / (2 * eps)", "gradient[i] = (up - base) / eps"),
    "divided by eps instead of 2 eps": ("(up - down) / (2 * eps)", "(up - down) / eps"),
    "sign error": ("(up - down) / (2 * eps)", "(down - up) / (2 * eps)"),
    "off by one: the last coordinate skipped": ("range(values.numel())", "range(values.numel() - 1)"),
    "the nudged coordinate not put back": ("            values[i] = original\n            gradient", "            gradient"),
    "transposed (d, K) gradient of the negatives": ("view(inputs[which].shape)", "view(inputs[which].shape[::-1])"),
}
Q7 = '''def paired_differences(sizes, seeds, accuracy=dev_accuracy):
    rows = {}
    for size in sizes:
        pretrained = np.array([accuracy(size, seed, "pretrained") for seed in seeds])
        random = np.array([accuracy(size, seed, "random") for seed in seeds])
        differences = pretrained - random
        rows[size] = {"pretrained": pretrained.mean(), "random": random.mean(), "difference": differences.mean(),
                      "se": differences.std(ddof=1) / math.sqrt(len(differences))}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("size")
'''
Q7_WRONG = {
    "sign error: random minus pre-trained": ("differences = pretrained - random", "differences = random - pretrained"),
    "population std (ddof=0)": ("differences.std(ddof=1)", "differences.std(ddof=0)"),
    "the spread of the runs instead of the standard error": ("/ math.sqrt(len(differences))", ""),
    "unpaired standard error": ("differences.std(ddof=1) / math.sqrt(len(differences))",
                                "math.sqrt((pretrained.var(ddof=1) + random.var(ddof=1)) / len(seeds))"),
    "off by one: the first seed dropped": ("for size in sizes:\n", "for size in sizes:\n        seeds = seeds[1:]\n"),
    "divided by n instead of its square root": ("math.sqrt(len(differences))", "len(differences)"),
    "sizes sorted instead of in the order given": ("for size in sizes:", "for size in sorted(sizes):"),
}


def _mutate(source: str, change: tuple[str, str]) -> str:
    old, new = change
    assert source.count(old) == 1, f"the mutation {old!r} does not fit the reference answer once"
    return source.replace(old, new)


def _submission(solution: dict, answers: dict[str, str]) -> dict:
    notebook = json.loads(json.dumps(solution))
    for cell in notebook["cells"]:
        grade_id = cell["metadata"].get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell["source"] = answers[grade_id]
    return notebook


def test_lab5_new_questions_reject_plausible_wrong_answers(tmp_path):
    """Each wrong answer loses its question (failed), while the questions before it still pass."""
    solution = json.loads((ROOT / "solutions" / "lab5" / "lab5.ipynb").read_text())
    wrong5, wrong6, wrong7 = list(Q5_WRONG.items()), list(Q6_WRONG.items()), list(Q7_WRONG.items())
    expected: dict[str, dict[str, str]] = {}
    subs = tmp_path / "subs"
    subs.mkdir()
    for i in range(max(len(wrong5), len(wrong6), len(wrong7))):
        answers = {"q4_transfer_experiment": "def transfer_experiment(*args, **kwargs):\n    raise NotImplementedError"}
        expected[f"mutant{i}"] = {}
        for question, (grade_id, reference, wrong) in {
                "q5_tests": ("q5_sgns_gradients", Q5, wrong5), "q6_tests": ("q6_numerical_gradients", Q6, wrong6),
                "q7_tests": ("q7_paired_differences", Q7, wrong7)}.items():
            if i < len(wrong):
                name, change = wrong[i]
                answers[grade_id] = _mutate(reference, change)
                expected[f"mutant{i}"][question] = name
            else:
                answers[grade_id] = reference
        (subs / f"mutant{i}.ipynb").write_text(json.dumps(_submission(solution, answers)))
    out = tmp_path / "out"
    main(["grade", "--lab", "lab5", "--out", str(out), "--jobs", "2", "--timeout", "300", "--quiet", str(subs)])
    status = {(row["submission"], row["question"]): row for row in read_csv(out / "grades.csv")}
    for submission, wrong in expected.items():
        for question in ("q1_tests", "q2_tests", "q3_tests"):
            assert status[submission, question]["status"] == "passed", (submission, status[submission, question])
        for question in ("q5_tests", "q6_tests", "q7_tests"):
            row = status[submission, question]
            if question in wrong:
                assert row["status"] != "passed" and float(row["score"]) == 0.0, f"{wrong[question]!r} was accepted"
            else:
                assert row["status"] == "passed", (submission, row)  # the reference answer, as a control


LAB4_Q5 = '''def sgd_step_by_hand(embedding, weight, bias, texts, labels, lr):
    means = torch.stack([embedding[text].mean(dim=0) for text in texts])
    probs = torch.softmax(means @ weight.T + bias, dim=1)
    errors = probs - torch.nn.functional.one_hot(torch.tensor(labels), weight.shape[0]).to(probs.dtype)
    grad_means = errors @ weight / len(texts)
    grad = torch.zeros_like(embedding)
    for text, grad_mean in zip(texts, grad_means):
        grad.index_add_(0, torch.tensor(text), grad_mean.expand(len(text), -1) / len(text))
    return embedding - lr * grad
'''
LAB4_Q5_WRONG = {
    "sign error: a step up the gradient": ("return embedding - lr * grad", "return embedding + lr * grad"),
    "transposed weight matrix": ("errors @ weight / len(texts)", "errors @ weight.T / len(texts)"),
    "off by one: the mean over one token more": ("/ len(text))", "/ (len(text) + 1))"),
    "summed loss instead of the batch mean": ("errors @ weight / len(texts)", "errors @ weight"),
    "softmax over the batch instead of the classes": ("dim=1)", "dim=0)"),
    "a repeated token counted once": ("torch.tensor(text), grad_mean.expand(len(text), -1)",
                                      "torch.tensor(sorted(set(text))), grad_mean.expand(len(set(text)), -1)"),
    "scores instead of probabilities": ("torch.softmax(means @ weight.T + bias, dim=1)", "means @ weight.T + bias"),
}


def test_lab4_step_by_hand_rejects_plausible_wrong_answers(tmp_path):
    """Each wrong step by hand loses Question 5 (failed), while Questions 1-4 of the same submission still pass."""
    solution = json.loads((ROOT / "solutions" / "lab4" / "lab4.ipynb").read_text())
    subs = tmp_path / "subs"
    subs.mkdir()
    names = {}
    for i, (name, change) in enumerate(LAB4_Q5_WRONG.items()):
        names[f"mutant{i}"] = name
        notebook = _submission(solution, {"q5_sgd_step": _mutate(LAB4_Q5, change)})
        (subs / f"mutant{i}.ipynb").write_text(json.dumps(notebook))
    (subs / "reference.ipynb").write_text(json.dumps(_submission(solution, {"q5_sgd_step": LAB4_Q5})))
    out = tmp_path / "out"
    main(["grade", "--lab", "lab4", "--out", str(out), "--jobs", "2", "--timeout", "300", "--quiet", str(subs)])
    status = {(row["submission"], row["question"]): row for row in read_csv(out / "grades.csv")}
    assert status["reference", "q5_tests"]["status"] == "passed", status["reference", "q5_tests"]  # the control
    for submission, name in names.items():
        for question in ("q1_tests", "q2_tests", "q3_tests", "q4_tests"):
            assert status[submission, question]["status"] == "passed", (submission, status[submission, question])
        row = status[submission, "q5_tests"]
        assert row["status"] != "passed" and float(row["score"]) == 0.0, f"{name!r} was accepted"


LAB6_PPMI = '''def ppmi(counts, alpha=0.75):
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    p_w = counts.sum(axis=1) / total
    smoothed = counts.sum(axis=0) ** alpha
    p_c = smoothed / smoothed.sum()
    seen = counts > 0
    pmi = np.zeros_like(counts)
    expected = np.outer(p_w, p_c)
    pmi[seen] = np.log(counts[seen] / total / expected[seen])
    return np.maximum(pmi, 0.0)
'''
LAB6_PPMI_WRONG = {
    "PMI without the positive clip": ("return np.maximum(pmi, 0.0)", "return pmi"),
    "log of the counts, not normalised": ("np.log(counts[seen] / total / expected[seen])", "np.log(counts[seen])"),
    "no context smoothing": ("counts.sum(axis=0) ** alpha", "counts.sum(axis=0)"),
    "the word distribution smoothed instead (transposed)": ("p_w = counts.sum(axis=1) / total\n    smoothed = counts.sum(axis=0) ** alpha",
                                                            "p_w = counts.sum(axis=0) / total\n    smoothed = counts.sum(axis=1) ** alpha"),
    "off by one: log(1 + x)": ("np.log(", "np.log1p("),
    "smoothed context counts divided by the unsmoothed total": ("p_c = smoothed / smoothed.sum()", "p_c = smoothed / total"),
}
LAB6_SVD = '''def svd_vectors(matrix, k):
    u, s, _ = svds(np.asarray(matrix, dtype=np.float64), k=k)
    order = np.argsort(s)[::-1]
    return u[:, order] * np.sqrt(s[order])
'''
LAB6_SVD_WRONG = {
    "U instead of U S^(1/2)": ("return u[:, order] * np.sqrt(s[order])", "return u[:, order]"),
    "U S instead of U S^(1/2)": ("np.sqrt(s[order])", "s[order]"),
    "transposed: the right singular vectors": ("u, s, _ = svds(np.asarray(matrix, dtype=np.float64), k=k)",
                                               "_, s, vt = svds(np.asarray(matrix, dtype=np.float64), k=k)\n    u = vt.T"),
    "off by one: k + 1 dimensions": ("k=k)", "k=k + 1)"),
    "ascending order, as svds returns it": ("np.argsort(s)[::-1]", "np.argsort(s)"),
    "the k smallest singular values of a full SVD": (
        "u, s, _ = svds(np.asarray(matrix, dtype=np.float64), k=k)",
        "u, s, _ = np.linalg.svd(np.asarray(matrix, dtype=np.float64), full_matrices=False)\n    u, s = u[:, -k:], s[-k:]"),
}


def test_lab6_ppmi_and_svd_reject_plausible_wrong_answers(tmp_path):
    """Each submission holds one wrong PPMI (Question 2) and one wrong SVD (Question 6): both lose their points."""
    solution = json.loads((ROOT / "solutions" / "lab6" / "lab6.ipynb").read_text())
    subs = tmp_path / "subs"
    subs.mkdir()
    expected = {}
    for i, ((ppmi_name, ppmi_change), (svd_name, svd_change)) in enumerate(
            zip(LAB6_PPMI_WRONG.items(), LAB6_SVD_WRONG.items(), strict=True)):
        expected[f"mutant{i}"] = {"q2_tests": ppmi_name, "q6_tests": svd_name}
        answers = {"q2_ppmi": _mutate(LAB6_PPMI, ppmi_change), "q6_svd_vectors": _mutate(LAB6_SVD, svd_change)}
        (subs / f"mutant{i}.ipynb").write_text(json.dumps(_submission(solution, answers)))
    reference = _submission(solution, {"q2_ppmi": LAB6_PPMI, "q6_svd_vectors": LAB6_SVD})
    (subs / "reference.ipynb").write_text(json.dumps(reference))
    out = tmp_path / "out"
    main(["grade", "--lab", "lab6", "--out", str(out), "--jobs", "2", "--timeout", "300", "--quiet", str(subs)])
    status = {(row["submission"], row["question"]): row for row in read_csv(out / "grades.csv")}
    for question in ("q1_tests", "q2_tests", "q3_tests", "q6_tests"):
        assert status["reference", question]["status"] == "passed", status["reference", question]  # the control
    for submission, wrong in expected.items():
        for question in ("q1_tests", "q3_tests", "q4_tests", "q5_tests"):
            assert status[submission, question]["status"] == "passed", (submission, status[submission, question])
        for question, name in wrong.items():
            row = status[submission, question]
            assert row["status"] != "passed" and float(row["score"]) == 0.0, f"{name!r} was accepted"
