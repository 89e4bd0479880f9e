"""The interface every ensemble member implements, and the Optuna pruning hook it reports to.

A model reads a *frame*: one row per (symbol, decision time) with columns ``symbol``, ``ts``
and the feature columns, in any order. ``predict_proba`` returns P(up) per row, aligned with
the frame. Tabular models read each row alone (``context_bars == 1``); sequence models read
the row and up to ``context_bars - 1`` earlier rows *of the same symbol in the frame*, never a
later one, so a prediction is point-in-time whatever else the frame holds. To predict rows
whose history lies outside the frame, prepend that history (:func:`predict_after`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np
import optuna
import pandas as pd


class Pruning:
    """Reports a member's validation score per epoch (or boosting round) to an Optuna trial
    and raises :class:`optuna.TrialPruned` when the pruner says so.

    Folds of one trial report on consecutive step ranges (``offset``), so the pruner compares
    trials at the same fold and epoch. The object also quacks like a trial (``report`` with a
    ``step`` keyword, ``should_prune``), which is what ``XGBoostPruningCallback`` calls."""

    def __init__(self, trial: optuna.Trial, offset: int = 0, every: int = 1) -> None:
        self.trial = trial
        self.offset = offset
        self.every = every
        self._reported = False

    def at_fold(self, fold: int, steps_per_fold: int) -> Pruning:
        return Pruning(self.trial, fold * steps_per_fold, self.every)

    def thinned(self, every: int) -> Pruning:
        """Only every ``every``-th step reaches the trial (each report is a write to the
        study's database: boosting rounds are many)."""
        return Pruning(self.trial, self.offset, every)

    def report(self, value: float, step: int) -> None:
        self._reported = (step + 1) % self.every == 0
        if self._reported:
            self.trial.report(float(value), self.offset + step)

    def should_prune(self) -> bool:
        return self._reported and self.trial.should_prune()

    def epoch_end(self, epoch: int, value: float) -> None:
        """Report ``value`` after ``epoch``; raise ``TrialPruned`` if the trial should stop."""
        self.report(value, epoch)
        if self.should_prune():
            raise optuna.TrialPruned(f"pruned at step {self.offset + epoch}")


class DirectionModel(Protocol):
    """A binary classifier of the forward-return direction."""

    family: ClassVar[str]
    features: list[str]

    @property
    def context_bars(self) -> int:
        """Rows per symbol a prediction reads: 1 for tabular models."""

    def fit(self, frame: pd.DataFrame, y: np.ndarray, *,
            valid: tuple[pd.DataFrame, np.ndarray] | None = None,
            pruning: Pruning | None = None) -> DirectionModel:
        """Fit on ``frame``; with ``valid`` and ``pruning``, report the validation AUC per
        epoch/round so Optuna can stop a hopeless trial."""

    def continue_fit(self, frame: pd.DataFrame, y: np.ndarray,
                     steps: int | None = None) -> DirectionModel:
        """Incremental retrain: continue from the fitted state on (recent) data for ``steps``
        boosting rounds or epochs (None: the model's own default)."""

    def predict_proba(self, frame: pd.DataFrame, at: np.ndarray | None = None) -> np.ndarray:
        """P(up) per row of ``frame``, or of the rows at positions ``at`` only (the others
        are then context: the trade cycle predicts the newest rows only)."""

    def save(self, directory: Path) -> None:
        """Write everything :meth:`load` needs into ``directory``."""

    @classmethod
    def load(cls, directory: Path) -> DirectionModel:
        """The model :meth:`save` wrote."""


def newest_rows(frame: pd.DataFrame) -> np.ndarray:
    """Positions of the rows at the frame's newest decision time."""
    ts = frame["ts"]
    return np.flatnonzero((ts == ts.max()).to_numpy())


@dataclass(frozen=True)
class Predictor:
    """P(up) per feature row, as the trade cycle calls it, and the decision times of rows per
    symbol it reads (the trade cycle hands it that much context). ``predict_newest``, when
    given, predicts only the rows at the newest decision time (the rest is context), so a
    cycle does not pay for predicting its context."""

    predict: Callable[[pd.DataFrame], np.ndarray]
    context_bars: int = 1
    predict_newest: Callable[[pd.DataFrame], np.ndarray] | None = None

    def __call__(self, rows: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.predict(rows), float)

    def newest(self, context: pd.DataFrame) -> np.ndarray:
        """P(up) of the rows of ``context`` at its newest decision time, in frame order."""
        if self.predict_newest is not None:
            return np.asarray(self.predict_newest(context), float)
        return self(context)[newest_rows(context)]

    @classmethod
    def of(cls, model: Any) -> Predictor:
        """A fitted model (or ensemble) as a predictor."""
        return cls(model.predict_proba, int(model.context_bars),
                   lambda context: model.predict_proba(context, newest_rows(context)))


def predict_after(model: Any, history: pd.DataFrame | None, rows: pd.DataFrame) -> np.ndarray:
    """P(up) for ``rows``, with ``history`` (earlier rows, e.g. the training data before a test
    window) prepended as context for sequence models. Only the last ``context_bars - 1``
    decision times of the history are used."""
    need = int(model.context_bars) - 1
    if need <= 0 or history is None or history.empty:
        return np.asarray(model.predict_proba(rows), float)
    times = np.sort(history["ts"].unique())[-need:]
    context = history[history["ts"].isin(times) & history["symbol"].isin(rows["symbol"])]
    frame = pd.concat([context, rows], ignore_index=True)
    prob = np.asarray(model.predict_proba(frame), float)
    return prob[len(context):]
