"""Multi-modal transformer direction classifier.

Two token streams per row: the price/technical features of the last ``sequence_bars`` rows,
cut into patches of ``patch_bars`` bars (one token per patch, as PatchTST does: 60 bars make
15 tokens, which keeps self-attention affordable on a CPU), through a self-attention encoder;
and the sentiment features of the last ``sentiment_bars`` rows, one token per bar. The current
patch's token attends to the sentiment tokens (cross-attention, residual + LayerNorm) and,
with the current row's own features (a skip path), feeds an MLP head.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import optuna
import pandas as pd
import torch
from torch import nn

from tradebot.kernel.model_settings import TransformerSettings
from tradebot.models.sequences import SequenceIndex
from tradebot.models.torch_training import BatchMaker, SequenceDirectionModel

SENTIMENT_MARKERS = ("_sent_", "_count_")


def is_sentiment_column(name: str) -> bool:
    """Sentiment features are named like ``news_sent_60m`` or ``post_count_240m``."""
    return any(marker in name for marker in SENTIMENT_MARKERS)


class PriceSentimentTransformer(nn.Module):
    """(price windows, price mask, sentiment windows, sentiment mask) -> one logit per row."""

    def __init__(self, n_price: int, n_sentiment: int, price_bars: int, sentiment_bars: int,
                 d_model: int, n_heads: int, n_layers: int, dropout: float,
                 patch_bars: int = 1) -> None:
        super().__init__()
        if price_bars % patch_bars:
            raise ValueError(f"sequence_bars ({price_bars}) must be a multiple of patch_bars "
                             f"({patch_bars})")
        self.patch_bars = patch_bars
        self.price_projection = nn.Linear(n_price * patch_bars, d_model)
        self.price_position = nn.Parameter(torch.randn(price_bars // patch_bars, d_model) * 0.02)
        self.sentiment_projection = nn.Linear(n_sentiment, d_model)
        self.sentiment_position = nn.Parameter(torch.randn(sentiment_bars, d_model) * 0.02)
        layer = nn.TransformerEncoderLayer(d_model, n_heads, dim_feedforward=2 * d_model,
                                           dropout=dropout, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.cross_attention = nn.MultiheadAttention(d_model, n_heads, dropout=dropout,
                                                     batch_first=True)
        self.cross_dropout = nn.Dropout(dropout)
        self.cross_norm = nn.LayerNorm(d_model)
        self.head = nn.Sequential(nn.Linear(d_model + n_price + n_sentiment, d_model),
                                  nn.GELU(), nn.Dropout(dropout), nn.Linear(d_model, 1))

    def forward(self, price: torch.Tensor, price_mask: torch.Tensor, sentiment: torch.Tensor,
                sentiment_mask: torch.Tensor) -> torch.Tensor:
        b, bars, n = price.shape
        patches = price.reshape(b, bars // self.patch_bars, self.patch_bars * n)
        patch_mask = price_mask.reshape(b, bars // self.patch_bars, self.patch_bars).any(-1)
        tokens = self.price_projection(patches) + self.price_position
        tokens = self.encoder(tokens, src_key_padding_mask=~patch_mask)
        current = tokens[:, -1:]  # the patch ending at the current row
        context = self.sentiment_projection(sentiment) + self.sentiment_position
        attended, _ = self.cross_attention(current, context, context,
                                           key_padding_mask=~sentiment_mask, need_weights=False)
        fused = self.cross_norm(current + self.cross_dropout(attended))
        # the current row's own features join the head (a skip path around the encoders)
        return self.head(torch.cat([fused[:, 0], price[:, -1], sentiment[:, -1]], dim=1)
                         ).squeeze(-1)


class TransformerDirectionModel(SequenceDirectionModel):
    """P(up) from the row's price history and the sentiment of its last bars."""

    family = "transformer"
    config_type = TransformerSettings
    config: TransformerSettings

    @property
    def context_bars(self) -> int:
        return max(self.config.sequence_bars, self.config.sentiment_bars)

    @property
    def price_features(self) -> list[str]:
        return [f for f in self.features if not is_sentiment_column(f)]

    @property
    def sentiment_features(self) -> list[str]:
        return [f for f in self.features if is_sentiment_column(f)]

    @staticmethod
    def _architecture_defaults(config: TransformerSettings) -> dict[str, Any]:
        return {"d_model": config.d_model, "n_layers": config.n_layers}

    @staticmethod
    def _architecture_space(trial: optuna.Trial, cfg: TransformerSettings) -> dict[str, Any]:
        """Width halved/kept/doubled (a multiple of n_heads), 1..n_layers layers."""
        widths = sorted({w for w in (cfg.d_model // 2, cfg.d_model, cfg.d_model * 2)
                         if w >= cfg.n_heads and w % cfg.n_heads == 0})
        return {"d_model": trial.suggest_categorical("d_model", widths),
                "n_layers": trial.suggest_int("n_layers", 1, cfg.n_layers)}

    def _build_net(self) -> nn.Module:
        return PriceSentimentTransformer(
            max(1, len(self.price_features)), max(1, len(self.sentiment_features)),
            self.config.sequence_bars, self.config.sentiment_bars, int(self.params["d_model"]),
            self.config.n_heads, int(self.params["n_layers"]), float(self.params["dropout"]),
            self.config.patch_bars)

    def _batch_maker(self, frame: pd.DataFrame) -> BatchMaker:
        scaled = self._scaled(frame)
        sentiment = np.array([is_sentiment_column(f) for f in self.features], bool)
        price_index = SequenceIndex(frame, _stream(scaled, ~sentiment),
                                    self.config.sequence_bars)
        sentiment_index = SequenceIndex(frame, _stream(scaled, sentiment),
                                        self.config.sentiment_bars)

        def make(rows: np.ndarray) -> tuple[torch.Tensor, ...]:
            price, price_mask = price_index.batch(rows)
            sent, sent_mask = sentiment_index.batch(rows)
            return (torch.from_numpy(price), torch.from_numpy(price_mask),
                    torch.from_numpy(sent), torch.from_numpy(sent_mask))

        return make


def _stream(scaled: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """The selected columns, or one zero column when a stream has no features."""
    if columns.any():
        return np.ascontiguousarray(scaled[:, columns])
    return np.zeros((len(scaled), 1), np.float32)
