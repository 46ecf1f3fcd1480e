"""The course's one strong baseline without embeddings: TF-IDF features and logistic regression, C tuned on dev.

Chapters 3 and 5 compare the bag-of-words classifier with it; both call `tfidf_baseline`, so the two chapters
report the same model under the same settings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from utils.text import tokenize

#: Regularisation strengths tried on the dev set (larger C = weaker regularisation).
C_GRID = (1.0, 3.0, 10.0, 30.0)


@dataclass(frozen=True)
class TfidfBaseline:
    """A fitted TF-IDF + logistic regression model, the C it chose, and the dev accuracy of every C tried."""

    vectorizer: TfidfVectorizer
    classifier: LogisticRegression
    C: float
    dev_accuracy: dict[float, float]

    @property
    def n_features(self) -> int:
        return len(self.vectorizer.vocabulary_)

    def score(self, texts: Sequence[str], labels: Sequence[int]) -> float:
        """Accuracy on labelled texts."""
        return float(self.classifier.score(self.vectorizer.transform(texts), labels))

    def correct(self, texts: Sequence[str], labels: Sequence[int]) -> list[bool]:
        """Whether each text is classified right: what a paired comparison (McNemar's test) needs."""
        predicted = self.classifier.predict(self.vectorizer.transform(texts))
        return [bool(p == y) for p, y in zip(predicted, labels)]


def tfidf_baseline(
    train_texts: Sequence[str],
    train_labels: Sequence[int],
    dev_texts: Sequence[str],
    dev_labels: Sequence[int],
    grid: Sequence[float] = C_GRID,
    min_df: int = 2,
) -> TfidfBaseline:
    """Fit TF-IDF (our tokenizer, sublinear term frequency, words of `min_df`+ training texts) and logistic
    regression for every C in `grid`; keep the C with the best dev accuracy (the smallest C on ties)."""
    if not grid:
        raise ValueError("grid must list at least one value of C")
    vectorizer = TfidfVectorizer(
        tokenizer=tokenize,
        lowercase=False,
        token_pattern=None,
        min_df=min_df,
        sublinear_tf=True,
    )
    features = vectorizer.fit_transform(train_texts)
    dev_features = vectorizer.transform(dev_texts)
    fitted = {
        C: LogisticRegression(C=C, max_iter=1000).fit(features, train_labels)
        for C in grid
    }
    dev_accuracy = {
        C: float(model.score(dev_features, dev_labels)) for C, model in fitted.items()
    }
    best = max(grid, key=lambda C: (dev_accuracy[C], -C))
    return TfidfBaseline(vectorizer, fitted[best], best, dev_accuracy)
