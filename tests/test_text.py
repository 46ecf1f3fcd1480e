"""The tokenizer and the vocabulary: ids, unknown words, padded and offset batches, saving and loading."""

from __future__ import annotations

import random

import pytest
import torch

from utils.text import Vocab, flatten_ids, pad_ids, tokenize, tokenize_words

DOCS = [
    ["the", "movie", "is", "great", "."],
    ["the", "monster", "is", "not", "great", "!"],
    ["a", "great", "monster", "movie", "."],
    ["the", "end", "."],
]


# --- Tokenizer -----------------------------------------------------------------------------------------------


def test_tokenize_lowercases_and_splits_punctuation() -> None:
    assert tokenize("A Great MOVIE!") == ["a", "great", "movie", "!"]
    assert tokenize("Wait... what?!") == ["wait", ".", ".", ".", "what", "?", "!"]
    assert tokenize("co-star, 3.5 stars") == ["co", "-", "star", ",", "3", ".", "5", "stars"]


def test_tokenize_keeps_apostrophes_inside_words() -> None:
    assert tokenize("It's not what you'd expect") == ["it's", "not", "what", "you'd", "expect"]
    assert tokenize("it’s rock'n'roll") == ["it’s", "rock'n'roll"]
    assert tokenize("the critics' choice") == ["the", "critics", "'", "choice"]


def test_tokenize_keeps_letters_of_any_script_together() -> None:
    assert tokenize("Amélie, naïve CAFÉ") == ["amélie", ",", "naïve", "café"]
    assert tokenize("snake_case") == ["snake", "_", "case"]


def test_vocab_coverage_counts_running_tokens() -> None:
    vocab = Vocab(["good", "film"])
    assert vocab.coverage([["good", "film"], ["bad", "film"]]) == 0.75
    assert vocab.coverage([]) == 0.0


def test_tokenize_whitespace_and_empty() -> None:
    assert tokenize("  two\tspaces\n\nand lines ") == ["two", "spaces", "and", "lines"]
    assert tokenize("") == [] and tokenize("   ") == []


def test_tokenize_words_drops_punctuation_only() -> None:
    assert tokenize_words("Don't stop -- it's GREAT!!! 10/10") == ["don't", "stop", "it's", "great", "10", "10"]


# --- Building a vocabulary -----------------------------------------------------------------------------------


def test_build_orders_by_frequency_then_alphabet() -> None:
    vocab = Vocab.build(DOCS)
    assert vocab.itos[:2] == [Vocab.PAD, Vocab.UNK]
    assert (vocab.pad_id, vocab.unk_id) == (0, 1)
    # great 3, the 3, . 3, is 2, monster 2, movie 2, then the singletons alphabetically.
    assert vocab.itos[2:] == [".", "great", "the", "is", "monster", "movie", "!", "a", "end", "not"]
    assert vocab.counts["great"] == 3 and vocab.counts["end"] == 1
    assert len(vocab) == 12
    assert all(vocab.stoi[token] == i for i, token in enumerate(vocab.itos))


def test_build_is_deterministic_whatever_the_document_order() -> None:
    shuffled = DOCS[:]
    random.Random(1).shuffle(shuffled)
    reversed_docs = [doc[::-1] for doc in reversed(DOCS)]
    assert Vocab.build(shuffled).itos == Vocab.build(DOCS).itos == Vocab.build(reversed_docs).itos


def test_min_freq_drops_rare_tokens() -> None:
    vocab = Vocab.build(DOCS, min_freq=2)
    assert vocab.itos[2:] == [".", "great", "the", "is", "monster", "movie"]
    assert "end" not in vocab and "great" in vocab
    assert len(Vocab.build(DOCS, min_freq=4)) == 2


def test_max_size_counts_the_special_tokens() -> None:
    vocab = Vocab.build(DOCS, max_size=5)
    assert len(vocab) == 5
    assert vocab.itos == [Vocab.PAD, Vocab.UNK, ".", "great", "the"]
    assert len(Vocab.build(DOCS, max_size=1)) == 2


