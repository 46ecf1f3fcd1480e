"""word2vec pre-training: subsampling, noise distribution, windows, the hand-written gradient, training, saving."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from utils import pretraining
from utils.pretraining import (
    Embeddings,
    SkipGram,
    Windows,
    Word2VecConfig,
    _sgns_gradients,
    encode_corpus,
    keep_probabilities,
    load_embeddings,
    noise_distribution,
    noise_table,
    save_embeddings,
    sgns_loss_and_gradients,
    skipgram_windows,
    train_word2vec,
)
from utils.similarity import cosine_similarity
from utils.text import Vocab

# --- Subsampling and noise -----------------------------------------------------------------------------------


def test_keep_probabilities_follow_word2vec_formula() -> None:
    counts = np.array([900.0, 90.0, 9.0, 1.0])  # 1,000 tokens: frequencies 0.9, 0.09, 0.009, 0.001
    keep = keep_probabilities(counts, sample=0.01)
    threshold = 0.01 * 1000
    expected = np.minimum((np.sqrt(counts / threshold) + 1) * threshold / counts, 1.0)
    np.testing.assert_allclose(keep, expected)
    assert keep[0] < 0.15 and keep[2] == keep[3] == 1.0  # the frequent word is mostly dropped, rare ones always kept
    assert np.all(np.diff(keep) >= 0)  # the more frequent, the less often kept


def test_keep_probabilities_without_sampling_keep_everything() -> None:
    np.testing.assert_array_equal(keep_probabilities(np.array([5.0, 500.0]), sample=0), [1.0, 1.0])


def test_noise_distribution_is_smoothed_unigram() -> None:
    counts = np.array([0.0, 0.0, 16.0, 1.0])
    p = noise_distribution(counts)
    np.testing.assert_allclose(p, [0, 0, 8 / 9, 1 / 9])  # 16^0.75 = 8: rare words get more than their 1/17 share


def test_noise_table_draws_each_word_in_proportion() -> None:
    counts = np.array([0.0, 0.0, 100.0, 10.0, 1.0])
    table = noise_table(counts, size=100_000)
    assert len(table) == 100_000
    shares = np.bincount(table, minlength=len(counts)) / len(table)
    np.testing.assert_allclose(shares, noise_distribution(counts), atol=1e-4)
    assert shares[0] == shares[1] == 0  # [PAD] and [UNK] have no count and are never drawn


# --- From documents to windows -------------------------------------------------------------------------------


def test_encode_corpus_drops_unknown_words_and_keeps_document_numbers() -> None:
    vocab = Vocab(["a", "b"])
    ids, docs = encode_corpus([["a", "x", "b"], ["y"], ["b", "b"]], vocab)
    np.testing.assert_array_equal(ids, [vocab["a"], vocab["b"], vocab["b"], vocab["b"]])
    np.testing.assert_array_equal(docs, [0, 0, 2, 2])


def test_skipgram_windows_respect_window_size_and_document_edges() -> None:
    rng = np.random.default_rng(0)
    ids = np.arange(100, 160)
    docs = np.repeat([0, 1, 2], 20)
    groups = skipgram_windows(ids, docs, window=4, rng=rng)
    centers = np.concatenate([g.centers for g in groups])
    assert sorted(centers) == list(ids)  # every centre in exactly one group
    for group in groups:
        w = group.contexts.shape[1] // 2
        assert 1 <= w <= 4
        offsets = np.concatenate([np.arange(-w, 0), np.arange(1, w + 1)])
        for center, contexts, mask in zip(group.centers, group.contexts, group.mask):
            pos = center - 100
            for offset, context, real in zip(offsets, contexts, mask):
                same_doc = 0 <= pos + offset < 60 and docs[pos + offset] == docs[pos]
                assert real == same_doc
                assert context == (ids[pos + offset] if real else 0)


def test_skipgram_windows_draw_all_sizes_about_equally() -> None:
    groups = skipgram_windows(np.arange(10_000), np.zeros(10_000, dtype=int), window=5, rng=np.random.default_rng(1))
    sizes = {g.contexts.shape[1] // 2: len(g.centers) for g in groups}
    assert set(sizes) == {1, 2, 3, 4, 5}
    assert all(1_800 < n < 2_200 for n in sizes.values())


# --- The hand-written update equals autograd -----------------------------------------------------------------


def _sgns_loss(inputs: torch.Tensor, outputs: torch.Tensor, centres, contexts, negatives) -> torch.Tensor:
    """The skip-gram negative-sampling loss written plainly, one pair at a time, for autograd to differentiate."""
    loss = torch.zeros(())
    for centre, context, noise in zip(centres, contexts, negatives):
        x = inputs[context]
        loss = loss - torch.nn.functional.logsigmoid(x @ outputs[centre])
        for n in noise:
            if n != centre:  # word2vec skips a noise word that is the centre itself
                loss = loss - torch.nn.functional.logsigmoid(-(x @ outputs[n]))
    return loss


def _random_tables(rows: int = 12, dim: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return torch.randn(rows, dim, generator=generator) * 0.4, torch.randn(rows, dim, generator=generator) * 0.4


def test_sgns_loss_and_gradients_equal_autograd() -> None:
    inputs, outputs = _random_tables()
    centres = torch.tensor([2, 3, 4, 2, 7])
    contexts = torch.tensor([5, 2, 5, 5, 11])  # row 5 is the context of three pairs: its gradients add up
    negatives = torch.tensor([[9, 2, 3], [3, 11, 3], [5, 6, 2], [8, 8, 9], [10, 4, 7]])  # 2, 3 and 7 meet themselves
    loss, grad_in, grad_out = sgns_loss_and_gradients(inputs, outputs, centres, contexts, negatives)
    a, b = inputs.clone().requires_grad_(), outputs.clone().requires_grad_()
    expected = _sgns_loss(a, b, centres, contexts, negatives)
    expected.backward()
    assert loss == pytest.approx(expected.item(), rel=1e-5)
    assert grad_in.shape == inputs.shape and grad_out.shape == outputs.shape
    torch.testing.assert_close(grad_in, a.grad)
    torch.testing.assert_close(grad_out, b.grad)
    assert torch.all(grad_in[[0, 1, 3]] == 0)  # rows no pair uses get no gradient


@pytest.mark.parametrize("max_row_step", [100.0, 0.2])
def test_step_applies_the_sgns_gradient_with_noise_shared_in_a_window(max_row_step: float) -> None:
    model = SkipGram(12, 6, torch.Generator().manual_seed(0))
    model.input, model.output = _random_tables()
    group = Windows(
        centers=np.array([2, 3, 4]),
        contexts=np.array([[5, 6, 0, 7], [2, 8, 9, 10], [0, 3, 11, 5]]),
        mask=np.array([[True, True, False, True], [True, True, True, True], [False, True, True, True]]),
    )
    negatives = np.array([[9, 2], [3, 11], [5, 6]])  # 2 and 3 are their windows' centres: skipped there
    # The same loss as pairs: each real context slot is a pair that uses its window's noise words.
    window, slot = np.nonzero(group.mask)
    pairs = (group.centers[window], group.contexts[window, slot], negatives[window])
    _, grad_in, grad_out = sgns_loss_and_gradients(model.input, model.output, *map(torch.from_numpy, pairs))
    before_in, before_out = model.input.clone(), model.output.clone()
    model.step(group, negatives, lr=0.1, max_row_step=max_row_step)  # 0.2 / 0.1: a row counts at most twice
    if max_row_step >= 100:
        torch.testing.assert_close(model.input, before_in - 0.1 * grad_in)
        torch.testing.assert_close(model.output, before_out - 0.1 * grad_out)
    else:
        # Rows used more than twice move less than the full step, in the same direction; others move fully.
        used_in = np.bincount(group.contexts[group.mask], minlength=12)
        for row in range(1, 12):
            step, full = model.input[row] - before_in[row], -0.1 * grad_in[row]
            torch.testing.assert_close(step, full * min(1.0, 2 / used_in[row]) if used_in[row] else full)


def test_step_checks_the_number_of_noise_rows() -> None:
    model = SkipGram(5, 2, torch.Generator().manual_seed(0))
    group = Windows(np.array([2, 3, 4]), np.array([[3, 4], [2, 4], [2, 3]]), np.ones((3, 2), dtype=bool))
    with pytest.raises(ValueError, match="need 3 rows"):
        model.step(group, np.array([[2], [3]]), lr=0.1)


# --- Training ------------------------------------------------------------------------------------------------


def _two_topic_corpus(n_docs: int = 200, length: int = 60, seed: int = 0) -> list[list[str]]:
    """Documents that each draw words from one of two disjoint topics: words of a topic share contexts."""
    rng = np.random.default_rng(seed)
    topics = [[f"sport{i}" for i in range(10)], [f"money{i}" for i in range(10)]]
    return [list(rng.choice(topics[d % 2], length)) for d in range(n_docs)]


def test_train_word2vec_learns_which_words_share_contexts() -> None:
    config = Word2VecConfig(dim=16, window=3, negatives=5, min_count=1, sample=0, epochs=3, chunk_words=300)
    embeddings, stats = train_word2vec(_two_topic_corpus(), config, progress=False)
    vocab, vectors = embeddings
    assert vectors.shape == (len(vocab), 16) and len(vocab) == 22
    assert torch.all(vectors[[vocab.pad_id, vocab.unk_id]] == 0)
    sport = vectors[[vocab[f"sport{i}"] for i in range(10)]]
    money = vectors[[vocab[f"money{i}"] for i in range(10)]]
    within = cosine_similarity(sport)[~torch.eye(10, dtype=torch.bool)].mean()
    across = cosine_similarity(sport, money).mean()
    assert within > 0.9 and across < 0.3
    assert stats.words == 3 * 200 * 60 and stats.pairs > 0 and stats.words_per_second > 0


def test_train_word2vec_is_deterministic_with_one_thread() -> None:
    config = Word2VecConfig(dim=8, min_count=1, epochs=1, chunk_words=500)
    first, _ = train_word2vec(_two_topic_corpus(50), config, progress=False)
    second, _ = train_word2vec(_two_topic_corpus(50), config, progress=False)
    other, _ = train_word2vec(_two_topic_corpus(50), Word2VecConfig(dim=8, min_count=1, epochs=1, chunk_words=500, seed=1), progress=False)
    torch.testing.assert_close(first.vectors, second.vectors, rtol=0, atol=0)
    assert not torch.equal(first.vectors, other.vectors)


def _toy_training(workers: int, max_row_step: float, lockstep: bool, seed: int = 0, epochs: int = 6) -> torch.Tensor:
    """Train on two-topic text in 300-word batches and return the input vectors. With `lockstep`, steps come in
    pairs computed from the same tables and both applied: the worst way two lock-free workers can interleave."""
    docs = _two_topic_corpus(n_docs=40, seed=seed)
    vocab = Vocab.build(docs)
    ids, doc_ids = encode_corpus(docs, vocab)
    counts = np.array([vocab.counts.get(t, 0) for t in vocab.itos], dtype=np.float64)
    table, rng = noise_table(counts, size=10_000), np.random.default_rng(seed)
    model = SkipGram(len(vocab), 16, torch.Generator().manual_seed(seed), workers=workers)
    for _ in range(epochs):
        steps = [
            (group, table[rng.integers(0, len(table), (len(group.centers), 5))])
            for start in range(0, len(ids), 300)
            for group in skipgram_windows(ids[start : start + 300], doc_ids[start : start + 300], 3, rng)
        ]
        if not lockstep:
            for group, noise in steps:
                model.step(group, noise, 0.025, max_row_step)
            continue
        for (first, noise1), (second, noise2) in zip(steps[::2], steps[1::2]):
            other = SkipGram(len(vocab), 16, torch.Generator(), workers=workers)
            other.input, other.output = model.input.clone(), model.output.clone()
            other.step(second, noise2, 0.025, max_row_step)  # the other worker reads the same tables...
            before_in, before_out = model.input.clone(), model.output.clone()
            model.step(first, noise1, 0.025, max_row_step)
            model.input += other.input - before_in  # ...and its update lands on top of ours
            model.output += other.output - before_out
    return model.input


def test_steps_computed_from_the_same_tables_share_the_row_budget() -> None:
    """The cause of two-thread divergence: two batch steps computed from one state both land, a double step that
    overshoots. A row budget safe for one worker diverges in lockstep unless the workers share it."""
    for seed in range(2):
        assert _toy_training(workers=1, max_row_step=3.2, lockstep=False, seed=seed).norm(dim=1).max() < 10
        diverged = _toy_training(workers=1, max_row_step=3.2, lockstep=True, seed=seed).norm(dim=1).max()
        assert not diverged < 100  # huge or NaN
        shared = _toy_training(workers=2, max_row_step=3.2, lockstep=True, seed=seed)
        assert torch.isfinite(shared).all() and shared.norm(dim=1).max() < 10


def test_a_late_step_shares_the_budget_wider(monkeypatch) -> None:
    """A step that other steps overtook while it computed (a stalled thread) moves its rows less."""
    group = Windows(np.array([2]), np.array([[3, 4]]), np.ones((1, 2), dtype=bool))
    noise = np.array([[5, 6]])
    moves = []
    for overtaken in (0, 3):
        model = SkipGram(8, 4, torch.Generator().manual_seed(0), workers=1)
        model.output = torch.ones(8, 4)

        def slow_gradients(*args, overtaken=overtaken, model=model, **kwargs):
            model.applied += overtaken  # other workers' steps land while this one computes
            return _sgns_gradients(*args, **kwargs)

        monkeypatch.setattr(pretraining, "_sgns_gradients", slow_gradients)
        before = model.input.clone()
        model.step(group, noise, lr=0.1, max_row_step=0.05)  # 0.05 / 0.1: half a gradient per step
        moves.append((model.input - before).norm())
    torch.testing.assert_close(moves[1], moves[0] / 4)


def test_two_thread_training_is_stable_and_learns() -> None:
    """100 seeded two-thread trainings on a tiny two-topic text: finite, bounded vectors that tell the topics apart."""
    gaps = []
    for seed in range(100):
        config = Word2VecConfig(
            dim=8, window=2, negatives=3, min_count=1, sample=0, epochs=8, lr=0.05, chunk_words=100, threads=2, seed=seed
        )
        (vocab, vectors), _ = train_word2vec(_two_topic_corpus(n_docs=10, length=40, seed=seed), config, progress=False)
        assert torch.isfinite(vectors).all() and vectors.norm(dim=1).max() < 10
        sport = vectors[[vocab[f"sport{i}"] for i in range(10)]]
        money = vectors[[vocab[f"money{i}"] for i in range(10)]]
        gaps.append(cosine_similarity(sport).mean() - cosine_similarity(sport, money).mean())
    assert min(gaps) > 0.05 and np.mean(gaps) > 0.3


def test_training_restores_the_torch_thread_count() -> None:
    before = torch.get_num_threads()
    train_word2vec(_two_topic_corpus(10), Word2VecConfig(dim=4, min_count=1, epochs=1, threads=2), progress=False)
    assert torch.get_num_threads() == before


def test_min_count_drops_rare_words() -> None:
    docs = [["common"] * 10 + ["rare"]] * 2
    (vocab, _), _ = train_word2vec(docs, Word2VecConfig(dim=4, min_count=3, epochs=1), progress=False)
    assert "common" in vocab and "rare" not in vocab


# --- Saving and loading --------------------------------------------------------------------------------------


def test_save_and_load_embeddings_round_trip(tmp_path) -> None:
    vocab = Vocab(["alpha", "beta"], counts={"alpha": 3, "beta": 1})
    embeddings = Embeddings(vocab, torch.arange(12, dtype=torch.float32).view(4, 3))
    save_embeddings(embeddings, tmp_path / "w2v")
    loaded = load_embeddings(tmp_path / "w2v")
    assert loaded.vocab.itos == vocab.itos and loaded.vocab.counts == vocab.counts
    torch.testing.assert_close(loaded.vectors, embeddings.vectors)


def test_load_embeddings_rejects_mismatched_files(tmp_path) -> None:
    save_embeddings(Embeddings(Vocab(["a"]), torch.zeros(3, 2)), tmp_path)
    np.save(tmp_path / "vectors.npy", np.zeros((5, 2), dtype=np.float32))
    with pytest.raises(ValueError, match="3 words but 5 vectors"):
        load_embeddings(tmp_path)


def test_gensim_reference_uses_the_same_settings() -> None:
    """The gensim model the bench and chapter 5 compare against is configured from our Word2VecConfig."""
    from utils.pretraining import Word2VecConfig, gensim_word2vec, train_gensim_word2vec

    config = Word2VecConfig(dim=12, window=3, negatives=4, min_count=1, epochs=1, threads=1, seed=3)
    model = gensim_word2vec(config)
    assert (model.vector_size, model.window, model.negative, model.min_count, model.sg, model.hs) == (12, 3, 4, 1, 1, 0)
    docs = [["good", "film", "great", "film"], ["bad", "film", "awful", "plot"]] * 20
    (words, vectors), seconds = train_gensim_word2vec(docs, config)
    assert set(words) == {"good", "film", "great", "bad", "awful", "plot"}
    assert vectors.shape == (6, 12) and seconds >= 0
