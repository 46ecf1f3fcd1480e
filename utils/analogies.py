"""Word analogies ("man is to king as woman is to ?") solved with vector arithmetic, and
scored.

The questions are the Google analogy set of Mikolov et al. (2013), shipped in gensim's
test data. A question a : b :: c : d is answered by the word x (not a, b or c) that
maximises 3CosAdd, cos(x, b) - cos(x, a) + cos(x, c), or 3CosMul, cos(x, b) cos(x, c) /
(cos(x, a) + eps) with the cosines shifted to [0, 1] (Levy & Goldberg, 2014). With unit
vectors, 3CosAdd picks the same word as the cosine with b - a + c: the famous
arithmetic.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from utils.data import package_file
from utils.similarity import Table, _unit, as_word_vectors

#: 3CosAdd, 3CosMul, and "only-b": the nearest neighbour of b alone (Linzen, 2016).
METHODS = ("add", "mul", "only-b")

#: The smoothing constant of 3CosMul, as in Levy & Goldberg (2014).
MUL_EPSILON = 1e-3


def load_google_analogies() -> pd.DataFrame:
    """The Google analogy questions: category, section (semantic / syntactic), a, b, c,
    d.

    19,544 lower-cased questions in 14 categories; the 9 whose names start with 'gram'
    are syntactic.
    """
    path = package_file("gensim", "test/test_data/questions-words.txt")
    rows, category = [], None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith(":"):
            category = line[1:].strip()
        elif line.strip():
            rows.append((category, *line.lower().split()))
    frame = pd.DataFrame(rows, columns=["category", "a", "b", "c", "d"])
    syntactic = frame["category"].str.startswith("gram")
    frame.insert(1, "section", np.where(syntactic, "syntactic", "semantic"))
    return frame


def analogy_scores(
    cos_a: torch.Tensor, cos_b: torch.Tensor, cos_c: torch.Tensor, method: str = "add"
) -> torch.Tensor:
    """The score of every candidate from its cosines with a, b and c (element-wise, any
    shape)."""
    if method == "add":
        return (cos_b - cos_a).add_(cos_c)  # in place: one array fewer per batch
    if method == "mul":
        # Cosines shifted into [0, 1], so the product and quotient keep their order;
        # in place on fresh arrays: a third of the memory traffic of b * c / (a + eps).
        a, b, c = ((cos + 1).div_(2) for cos in (cos_a, cos_b, cos_c))
        return b.mul_(c).div_(a.add_(MUL_EPSILON))
    if method == "only-b":  # a baseline: how far does b's neighbourhood alone get?
        return cos_b.clone()
    raise ValueError(f"method must be one of {METHODS}, not {method!r}")


def complete_analogy(
    a: str,
    b: str,
    c: str,
    table: Table,
    k: int = 5,
    method: str = "add",
    exclude: bool = True,
) -> pd.DataFrame:
    """The `k` best answers x to 'a is to b as c is to x', best first, with their
    scores.

    With `exclude=False` the question words may answer too: often the best "answer" is
    then b itself.
    """
    vectors = as_word_vectors(table)
    missing = [w for w in (a, b, c) if w not in vectors]
    if missing:
        raise KeyError(
            f"no vector for {missing} in the table of {len(vectors):,} words"
        )
    unit = _unit(vectors.vectors)
    question = [vectors.index[w] for w in (a, b, c)]
    cos = unit @ unit[question].T
    scores = analogy_scores(cos[:, 0], cos[:, 1], cos[:, 2], method)
    if exclude:
        scores[question] = -float("inf")
    top = torch.topk(scores, k)
    words = [vectors.words[i] for i in top.indices.tolist()]
    frame = pd.DataFrame({"word": words, "score": top.values.numpy()})
    frame.index = pd.RangeIndex(1, k + 1, name="rank")
    return frame


def solve_analogies(
    table: Table,
    questions: pd.DataFrame,
    method: str = "add",
    exclude: bool = True,
    batch_size: int = 32,
) -> pd.DataFrame:
    """Answer every question whose four words all have vectors; mark the others as not
    covered.

    Returns `questions` plus the columns covered, predicted (missing if not covered) and
    correct. Every word of the table is a candidate. Per category, the cosines of its
    distinct question words with the whole table are computed once, then combined
    question by question, `batch_size` questions at a time (32 keeps the score arrays
    small enough for the cache: 2-3 times faster than 128 on GloVe's 50,000 words).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, not {method!r}")
    vectors = as_word_vectors(table)
    unit = _unit(vectors.vectors)
    result = questions.reset_index(drop=True)
    known = vectors.index
    result["covered"] = [
        all(w in known for w in row) for row in result[list("abcd")].to_numpy()
    ]
    predicted = np.full(len(result), None, dtype=object)
    for _, part in result[result["covered"]].groupby("category", sort=False):
        ids = np.vectorize(vectors.index.__getitem__)(part[["a", "b", "c"]].to_numpy())
        words, local = np.unique(ids, return_inverse=True)
        local = torch.from_numpy(local.reshape(ids.shape))
        cos = (
            unit[torch.from_numpy(words)] @ unit.T
        )  # (distinct question words, table words)
        answers = []
        for start in range(0, len(ids), batch_size):
            rows = local[start : start + batch_size]
            a, b, c = (cos.index_select(0, rows[:, i]) for i in range(3))
            scores = analogy_scores(a, b, c, method)
            if exclude:
                asked = torch.from_numpy(ids[start : start + batch_size])
                scores.scatter_(1, asked, -float("inf"))
            answers += scores.argmax(dim=1).tolist()
        predicted[part.index.to_numpy()] = [vectors.words[i] for i in answers]
    result["predicted"] = predicted
    result["correct"] = result["covered"] & (result["predicted"] == result["d"])
    return result


def analogy_accuracy(
    results: pd.DataFrame, by: str | Sequence[str] = "section"
) -> pd.DataFrame:
    """Per group and for 'all': questions, covered, coverage, correct, accuracy on the
    covered ones."""

    def summary(part: pd.DataFrame) -> dict[str, float]:
        covered, correct = int(part["covered"].sum()), int(part["correct"].sum())
        return {
            "questions": len(part),
            "covered": covered,
            "coverage": covered / max(len(part), 1),
            "correct": correct,
            "accuracy": correct / covered if covered else float("nan"),
        }

    rows = {name: summary(part) for name, part in results.groupby(by, sort=False)}
    rows["all"] = summary(results)
    return pd.DataFrame.from_dict(rows, orient="index")