def test_vocab_rejects_duplicates_and_skips_special_tokens() -> None:
    with pytest.raises(ValueError):
        Vocab(["a", "b", "a"])
    assert Vocab([Vocab.UNK, "a", Vocab.PAD, "b"]).itos == [Vocab.PAD, Vocab.UNK, "a", "b"]


# --- Encoding and decoding -----------------------------------------------------------------------------------


def test_encode_decode_roundtrip() -> None:
    vocab = Vocab.build(DOCS)
    for doc in DOCS:
        ids = vocab.encode(doc)
        assert all(isinstance(i, int) for i in ids)
        assert vocab.decode(ids) == doc
    assert vocab.decode(torch.tensor(vocab.encode(DOCS[0]))) == DOCS[0]


def test_unknown_tokens_map_to_unk() -> None:
    vocab = Vocab.build(DOCS, min_freq=2)
    assert vocab.encode(["the", "zorblax", "end"]) == [vocab["the"], Vocab.unk_id, Vocab.unk_id]
    assert vocab["zorblax"] == Vocab.unk_id and "zorblax" not in vocab
    assert vocab.decode(vocab.encode(["zorblax", "movie"])) == [Vocab.UNK, "movie"]


def test_decode_skips_padding() -> None:
    vocab = Vocab.build(DOCS)
    assert vocab.decode([vocab["great"], Vocab.pad_id, Vocab.pad_id]) == ["great"]


# --- Batches -------------------------------------------------------------------------------------------------


def test_encode_padded() -> None:
    vocab = Vocab.build(DOCS)
    batch = vocab.encode_padded(DOCS)
    assert batch.dtype == torch.long and batch.shape == (4, 6)
    for row, doc in zip(batch, DOCS):
        assert row[: len(doc)].tolist() == vocab.encode(doc)
        assert (row[len(doc) :] == Vocab.pad_id).all()
    cut = vocab.encode_padded(DOCS, max_len=4)
    assert cut.shape == (4, 3 + 1) and cut[0].tolist() == vocab.encode(DOCS[0])[:4]
    assert cut[3].tolist() == vocab.encode(DOCS[3]) + [Vocab.pad_id]


def test_pad_ids_edge_cases() -> None:
    assert pad_ids([]).shape == (0, 0)
    assert pad_ids([[], [5]]).tolist() == [[0], [5]]
    assert pad_ids([[1, 2], [3]], pad_id=9).tolist() == [[1, 2], [3, 9]]


def test_encode_offsets_feeds_embedding_bag() -> None:
    vocab = Vocab.build(DOCS)
    flat, offsets = vocab.encode_offsets(DOCS)
    assert flat.tolist() == [i for doc in DOCS for i in vocab.encode(doc)]
    assert offsets.tolist() == [0, 5, 11, 16]
    bag = torch.nn.EmbeddingBag(len(vocab), 3, mode="sum")
    sums = torch.stack([bag.weight[vocab.encode(doc)].sum(dim=0) for doc in DOCS])
    torch.testing.assert_close(bag(flat, offsets), sums)


def test_flatten_ids_edge_cases() -> None:
    flat, offsets = flatten_ids([[7]])
    assert flat.tolist() == [7] and offsets.tolist() == [0]
    flat, offsets = flatten_ids([[1, 2], [], [3]])
    assert flat.tolist() == [1, 2, 3] and offsets.tolist() == [0, 2, 2]
    assert flat.dtype == offsets.dtype == torch.long


# --- Saving and loading --------------------------------------------------------------------------------------


def test_save_load_roundtrip(tmp_path) -> None:
    vocab = Vocab.build(DOCS + [["café", "naïve", "“quoted”"]])
    path = tmp_path / "vocab.json"
    vocab.save(path)
    loaded = Vocab.load(path)
    assert loaded.itos == vocab.itos and loaded.stoi == vocab.stoi
    assert loaded.counts == vocab.counts
    assert loaded.encode(["café", "zorblax"]) == vocab.encode(["café", "zorblax"])
