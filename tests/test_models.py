"""The bag-of-words classifier averages exactly a text's own tokens, whatever the batch; pre-trained vectors load and freeze."""

from __future__ import annotations

import pytest
import torch

from utils.models import BagOfWords, NaivePaddedBagOfWords, token_contributions, word_scores
from utils.text import flatten_ids, pad_ids
from utils.training import train

TEXTS = [[5, 3, 9], [2], [7, 7, 4, 8, 6, 2, 3], [9, 1]]


@pytest.fixture
def model() -> BagOfWords:
    torch.manual_seed(0)
    return BagOfWords(vocab_size=10, embedding_dim=4, num_classes=3)


def by_hand(model: BagOfWords, texts: list[list[int]]) -> torch.Tensor:
    """The classifier computed literally: mean of each text's own rows, then W x + b."""
    weight, linear = model.embedding.weight.detach(), model.linear
    means = torch.stack([weight[torch.tensor(text)].mean(dim=0) for text in texts])
    return means @ linear.weight.detach().T + linear.bias.detach()


def test_padded_input_equals_offsets_input_equals_the_mean_by_hand(model: BagOfWords) -> None:
    flat, offsets = flatten_ids(TEXTS)
    with torch.no_grad():
        padded_scores = model(pad_ids(TEXTS))
        offset_scores = model(flat, offsets)
    torch.testing.assert_close(padded_scores, by_hand(model, TEXTS))
    torch.testing.assert_close(offset_scores, by_hand(model, TEXTS))


def test_a_text_scores_the_same_alone_and_in_any_batch(model: BagOfWords) -> None:
    with torch.no_grad():
        alone = model(pad_ids([TEXTS[1]]))[0]
        in_batch = model(pad_ids(TEXTS))[1]
    torch.testing.assert_close(alone, in_batch)


def test_padding_rows_never_affect_the_output(model: BagOfWords) -> None:
    padded = pad_ids(TEXTS)
    with torch.no_grad():
        before = model(padded)
        model.embedding.weight[0] = 1000.0  # even a non-zero [PAD] row is skipped
        after = model(padded)
    torch.testing.assert_close(before, after)


def test_naive_mean_divides_by_the_padded_length() -> None:
    torch.manual_seed(0)
    naive = NaivePaddedBagOfWords(10, 4, 3)
    padded = pad_ids(TEXTS)
    lengths = torch.tensor([len(t) for t in TEXTS], dtype=torch.float32)
    with torch.no_grad():
        naive_means = naive.embedding(padded).mean(dim=1)
        true_means = torch.stack([naive.embedding.weight[torch.tensor(t)].mean(dim=0) for t in TEXTS])
        # With a zero [PAD] row the naive mean is the true mean shrunk by (length / padded length).
        torch.testing.assert_close(naive_means, true_means * (lengths / padded.shape[1])[:, None])
        assert not torch.allclose(naive(pad_ids([TEXTS[1]]))[0], naive(padded)[1])
    with pytest.raises(ValueError):
        naive(*flatten_ids(TEXTS))


def test_lecture_version_without_padding_idx_trains_the_pad_row() -> None:
    naive = NaivePaddedBagOfWords(10, 4, 3, padding_idx=None)
    assert naive.embedding.padding_idx is None and naive.embedding.weight[0].abs().sum() > 0


def test_from_pretrained_copies_vectors_and_zeroes_the_pad_row() -> None:
    vectors = torch.randn(10, 4)
    model = BagOfWords.from_pretrained(vectors, num_classes=2)
    torch.testing.assert_close(model.embedding.weight[1:].detach(), vectors[1:])
    assert torch.count_nonzero(model.embedding.weight[0]) == 0
    vectors[5] += 1.0  # a copy, not a view of the caller's tensor
    assert not torch.allclose(model.embedding.weight[5].detach(), vectors[5])


@pytest.mark.parametrize("freeze", [True, False])
def test_freezing_stops_updates_of_the_embeddings_only(freeze: bool) -> None:
    torch.manual_seed(0)
    model = BagOfWords.from_pretrained(torch.randn(10, 4), num_classes=2, freeze=freeze)
    table, linear = model.embedding.weight.detach().clone(), model.linear.weight.detach().clone()
    texts, labels = TEXTS * 4, [0, 1, 1, 0] * 4
    train(model, (texts, labels), epochs=2, batch_size=4, progress=False)
    assert torch.equal(model.embedding.weight.detach(), table) is freeze
    assert not torch.equal(model.linear.weight.detach(), linear)
    model.freeze_embeddings(not freeze)
    assert model.embedding.weight.requires_grad is freeze


def test_word_scores_and_token_contributions_add_up_to_the_scores(model: BagOfWords) -> None:
    scores = word_scores(model)
    assert scores.shape == (10, 3)
    torch.testing.assert_close(scores[5], model.linear.weight.detach() @ model.embedding.weight[5].detach())
    with torch.no_grad():
        for text in TEXTS:
            shares = token_contributions(model, text + [0, 0])  # padding is skipped
            assert shares.shape == (len(text), 3)
            torch.testing.assert_close(shares.sum(dim=0) + model.linear.bias, model(pad_ids([text]))[0])
    assert token_contributions(model, []).shape == (0, 3)
