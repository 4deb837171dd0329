"""A tiny character language model and synthetic text for the pruning tests.

The text is drawn from a fixed set of words with a seeded generator, so it has structure a
small LSTM learns within a few dozen steps. Nothing is read from disk.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

WORDS = ["the ", "cat ", "sat ", "on ", "a ", "mat ", "and ", "dog ", "ran ", "far "]
ALPHABET = sorted(set("".join(WORDS)))


def synthetic_characters(num_words: int, seed: int) -> Tensor:
    """Character ids (num_chars,) int64 of ``num_words`` words drawn with seed ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    picks = torch.randint(len(WORDS), (num_words,), generator=generator).tolist()
    text = "".join(WORDS[i] for i in picks)
    return torch.tensor([ALPHABET.index(c) for c in text])


def batches(ids: Tensor, seq_len: int, batch_size: int) -> Tensor:
    """Cut ``ids`` into (num_batches, seq_len + 1, batch_size) windows: inputs then targets."""
    window = seq_len + 1
    count = ids.numel() // (window * batch_size)
    return ids[: count * window * batch_size].view(count, batch_size, window).transpose(1, 2)


class TinyCharLM(nn.Module):
    """Embedding, a multi-layer ``nn.LSTM`` and an ``nn.Linear`` output layer."""

    def __init__(self, hidden_size: int = 12, num_layers: int = 2, proj_size: int = 0) -> None:
        super().__init__()
        vocab = len(ALPHABET)
        self.embedding = nn.Embedding(vocab, 8)
        self.lstm = nn.LSTM(8, hidden_size, num_layers=num_layers, proj_size=proj_size)
        self.output = nn.Linear(proj_size or hidden_size, vocab)

    def forward(self, ids: Tensor) -> Tensor:
        """ids (L, N) int64 -> logits (L, N, vocab)."""
        hidden, _ = self.lstm(self.embedding(ids))
        return self.output(hidden)


def language_model_loss(model: nn.Module, window: Tensor) -> Tensor:
    """Mean next-character cross-entropy of a (seq_len + 1, N) window."""
    logits = model(window[:-1])
    return F.cross_entropy(logits.flatten(0, 1), window[1:].flatten())


def held_out_loss(model: nn.Module, data: Tensor) -> float:
    """Mean loss over the (num_batches, seq_len + 1, N) windows of ``data``."""
    with torch.no_grad():
        return float(torch.stack([language_model_loss(model, w) for w in data]).mean())
