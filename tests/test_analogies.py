"""Analogies: the question file, 3CosAdd / 3CosMul against gensim and a brute-force
reference."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from utils.analogies import (
    analogy_accuracy,
    analogy_scores,
    complete_analogy,
    load_google_analogies,
    solve_analogies,
)
from utils.data import WordVectors

RNG = np.random.default_rng(0)
WORDS = [f"w{i}" for i in range(50)]
TABLE = WordVectors(
    WORDS,
    (RNG.standard_normal((50, 6)) * RNG.uniform(0.1, 5, (50, 1))).astype(np.float32),
)


def _brute_force(a: str, b: str, c: str, table: WordVectors, method: str) -> str:
    unit = table.vectors / np.linalg.norm(table.vectors, axis=1, keepdims=True)
    cos = {w: unit @ unit[table.index[w]] for w in (a, b, c)}
    if method == "add":
        scores = cos[b] - cos[a] + cos[c]
    else:
        shift = {w: (v + 1) / 2 for w, v in cos.items()}
        scores = shift[b] * shift[c] / (shift[a] + 1e-3)
    for w in (a, b, c):
        scores[table.index[w]] = -np.inf
    return table.words[int(np.argmax(scores))]


def test_google_questions_have_the_published_sizes() -> None:
    questions = load_google_analogies()
    assert len(questions) == 19_544
    assert questions["section"].value_counts().to_dict() == {
        "syntactic": 10_675,
        "semantic": 8_869,
    }
    assert questions["category"].nunique() == 14
    assert (
        (
            questions[["a", "b", "c", "d"]]
            == questions[["a", "b", "c", "d"]].apply(lambda s: s.str.lower())
        )
        .all()
        .all()
    )


@pytest.mark.parametrize("method", ["add", "mul"])
def test_solve_matches_a_brute_force_reference_and_excludes_question_words(
    method: str,
) -> None:
    picks = RNG.choice(WORDS, (40, 4))
    questions = pd.DataFrame(picks, columns=list("abcd")).assign(
        category=np.repeat(["x", "y"], 20)
    )
    questions = questions[questions[list("abc")].nunique(axis=1) == 3]
    result = solve_analogies(TABLE, questions, method, batch_size=7)
    expected = [
        _brute_force(a, b, c, TABLE, method)
        for a, b, c in questions[list("abc")].itertuples(index=False)
    ]
    assert result["predicted"].tolist() == expected
    assert not any(
        p in row
        for p, row in zip(
            result["predicted"], questions[list("abc")].to_numpy().tolist()
        )
    )
    assert (result["correct"] == (result["predicted"] == result["d"])).all()


def test_uncovered_questions_are_not_answered_and_coverage_is_reported() -> None:
    questions = pd.DataFrame(
        {"category": ["x", "x", "y"], "section": ["semantic", "semantic", "syntactic"],
         "a": ["w0", "w0", "w3"], "b": ["w1", "nope", "w4"],
         "c": ["w2", "w2", "w5"], "d": ["w9", "w9", "w6"]}
    )  # fmt: skip
    result = solve_analogies(TABLE, questions)
    assert result["covered"].tolist() == [True, False, True]
    assert pd.isna(result["predicted"][1]) and not result["correct"][1]
    summary = analogy_accuracy(result)
    assert summary.loc["all", "questions"] == 3 and summary.loc["all", "covered"] == 2
    assert summary.loc["semantic", "coverage"] == 0.5
    assert summary.loc["all", "accuracy"] == result["correct"].sum() / 2


def test_without_exclusion_the_answer_can_be_b_itself() -> None:
    table = WordVectors(
        ["man", "woman", "king", "queen"],
        np.array([[1, 0, 0], [0.9, 0.3, 0], [1, 0, 1], [0, 1, 1]], np.float32),
    )
    assert (
        complete_analogy("man", "king", "woman", table, k=1)["word"].iloc[0] == "queen"
    )
    assert (
        complete_analogy("man", "king", "woman", table, k=1, exclude=False)[
            "word"
        ].iloc[0]
        == "king"
    )
    with pytest.raises(KeyError, match="nope"):
        complete_analogy("man", "nope", "woman", table)


def test_scores_of_the_baseline_and_unknown_methods() -> None:
    a, b, c = (RNG.uniform(-1, 1, 5) for _ in range(3))
    import torch

    ta, tb, tc = map(torch.tensor, (a, b, c))
    assert np.allclose(analogy_scores(ta, tb, tc, "add").numpy(), b - a + c)
    assert np.allclose(analogy_scores(ta, tb, tc, "only-b").numpy(), b)
    with pytest.raises(ValueError, match="method"):
        analogy_scores(ta, tb, tc, "sub")


def test_agrees_with_gensim_evaluate_word_analogies() -> None:
    from gensim.models import KeyedVectors

    from utils.data import load_glove

    glove = load_glove(max_words=3_000)
    questions = load_google_analogies()
    ours = analogy_accuracy(solve_analogies(glove, questions)).loc["all"]
    kv = KeyedVectors(glove.dim)
    kv.add_vectors(glove.words, glove.vectors)
    path = __import__("utils.data", fromlist=["package_file"]).package_file(
        "gensim", "test/test_data/questions-words.txt"
    )
    score, sections = kv.evaluate_word_analogies(
        str(path), restrict_vocab=len(glove), case_insensitive=True
    )
    total = sections[-1]
    assert len(total["correct"]) + len(total["incorrect"]) == ours["covered"]
    assert score == pytest.approx(ours["accuracy"], abs=1e-9)
