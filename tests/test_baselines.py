"""The TF-IDF baseline: it learns the cue words, picks C on dev, and ignores words seen in one training text only."""

import numpy as np
import pytest

from utils.baselines import tfidf_baseline


def _texts(n: int, seed: int, flip: bool = False) -> tuple[list[str], list[int]]:
    """Filler words plus one cue: 'superb' for label 1, 'dreadful' for 0 (swapped with `flip`)."""
    rng = np.random.default_rng(seed)
    fillers = ["plot", "actor", "scene", "film", "story", "music", "camera", "script"]
    labels = rng.integers(0, 2, n).tolist()
    cue = {1: "superb", 0: "dreadful"} if not flip else {1: "dreadful", 0: "superb"}
    return [" ".join([*rng.choice(fillers, 4), cue[y]]) for y in labels], labels


def test_learns_the_cue_words_and_scores_new_text() -> None:
    train, dev, test = _texts(200, 0), _texts(100, 1), _texts(100, 2)
    baseline = tfidf_baseline(*train, *dev)
    assert baseline.score(*test) == 1.0
    assert baseline.score(*_texts(100, 3, flip=True)) == 0.0  # it really reads the cues
    assert baseline.correct(*test) == [True] * len(test[1])
    assert not any(baseline.correct(*_texts(100, 3, flip=True)))


def test_picks_the_best_c_on_dev_and_reports_every_c() -> None:
    baseline = tfidf_baseline(*_texts(200, 0), *_texts(100, 1), grid=(0.001, 10.0))
    assert set(baseline.dev_accuracy) == {0.001, 10.0}
    assert baseline.C == max(
        baseline.dev_accuracy, key=lambda C: (baseline.dev_accuracy[C], -C)
    )
    assert baseline.classifier.C == baseline.C


def test_words_of_a_single_training_text_are_no_features() -> None:
    texts, labels = _texts(50, 0)
    texts[0] += " zorblax"
    assert (
        "zorblax"
        not in tfidf_baseline(texts, labels, *_texts(20, 1)).vectorizer.vocabulary_
    )
    assert (
        "zorblax"
        in tfidf_baseline(
            texts, labels, *_texts(20, 1), min_df=1
        ).vectorizer.vocabulary_
    )


def test_an_empty_grid_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="at least one"):
        tfidf_baseline(*_texts(20, 0), *_texts(20, 1), grid=())
