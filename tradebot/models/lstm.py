"""LSTM direction classifier: a stacked LSTM over each row's look-back window of all its
features, masked additive attention pooling over the time steps, and a linear head on the
pooled state and the current row's features (a skip path: the recurrence need not carry the
newest bar's information through 60 steps to use it)."""

from __future__ import annotations

from typing import Any

import numpy as np
import optuna
import pandas as pd
import torch
from torch import nn

from tradebot.kernel.model_settings import LSTMSettings
from tradebot.models.sequences import SequenceIndex
from tradebot.models.torch_training import BatchMaker, SequenceDirectionModel


class AttentionLSTM(nn.Module):
    """[b, L, F] windows and their real-step mask [b, L] -> one logit per row."""

    def __init__(self, n_features: int, hidden_size: int, num_layers: int,
                 dropout: float) -> None:
        super().__init__()
        self.lstm = nn.LSTM(n_features, hidden_size, num_layers, batch_first=True,
                            dropout=dropout if num_layers > 1 else 0.0)
        self.attention = nn.Sequential(nn.Linear(hidden_size, hidden_size), nn.Tanh(),
                                       nn.Linear(hidden_size, 1, bias=False))
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size + n_features, 1)

    def forward(self, windows: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        states, _ = self.lstm(windows)
        scores = self.attention(states).squeeze(-1).masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores, dim=1)  # the last step is always real
        pooled = (weights.unsqueeze(-1) * states).sum(dim=1)
        # the current row's features skip the recurrence: the sequence adds to them
        return self.head(self.dropout(torch.cat([pooled, windows[:, -1]], dim=1))).squeeze(-1)


class LSTMDirectionModel(SequenceDirectionModel):
    """P(up) from the last ``sequence_bars`` rows of the row's symbol."""

    family = "lstm"
    config_type = LSTMSettings
    config: LSTMSettings

    @staticmethod
    def _architecture_defaults(config: LSTMSettings) -> dict[str, Any]:
        return {"hidden_size": config.hidden_size, "num_layers": config.num_layers}

    @staticmethod
    def _architecture_space(trial: optuna.Trial, cfg: LSTMSettings) -> dict[str, Any]:
        """Width halved/kept/doubled, 1..num_layers layers."""
        widths = sorted({max(2, cfg.hidden_size // 2), cfg.hidden_size, cfg.hidden_size * 2})
        return {"hidden_size": trial.suggest_categorical("hidden_size", widths),
                "num_layers": trial.suggest_int("num_layers", 1, cfg.num_layers)}

    def _build_net(self) -> nn.Module:
        return AttentionLSTM(len(self.features), int(self.params["hidden_size"]),
                             int(self.params["num_layers"]), float(self.params["dropout"]))

    def _batch_maker(self, frame: pd.DataFrame) -> BatchMaker:
        index = SequenceIndex(frame, self._scaled(frame), self.config.sequence_bars)

        def make(rows: np.ndarray) -> tuple[torch.Tensor, ...]:
            windows, mask = index.batch(rows)
            return torch.from_numpy(windows), torch.from_numpy(mask)

        return make
