"""Social bias in word vectors: the Word Embedding Association Test and a gender
direction.

WEAT (Caliskan et al., 2017) asks whether two sets of target words (X, Y) differ in how
much closer they are to one set of attribute words (A) than to another (B). It reports
an effect size (in pooled standard deviations, like Cohen's d) and a permutation
p-value. The gender direction of Bolukbasi et al. (2016) is the main axis of the
differences of definitional pairs (she - he, ...); removing it ("debiasing by
projection") hides the bias from that axis but not from the neighbourhoods (Gonen &
Goldberg, 2019).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from utils.similarity import Table, as_word_vectors

#: Word lists of three tests of Caliskan et al. (2017): targets X, Y, attributes A, B.
WEAT_TESTS: dict[str, dict[str, list[str]]] = {
    "flowers vs insects / pleasant vs unpleasant": {
        "X": (
            "aster clover hyacinth marigold poppy azalea crocus iris orchid rose "
            "bluebell daffodil lilac pansy tulip buttercup daisy lily peony violet "
            "carnation gladiola magnolia petunia zinnia"
        ).split(),
        "Y": (
            "ant caterpillar flea locust spider bedbug centipede fly maggot "
            "tarantula bee cockroach gnat mosquito termite beetle cricket hornet "
            "moth wasp blackfly dragonfly horsefly roach weevil"
        ).split(),
        "A": (
            "caress freedom health love peace cheer friend heaven loyal pleasure "
            "diamond gentle honest lucky rainbow diploma gift honor miracle sunrise "
            "family happy laughter paradise vacation"
        ).split(),
        "B": (
            "abuse crash filth murder sickness accident death grief poison stink "
            "assault disaster hatred pollute tragedy divorce jail poverty ugly "
            "cancer kill rotten vomit agony prison"
        ).split(),
    },
    "male vs female names / career vs family": {
        "X": "john paul mike kevin steve greg jeff bill".split(),
        "Y": "amy joan lisa sarah diana kate ann donna".split(),
        "A": (
            "executive management professional corporation salary office business "
            "career"
        ).split(),
        "B": "home parents children family cousins marriage wedding relatives".split(),
    },
    "math vs arts / male vs female terms": {
        "X": (
            "math algebra geometry calculus equations computation numbers addition"
        ).split(),
        "Y": "poetry art dance literature novel symphony drama sculpture".split(),
        "A": "male man boy brother he him his son".split(),
        "B": "female woman girl sister she her hers daughter".split(),
    },
}

#: Definitional (female, male) pairs that span the gender direction (Bolukbasi et al.).
GENDER_PAIRS = [
    ("she", "he"),
    ("her", "his"),
    ("woman", "man"),
    ("mary", "john"),
    ("herself", "himself"),
    ("daughter", "son"),
    ("mother", "father"),
    ("gal", "guy"),
    ("girl", "boy"),
    ("female", "male"),
]


def _unit_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def associations(words: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """s(w, A, B) for every row w: its mean cosine with the rows of A minus that with
    the rows of B."""
    w, a, b = _unit_rows(words), _unit_rows(a), _unit_rows(b)
    return (w @ a.T).mean(axis=1) - (w @ b.T).mean(axis=1)


def weat_effect_size(
    x: np.ndarray, y: np.ndarray, a: np.ndarray, b: np.ndarray
) -> float:
    """Caliskan et al.'s effect size: the difference of the mean associations of X and
    Y, divided by the sample standard deviation (ddof=1) of the associations of all
    target words."""
    s_x, s_y = associations(x, a, b), associations(y, a, b)
    return float((s_x.mean() - s_y.mean()) / np.concatenate([s_x, s_y]).std(ddof=1))


@dataclass(frozen=True)
class WeatResult:
    """A WEAT outcome: effect size, one-sided permutation p-value, and the words
    actually used."""

    effect_size: float
    p_value: float
    permutations: int
    used: dict[str, int]
    missing: list[str]


def weat(
    table: Table,
    x: Sequence[str],
    y: Sequence[str],
    a: Sequence[str],
    b: Sequence[str],
    permutations: int = 10_000,
    seed: int = 0,
) -> WeatResult:
    """Run WEAT on the words the table holds (the others are listed as missing).

    The p-value is the share of random equal-size re-partitions of X and Y whose test
    statistic, sum s(x) - sum s(y), is at least the observed one (one-sided; 1 is added
    to both counts).
    """
    vectors = as_word_vectors(table)
    sets = {"X": x, "Y": y, "A": a, "B": b}
    missing = [w for words in sets.values() for w in words if w not in vectors]
    rows = {
        k: np.stack([vectors[w] for w in v if w in vectors]) for k, v in sets.items()
    }
    scores = associations(np.concatenate([rows["X"], rows["Y"]]), rows["A"], rows["B"])
    n_x = len(rows["X"])
    observed = scores[:n_x].sum() - scores[n_x:].sum()
    rng = np.random.default_rng(seed)
    orders = np.argsort(rng.random((permutations, len(scores))), axis=1)
    shuffled = scores[orders]
    statistics = shuffled[:, :n_x].sum(axis=1) - shuffled[:, n_x:].sum(axis=1)
    p_value = (1 + np.sum(statistics >= observed - 1e-12)) / (1 + permutations)
    return WeatResult(
        effect_size=weat_effect_size(rows["X"], rows["Y"], rows["A"], rows["B"]),
        p_value=float(p_value),
        permutations=permutations,
        used={k: len(v) for k, v in rows.items()},
        missing=missing,
    )


def gender_direction(
    table: Table, pairs: Sequence[tuple[str, str]] = GENDER_PAIRS
) -> np.ndarray:
    """A unit vector along which the (female - male) differences of `pairs` vary most.

    The first principal component of the pairs' centred vectors (Bolukbasi et al.,
    2016), signed so that 'she' lies on its positive side of 'he'.
    """
    vectors = as_word_vectors(table)
    centred = []
    for female, male in pairs:
        f, m = _unit_rows(vectors[female]), _unit_rows(vectors[male])
        centre = (f + m) / 2
        centred += [f - centre, m - centre]
    _, _, vh = np.linalg.svd(np.stack(centred), full_matrices=False)
    direction = vh[0]
    she_minus_he = _unit_rows(vectors[pairs[0][0]]) - _unit_rows(vectors[pairs[0][1]])
    return direction if direction @ she_minus_he > 0 else -direction


def project(words: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """The cosine of each row with `direction`: its signed position on that axis."""
    return _unit_rows(words) @ _unit_rows(direction)


def neutralize(words: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """Unit rows with their component along `direction` removed, rescaled to unit
    length.

    The "neutralise" step of hard debiasing: afterwards every row is orthogonal to
    `direction`.
    """
    w, d = _unit_rows(words), _unit_rows(direction)
    return _unit_rows(w - np.outer(w @ d, d))


def recoverable_labels(
    words: np.ndarray, labels: np.ndarray, seed: int = 0
) -> dict[str, float]:
    """How well the labels of the rows can be told apart from the rows alone (Gonen &
    Goldberg, 2019).

    'cluster': agreement of k-means with 2 clusters and the labels (0.5 = none, 1 =
    perfect); 'classifier': held-out accuracy of a 10-nearest-neighbour classifier
    (cosine), half for training. Near-perfect values after debiasing mean the bias moved
    from one axis into the neighbourhoods.
    """
    from sklearn.cluster import KMeans
    from sklearn.model_selection import train_test_split
    from sklearn.neighbors import KNeighborsClassifier

    rows, labels = _unit_rows(words), np.asarray(labels)
    clusters = KMeans(n_clusters=2, n_init=10, random_state=seed).fit_predict(rows)
    agreement = float(np.mean(clusters == labels))
    split = train_test_split(
        rows, labels, test_size=0.5, random_state=seed, stratify=labels
    )
    train_x, test_x, train_y, test_y = split
    knn = KNeighborsClassifier(n_neighbors=10, metric="cosine").fit(train_x, train_y)
    return {
        "cluster": max(agreement, 1 - agreement),
        "classifier": float(knn.score(test_x, test_y)),
    }
