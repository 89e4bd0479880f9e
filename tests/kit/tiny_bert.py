"""A tiny BERT sentiment classifier and labelled texts, built locally (no download), so the
real transformers code paths run offline in tests."""

from __future__ import annotations

import random
from pathlib import Path

POSITIVE = ["gain", "gains", "beats", "surges", "rises", "record", "profit", "upgrade", "rally"]
NEGATIVE = ["loss", "losses", "miss", "misses", "falls", "plunges", "cut", "downgrade", "slump"]
NEUTRAL = ["unchanged", "flat", "steady", "holds", "inline", "maintains", "meets"]
FILLER = ["acme", "globex", "initech", "shares", "quarter", "report", "the", "of", "in", "after",
          "stock", "earnings", "revenue", "said", "today", "analysts", "market", "on", "its"]
ID2LABEL = {0: "positive", 1: "negative", 2: "neutral"}


def build_tiny_bert(path: Path, id2label: dict[int, str] | None = None, seed: int = 0,
                    **config: float) -> Path:
    """A 2-layer BERT with hidden size 32 and a word-level vocabulary, saved to ``path``."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    words = sorted(set(POSITIVE + NEGATIVE + NEUTRAL + FILLER))
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]
    tokenizer = BertTokenizer(vocab={t: i for i, t in enumerate(tokens)})
    id2label = ID2LABEL if id2label is None else id2label
    bert = BertConfig(
        vocab_size=len(tokens), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=128, num_labels=len(id2label),
        id2label=id2label, label2id={v: k for k, v in id2label.items()}, **config,
    )
    torch.manual_seed(seed)
    BertForSequenceClassification(bert).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def labelled_set(n_per_label: int, seed: int) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    texts: list[str] = []
    labels: list[str] = []
    for label, words in (("positive", POSITIVE), ("negative", NEGATIVE), ("neutral", NEUTRAL)):
        for _ in range(n_per_label):
            parts = rng.sample(FILLER, rng.randint(3, 6))
            parts.insert(rng.randint(0, len(parts)), rng.choice(words))
            texts.append(" ".join(parts))
            labels.append(label)
    return texts, labels
