"""Feature scaling and per-symbol look-back windows for the sequence families (numpy only).

A window of a row holds the previous ``length`` rows of the *same symbol* ordered by ``ts``,
ending at (and including) the row itself, never a later one. Rows with a shorter history are
left-padded with zeros and the mask marks the real positions. Windows are gathered batch by
batch from one padded copy of the matrix, so n x length x features is never held at once.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

CLIP = 10.0
"""Standardised values are clipped to +-CLIP."""


class Scaler:
    """Per-column standardisation fitted on training rows; NaN (and inf) become 0."""

    def __init__(self, columns: list[str], mean: np.ndarray, std: np.ndarray) -> None:
        self.columns = list(columns)
        self.mean = np.asarray(mean, np.float64)
        self.std = np.asarray(std, np.float64)

    @classmethod
    def fit(cls, frame: pd.DataFrame, columns: list[str]) -> Scaler:
        """Mean and standard deviation per column, ignoring NaN; a constant (or all-NaN)
        column gets std 1."""
        values = frame[columns].to_numpy(np.float64)
        finite = np.isfinite(values)
        count = np.maximum(finite.sum(axis=0), 1)
        clean = np.where(finite, values, 0.0)
        mean = clean.sum(axis=0) / count
        var = (np.where(finite, values - mean, 0.0) ** 2).sum(axis=0) / count
        std = np.sqrt(var)
        std[~(std > 0)] = 1.0
        return cls(columns, mean, std)

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """The columns standardised as float32, NaN to 0, clipped to +-CLIP."""
        values = frame[self.columns].to_numpy(np.float64)
        scaled = (values - self.mean) / self.std
        scaled = np.where(np.isfinite(scaled), scaled, 0.0)
        return np.clip(scaled, -CLIP, CLIP).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {"columns": self.columns, "mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scaler:
        return cls(data["columns"], np.asarray(data["mean"]), np.asarray(data["std"]))


class SequenceIndex:
    """Look-back windows of ``length`` rows per row of ``frame`` over ``values``.

    ``frame`` needs ``symbol`` and ``ts`` (rows in any order); ``values`` is the transformed
    matrix (n_rows, n_features) aligned with it. :meth:`batch` takes row positions in the
    frame's own order. Rows sharing (symbol, ts) keep their frame order (the later one sees the
    earlier one)."""

    def __init__(self, frame: pd.DataFrame, values: np.ndarray, length: int) -> None:
        if length < 1:
            raise ValueError(f"window length must be >= 1, got {length}")
        values = np.asarray(values, np.float32)
        if values.ndim != 2 or values.shape[0] != len(frame):
            raise ValueError(f"values must be (n_rows={len(frame)}, n_features), "
                             f"got {values.shape}")
        self.length = length
        n = len(frame)
        symbol_code = pd.factorize(frame["symbol"])[0]
        ts_code = pd.factorize(frame["ts"], sort=True)[0]
        order = np.lexsort((ts_code, symbol_code))  # stable: by symbol, then ts, then row
        sorted_symbols = symbol_code[order]
        new_block = np.ones(n, bool)
        new_block[1:] = sorted_symbols[1:] != sorted_symbols[:-1]
        block = np.cumsum(new_block) - 1
        n_blocks = int(block[-1]) + 1 if n else 0
        pad = length - 1
        padded_position = np.arange(n) + (block + 1) * pad
        self._padded = np.zeros((n + n_blocks * pad, values.shape[1]), np.float32)
        self._padded[padded_position] = values[order]
        self._real = np.zeros(len(self._padded), bool)
        self._real[padded_position] = True
        self._end = np.empty(n, np.int64)
        self._end[order] = padded_position
        self._offsets = np.arange(-pad, 1)

    def __len__(self) -> int:
        return len(self._end)

    @property
    def n_features(self) -> int:
        return self._padded.shape[1]

    def batch(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Windows float32 [b, length, features] and the real-position mask bool [b, length]
        of the rows at positions ``rows``; the last position is the row itself."""
        positions = self._end[np.asarray(rows, np.int64)][:, None] + self._offsets
        return self._padded[positions], self._real[positions]
