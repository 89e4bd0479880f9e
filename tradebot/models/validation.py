"""Walk-forward splits over time with an embargo gap; never shuffled."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Split:
    train: np.ndarray  # row positions
    valid: np.ndarray


def _positions(ts: pd.Series, chosen: np.ndarray) -> np.ndarray:
    return np.flatnonzero(ts.isin(chosen).to_numpy())


def holdout_split(ts: pd.Series, test_fraction: float, embargo: int) -> Split:
    """Development rows vs. the final test window; ``embargo`` decision times sit between."""
    times = np.sort(ts.unique())
    n_test = max(1, round(len(times) * test_fraction))
    cut = len(times) - n_test
    if cut - embargo < 2:
        raise ValueError("not enough decision times for a test window; ingest more sessions")
    return Split(_positions(ts, times[: cut - embargo]), _positions(ts, times[cut:]))


def walk_forward_splits(ts: pd.Series, n_splits: int, embargo: int) -> list[Split]:
    """Expanding-window folds: fold k trains on blocks 0..k and validates on block k+1,
    dropping the last ``embargo`` decision times before each validation block."""
    times = np.sort(ts.unique())
    blocks = np.array_split(np.arange(len(times)), n_splits + 1)
    splits = []
    for k in range(n_splits):
        val_idx = blocks[k + 1]
        train_end = val_idx[0] - embargo
        if train_end < 2 or len(val_idx) == 0:
            raise ValueError("not enough decision times for walk-forward validation")
        splits.append(Split(_positions(ts, times[:train_end]), _positions(ts, times[val_idx])))
    return splits
