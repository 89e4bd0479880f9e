"""FinBERT sentiment through transformers, with the lexicon as the fallback when it cannot load.

Any sequence classifier whose labels are positive/negative/neutral works: ``ProsusAI/finbert`` by
default, another hub id, or a local directory (such as one written by
:func:`tradebot.pipelines.sentiment_training.fine_tune_sentiment`). Scores are
``p(positive) - p(negative)``. The model runs on CPU in eval mode, in batches of texts sorted by
length (less padding), truncated to ``max_length`` tokens, with optional dynamic int8
quantisation of the linear layers (the fastest variant the default install has: see
``bench/sentiment.py``). Library code never changes torch's global thread count.
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tradebot.features.sentiment import LexiconScorer, SentimentScore, SentimentScorer
from tradebot.kernel.settings import SentimentSettings

log = logging.getLogger(__name__)

LABELS = ("positive", "negative", "neutral")
NEUTRAL = SentimentScore(0.0, 0.0, 0.0, 1.0)
NAME_LIMIT = 64  # sentiment_scores.scorer is String(64)

# (model, allow_download) -> why it could not load; one warning per model per process
_load_failures: dict[tuple[str, bool], str] = {}
# the settings a scorer was loaded with -> that scorer (loaded once per process)
_loaded: dict[tuple[str, bool, int, int, bool], TransformerScorer] = {}


def scorer_name(model: str) -> str:
    """``finbert:<hub id>`` or ``finbert:<directory name>`` for a local path, <= 64 characters."""
    path = Path(model).expanduser()
    ident = path.resolve().name if path.exists() else model
    name = f"finbert:{ident}"
    if len(name) > NAME_LIMIT:
        digest = hashlib.sha1(ident.encode()).hexdigest()[:8]
        name = f"{name[: NAME_LIMIT - 9]}~{digest}"
    return name


def label_columns(id2label: Mapping[Any, str]) -> dict[str, list[int]]:
    """Output columns of each sentiment label, read from the model's ``id2label`` (any order,
    any case). Raises ValueError when a label is unknown or positive/negative is missing."""
    columns: dict[str, list[int]] = {label: [] for label in LABELS}
    for index, label in id2label.items():
        key = str(label).strip().lower()
        if key not in columns:
            raise ValueError(
                f"model label {label!r} is not one of positive/negative/neutral "
                f"(id2label = {dict(id2label)})"
            )
        columns[key].append(int(index))
    if not columns["positive"] or not columns["negative"]:
        raise ValueError(f"model has no positive and negative labels (id2label = {dict(id2label)})")
    return columns


def quantize_linear(model: Any) -> Any:
    """Dynamic int8 quantisation of every ``nn.Linear`` (CPU inference only)."""
    import torch

    with warnings.catch_warnings():  # torch.ao.quantization is deprecated but still the fastest
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


class TransformerScorer:
    """Scores texts with a transformers sequence classifier (FinBERT by default).

    Loading raises (OSError, ValueError, ...) when the model cannot be loaded; use
    :func:`make_scorer` for the lexicon fallback."""

    def __init__(
        self,
        model: str = "ProsusAI/finbert",
        *,
        allow_download: bool = False,
        batch_size: int = 32,
        max_length: int = 64,
        quantize: bool = True,
    ) -> None:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        source = str(Path(model).expanduser()) if Path(model).expanduser().exists() else model
        self.tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=not allow_download)
        net = AutoModelForSequenceClassification.from_pretrained(
            source, local_files_only=not allow_download
        )
        self._columns = label_columns(net.config.id2label)
        net.eval()
        self.quantized = False
        if quantize:
            try:
                net = quantize_linear(net)
                self.quantized = True
            except (RuntimeError, AttributeError, NotImplementedError) as exc:
                log.warning("int8 quantisation of %s failed (%s); scoring in float32",
                            model, _one_line(exc))
        self.model = net
        self.model_id = model
        self.name = scorer_name(model)
        self.batch_size = batch_size
        self.max_length = max_length

    def _to_score(self, probs: list[float]) -> SentimentScore:
        pos, neg, neu = (sum(probs[i] for i in self._columns[k]) for k in LABELS)
        return SentimentScore(pos - neg, pos, neg, neu)

    def score(self, texts: Sequence[str | None]) -> list[SentimentScore]:
        """One score per text, in order; empty or blank texts are neutral without the model."""
        import torch

        out = [NEUTRAL] * len(texts)
        todo = [i for i, text in enumerate(texts) if text and text.strip()]
        if not todo:
            return out
        encoded = self.tokenizer(
            [texts[i] for i in todo], truncation=True, max_length=self.max_length
        )
        keys = list(encoded.keys())
        order = sorted(range(len(todo)), key=lambda j: len(encoded["input_ids"][j]))
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                chunk = order[start : start + self.batch_size]
                batch = self.tokenizer.pad(
                    {k: [encoded[k][j] for j in chunk] for k in keys}, return_tensors="pt"
                )
                logits = self.model(**batch).logits.float()
                for j, probs in zip(chunk, torch.softmax(logits, dim=-1).tolist(), strict=True):
                    out[todo[j]] = self._to_score(probs)
        return out


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or "no message"
    return f"{type(exc).__name__}: {text[:300]}"


def make_scorer(cfg: SentimentSettings) -> SentimentScorer:
    """The configured transformer scorer or, when it cannot load, the lexicon scorer.

    Never raises for a load failure: it logs one warning per model per process that names the
    model, the reason and the fix, and returns :class:`LexiconScorer` (scores stored as
    ``lm-lexicon``). A model that loaded is kept for the process: ingest, features and trade
    steps running in one process share it and agree on the scorer's name."""
    key = (cfg.model, cfg.allow_download)
    if key in _load_failures:
        return LexiconScorer()
    loaded_key = (cfg.model, cfg.allow_download, cfg.batch_size, cfg.max_length, cfg.quantize)
    if loaded_key in _loaded:
        return _loaded[loaded_key]
    try:
        scorer = TransformerScorer(
            cfg.model,
            allow_download=cfg.allow_download,
            batch_size=cfg.batch_size,
            max_length=cfg.max_length,
            quantize=cfg.quantize,
        )
    except Exception as exc:  # any load failure: missing files, offline, bad labels, ...
        _load_failures[key] = reason = _one_line(exc)
        fix = (
            "set sentiment.model to a local directory holding the model, or set "
            "sentiment.allow_download = true" if not cfg.allow_download
            else "check the model id or path and the network"
        )
        log.warning(
            "sentiment model %r could not be loaded (%s); texts are scored with the "
            "Loughran-McDonald lexicon instead (scorer %r). To use the model, %s.",
            cfg.model, reason, LexiconScorer.name, fix,
        )
        return LexiconScorer()
    _loaded[loaded_key] = scorer
    return scorer
