"""Pre-training word vectors on raw text: word2vec's skip-gram with negative sampling (SGNS), vectorised in PyTorch.

The objective is a language-modelling one: from a word, tell its true neighbours in running text apart from words
drawn at random (Mikolov et al., 2013). The recipe follows the reference C code and gensim: frequent words are
subsampled, each centre word gets a random window of 1..`window` words on each side, negatives are drawn from the
unigram distribution raised to 0.75, and the learning rate falls linearly to `min_lr`.

Speed comes from doing many updates at once. The text is cut into batches of `chunk_words` words whose windows are
built with NumPy and grouped by size; the gradients are written by hand (`_sgns_gradients`, the one function behind
both `sgns_loss_and_gradients` and every training step) and added into the two tables with `index_add_`.

What still departs from word2vec's one-pair-at-a-time update, and why:
- Noise words are shared within a window (as in pWord2Vec, Ji et al., 2016): the 2w context words of a centre use
  the same k noise words, so a window is one small matrix product. Each pair still meets k words drawn from the
  smoothed unigram distribution; they are only correlated between the pairs of one window.
- A batch's updates are computed from the same tables and then added up, not applied one by one. Batches are kept
  small (2,000 words) so that few rows occur in one many times.
- A row budget: no row moves further than `max_row_step` times its mean gradient in one step (`_cap_scale`). Without
  it a word repeated many times in one batch takes a many-times step and the vectors can overshoot and blow up. At
  the default (128 pair gradients at the starting learning rate) it binds only for the most frequent words early
  in training; `bench/bench_word2vec.py` measures the quality against gensim's with all three in place.
With `threads=2`, two workers update the shared tables without locks (Hogwild!), as gensim's workers do. Two steps
computed from the same tables both land, which is a double step: that is what made two-thread training diverge on
a small vocabulary, where every row is in every batch. The workers therefore share the row budget, and a step that
other steps overtook while it computed (a stalled thread) shares it wider; no lock is needed.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from tqdm.auto import tqdm

from utils.data import load_news_articles
from utils.text import Vocab, tokenize_words


class Embeddings(NamedTuple):
    """Word vectors with their vocabulary: row i of `vectors` belongs to `vocab.itos[i]` (`[PAD]`, `[UNK]` rows are 0).

    Being a (words, matrix) pair, it can be passed to every function of `utils.similarity`.
    """

    vocab: Vocab
    vectors: torch.Tensor


@dataclass(frozen=True)
class Word2VecConfig:
    """The settings of a skip-gram run, named as in gensim (`dim` is gensim's `vector_size`).

    Two are ours: `chunk_words`, the words of text whose pairs make one batch of updates, and `max_row_step`, how
    far one row may move in one step, in multiples of its mean gradient (see `_cap_scale`), shared by the threads.
    """

    dim: int = 100
    window: int = 5
    negatives: int = 5
    min_count: int = 5
    sample: float = 1e-3
    epochs: int = 5
    lr: float = 0.025
    min_lr: float = 1e-4
    chunk_words: int = 2_000
    max_row_step: float = 3.2
    threads: int = 1
    seed: int = 0


@dataclass(frozen=True)
class TrainingStats:
    """What a run did: words read (all epochs, before subsampling), (centre, context) pairs trained, wall time."""

    words: int
    pairs: int
    seconds: float

    @property
    def words_per_second(self) -> float:
        return self.words / self.seconds


def news_corpus() -> list[list[str]]:
    """The raw pre-training text: each news article (title, then body) as a list of word tokens, no punctuation."""
    news = load_news_articles()
    return [tokenize_words(f"{title}. {text}") for title, text in zip(news["title"], news["text"])]


# --- The pieces of the recipe, each testable on its own ------------------------------------------------------


def keep_probabilities(counts: np.ndarray, sample: float) -> np.ndarray:
    """Probability of keeping each occurrence of a word seen `counts` times (word2vec's subsampling formula).

    A word with frequency f (share of all tokens) is kept with probability (sqrt(f / sample) + 1) * sample / f,
    capped at 1: rare words are always kept, 'the' loses most of its occurrences. `sample=0` keeps everything.
    """
    counts = np.asarray(counts, dtype=np.float64)
    if sample <= 0:
        return np.ones_like(counts)
    threshold = sample * counts.sum()
    with np.errstate(divide="ignore"):
        keep = (np.sqrt(counts / threshold) + 1) * threshold / counts
    return np.minimum(keep, 1.0)


def noise_distribution(counts: np.ndarray, power: float = 0.75) -> np.ndarray:
    """The negative-sampling distribution: counts raised to `power` and normalised (zero counts never drawn)."""
    weights = np.asarray(counts, dtype=np.float64) ** power
    return weights / weights.sum()


def noise_table(counts: np.ndarray, power: float = 0.75, size: int = 10_000_000) -> np.ndarray:
    """A table in which each word id fills a share of the `size` slots proportional to its noise probability.

    Drawing a uniform random slot then draws a word from `noise_distribution` (to within 1 / size), and is much
    faster than searching the cumulative distribution; the reference C code uses the same trick.
    """
    edges = np.round(np.cumsum(noise_distribution(counts, power)) * size).astype(np.int64)
    return np.repeat(np.arange(len(edges), dtype=np.int32), np.diff(edges, prepend=0))


def encode_corpus(documents: Iterable[Sequence[str]], vocab: Vocab) -> tuple[np.ndarray, np.ndarray]:
    """All in-vocabulary tokens as one id array, plus the document number of each (out-of-vocabulary words dropped)."""
    ids, docs = [], []
    for number, doc in enumerate(documents):
        encoded = [vocab.stoi[t] for t in doc if t in vocab.stoi and vocab.stoi[t] > vocab.unk_id]
        ids.append(np.asarray(encoded, dtype=np.int64))
        docs.append(np.full(len(encoded), number, dtype=np.int64))
    return np.concatenate(ids or [np.empty(0, np.int64)]), np.concatenate(docs or [np.empty(0, np.int64)])


class Windows(NamedTuple):
    """Centres that share one window size w: their ids, their 2w context ids, and which context slots are real."""

    centers: np.ndarray  # (n,)
    contexts: np.ndarray  # (n, 2w); slots past a document edge hold 0 and are masked out
    mask: np.ndarray  # (n, 2w) bool


def skipgram_windows(ids: np.ndarray, docs: np.ndarray, window: int, rng: np.random.Generator) -> list[Windows]:
    """The (centre, context) pairs of a stretch of text, grouped by each centre's random window size 1..`window`.

    Like word2vec, each centre draws its own window size, so near neighbours are used more often than far ones.
    Windows never cross a document boundary. Grouping by size lets each group be a dense (n, 2w) array.
    """
    sizes = rng.integers(1, window + 1, len(ids))
    groups = []
    for w in range(1, window + 1):
        where = np.flatnonzero(sizes == w)
        if len(where) == 0:
            continue
        offsets = np.concatenate([np.arange(-w, 0), np.arange(1, w + 1)])
        positions = where[:, None] + offsets
        inside = (positions >= 0) & (positions < len(ids))
        positions = np.clip(positions, 0, len(ids) - 1)
        mask = inside & (docs[positions] == docs[where, None])
        groups.append(Windows(ids[where], np.where(mask, ids[positions], 0), mask))
    return groups


# --- The model and its hand-written update -------------------------------------------------------------------


def _sgns_gradients(x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor, with_loss: bool = False) -> tuple[float, torch.Tensor, torch.Tensor]:
    """The SGNS loss and its gradients for groups of context vectors that share one set of output vectors.

    x (g, c, dim): the input vectors of the c context words of each of g groups; y (g, 1 + k, dim): the output
    vectors of each group's centre word (column 0, label 1) and of its k noise words (label 0); weight (g, c, 1 + k):
    1 for each (context, output word) term of the loss, 0 for a padded or skipped one. The loss of a term is
    -log s(x.y) for the centre and -log s(-x.y) for a noise word, and its gradient wrt the score x.y is s(x.y) - label.
    Returns the summed loss (if `with_loss`, else 0.0), the gradient wrt x and the gradient wrt y.
    """
    scores = torch.bmm(x, y.transpose(1, 2))  # (g, c, 1 + k)
    loss = 0.0
    if with_loss:
        signed = torch.cat([scores[..., :1], -scores[..., 1:]], dim=2)
        loss = -float((torch.nn.functional.logsigmoid(signed) * weight).sum())
    coef = torch.sigmoid(scores)
    coef[..., 0] -= 1
    coef.mul_(weight)
    return loss, torch.bmm(coef, y), torch.bmm(coef.transpose(1, 2), x)


def sgns_loss_and_gradients(
    input_vectors: torch.Tensor, output_vectors: torch.Tensor, centres: torch.Tensor, contexts: torch.Tensor, negatives: torch.Tensor
) -> tuple[float, torch.Tensor, torch.Tensor]:
    """The engine's own SGNS loss and gradients for a batch of (centre, context) pairs, each with its own k noise words.

    `centres`, `contexts` (n,) and `negatives` (n, k) are word ids. The context word's input vector must score its
    centre's output vector high and the noise words' output vectors low; a noise word equal to the pair's centre is
    skipped, as in word2vec. Returns (loss summed over the batch, gradient wrt `input_vectors`, gradient wrt
    `output_vectors`), the gradients full-size. Computed by `_sgns_gradients`, the function every training step uses.
    """
    centres, contexts, negatives = (torch.as_tensor(t, dtype=torch.int64) for t in (centres, contexts, negatives))
    targets = torch.cat([centres[:, None], negatives], dim=1)  # (n, 1 + k)
    weight = torch.cat([torch.ones_like(centres[:, None]), negatives != centres[:, None]], dim=1).float()
    x = input_vectors.detach().index_select(0, contexts).unsqueeze(1)  # groups of one context each
    y = output_vectors.detach()[targets]
    loss, grad_x, grad_y = _sgns_gradients(x, y, weight.unsqueeze(1), with_loss=True)
    grad_input = torch.zeros_like(input_vectors).index_add_(0, contexts, grad_x.squeeze(1))
    grad_output = torch.zeros_like(output_vectors).index_add_(0, targets.reshape(-1), grad_y.reshape(-1, grad_y.shape[2]))
    return loss, grad_input, grad_output


class SkipGram:
    """The two tables of word2vec: input vectors (the embeddings we keep) and output vectors (used by the loss).

    `workers` threads may call `step` at once without locks (Hogwild!); the tables count the steps applied, so
    that a step can tell how many other steps landed between its reading the tables and its writing to them.
    """

    def __init__(self, vocab_size: int, dim: int, generator: torch.Generator, workers: int = 1) -> None:
        # word2vec's initialisation: inputs uniform in [-0.5, 0.5) / dim, outputs zero.
        self.input = (torch.rand(vocab_size, dim, generator=generator) - 0.5) / dim
        self.output = torch.zeros(vocab_size, dim)
        self.workers = workers
        self.applied = 0  # steps written so far, by all workers
        self._tickets = itertools.count(1)

    def step(self, group: Windows, negatives: np.ndarray, lr: float, max_row_step: float = 3.2) -> None:
        """One SGD step of the SGNS loss on a group of windows: window i's 2w context words share the k noise words
        in row i of `negatives` (pWord2Vec's sharing), so the scores of a window are one small matrix product.

        No row moves further than `max_row_step` times its mean gradient from any one state of the tables, however
        many steps computed from that state land together (see `_cap_scale`).
        """
        n, slots = group.contexts.shape
        if negatives.shape[0] != n:
            raise ValueError(f"{n} windows need {n} rows of noise words, not {negatives.shape[0]}")
        dim, k = self.input.shape[1], negatives.shape[1]
        contexts = torch.from_numpy(group.contexts).view(-1)
        targets = torch.from_numpy(np.concatenate([group.centers[:, None], negatives], axis=1).astype(np.int64, copy=False))
        # Padded context slots count for nothing, and a noise word that happens to be the centre is skipped.
        keep = np.concatenate([np.ones((n, 1), dtype=bool), negatives != group.centers[:, None]], axis=1)
        weight = torch.from_numpy(group.mask[:, :, None] & keep[:, None, :]).float()
        read = self.applied
        x = self.input.index_select(0, contexts).view(n, slots, dim)
        y = self.output.index_select(0, targets.view(-1)).view(n, k + 1, dim)
        _, grad_x, grad_y = _sgns_gradients(x, y, weight)
        # Steps computed from the same tables add up: the workers share the budget, a late step shares it wider.
        cap = max_row_step / lr / max(self.workers, self.applied - read + 1)
        pairs = torch.from_numpy(group.mask)
        in_scale = _cap_scale(contexts, pairs.view(-1).float(), len(self.input), cap).mul_(-lr)
        out_uses = pairs.sum(1, keepdim=True).expand(n, k + 1).float()  # an output row serves each real context
        out_scale = _cap_scale(targets.view(-1), out_uses.reshape(-1), len(self.output), cap).mul_(-lr)
        self.input.index_add_(0, contexts, grad_x.view(-1, dim).mul_(in_scale.unsqueeze(1)))
        self.output.index_add_(0, targets.view(-1), grad_y.view(-1, dim).mul_(out_scale.unsqueeze(1)))
        self.applied = next(self._tickets)


def _cap_scale(rows: torch.Tensor, uses: torch.Tensor, num_rows: int, cap: float) -> torch.Tensor:
    """Per entry of `rows`: 1, or cap / u for a row whose entries add up to u > cap pair gradients in this step.

    One-at-a-time SGD limits itself: once x.y is large, the next update of the same pair is small. A batch adds up
    u updates computed from the same stale vectors, so a row used u times takes a u-times step, and x and y can
    overshoot and blow up together. With cap = max_row_step / lr, no row moves by more than max_row_step times its
    mean gradient per step.
    """
    counts = torch.bincount(rows, weights=uses, minlength=num_rows).float().clamp_(min=cap)
    return (cap / counts)[rows]


def train_word2vec(
    documents: Sequence[Sequence[str]],
    config: Word2VecConfig = Word2VecConfig(),
    progress: bool = True,
) -> tuple[Embeddings, TrainingStats]:
    """Train skip-gram with negative sampling on tokenised documents; return the input vectors and run statistics.

    Deterministic for a given seed with `threads=1`; with more threads the lock-free updates interleave differently
    from run to run (as in gensim with several workers). The time in the statistics covers training only, as
    gensim's `train` does (building the vocabulary and encoding the text come before).
    """
    vocab = Vocab.build(documents, min_freq=config.min_count)
    ids, docs = encode_corpus(documents, vocab)
    counts = np.array([vocab.counts.get(t, 0) for t in vocab.itos], dtype=np.float64)
    keep = keep_probabilities(counts, config.sample)
    table = noise_table(counts)
    model = SkipGram(len(vocab), config.dim, torch.Generator().manual_seed(config.seed), config.threads)
    raw_words = sum(len(doc) for doc in documents)
    chunks = [(start, min(start + config.chunk_words, len(ids))) for start in range(0, len(ids), config.chunk_words)]
    jobs = config.epochs * len(chunks)

    def work(job: int) -> int:
        """Train on one chunk of one epoch, with its own random stream; return the number of pairs."""
        epoch, index = divmod(job, len(chunks))
        start, end = chunks[index]
        rng = np.random.default_rng([config.seed, epoch, index])
        lr = config.lr - (config.lr - config.min_lr) * job / jobs
        chunk_ids, chunk_docs = ids[start:end], docs[start:end]
        kept = rng.random(len(chunk_ids)) < keep[chunk_ids]
        pairs = 0
        for group in skipgram_windows(chunk_ids[kept], chunk_docs[kept], config.window, rng):
            negatives = table[rng.integers(0, len(table), (len(group.centers), config.negatives))]
            model.step(group, negatives, lr, config.max_row_step)
            pairs += int(group.mask.sum())
        return pairs

    previous_threads = torch.get_num_threads()
    torch.set_num_threads(1)  # parallelism comes from the workers, one core each
    started, pairs = time.perf_counter(), 0
    try:
        bar = tqdm(total=config.epochs * raw_words, desc="word2vec", unit="word", unit_scale=True, disable=not progress)
        with ThreadPoolExecutor(config.threads) as pool, bar:
            for job, n_pairs in enumerate(pool.map(work, range(jobs))):
                pairs += n_pairs
                start, end = chunks[job % len(chunks)]
                bar.update(round((end - start) * raw_words / len(ids)))
    finally:
        torch.set_num_threads(previous_threads)
    seconds = time.perf_counter() - started
    vectors = model.input
    vectors[[vocab.pad_id, vocab.unk_id]] = 0.0
    return Embeddings(vocab, vectors), TrainingStats(config.epochs * raw_words, pairs, seconds)


# --- Saving and loading --------------------------------------------------------------------------------------


def save_embeddings(embeddings: Embeddings, directory: str | Path) -> None:
    """Write the vocabulary (`vocab.json`) and the vectors (`vectors.npy`) into `directory`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    embeddings.vocab.save(directory / "vocab.json")
    np.save(directory / "vectors.npy", embeddings.vectors.detach().cpu().numpy())


def load_embeddings(directory: str | Path) -> Embeddings:
    """Read embeddings written by `save_embeddings`."""
    directory = Path(directory)
    vocab = Vocab.load(directory / "vocab.json")
    vectors = torch.from_numpy(np.load(directory / "vectors.npy"))
    if len(vectors) != len(vocab):
        raise ValueError(f"{directory}: {len(vocab)} words but {len(vectors)} vectors")
    return Embeddings(vocab, vectors)


def gensim_word2vec(config: Word2VecConfig):
    """An untrained gensim Word2Vec (skip-gram, negative sampling) with the same settings as our `config`."""
    from gensim.models import Word2Vec  # imported here: only the comparison with gensim needs it

    return Word2Vec(
        vector_size=config.dim, window=config.window, negative=config.negatives, min_count=config.min_count,
        sample=config.sample, alpha=config.lr, min_alpha=config.min_lr, workers=config.threads, sg=1, hs=0, seed=config.seed,
    )


def train_gensim_word2vec(documents: Sequence[Sequence[str]], config: Word2VecConfig) -> tuple[tuple[list[str], np.ndarray], float]:
    """gensim's word2vec under our `config`, the speed and quality reference: (words, vectors) and training seconds."""
    model = gensim_word2vec(config)
    model.build_vocab(documents)
    started = time.perf_counter()
    model.train(documents, total_examples=len(documents), epochs=config.epochs)
    return (list(model.wv.index_to_key), model.wv.vectors), time.perf_counter() - started

