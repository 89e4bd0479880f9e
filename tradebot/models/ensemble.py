"""The ensemble: member probabilities combined with weights set by each member's recent
out-of-sample performance, optionally per volatility regime, with a confidence threshold
below which it holds.

Weights are *dynamic*: every retrain (full, emergency, and the daily incremental one) sets
them again from the newest out-of-sample predictions, recency-weighted with a half-life in
sessions; a member no better than chance gets no weight.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from tradebot.models.base import DirectionModel
from tradebot.models.families import load_member

ENSEMBLE_FILE = "ensemble.json"
MIN_REGIME_ROWS = 50


def recency_weights(ts: pd.Series, half_life_sessions: float) -> np.ndarray:
    """0.5 ** (sessions before the newest session / half-life) per row."""
    days = pd.to_datetime(ts, utc=True).dt.tz_convert("America/New_York").dt.date
    order = {d: k for k, d in enumerate(sorted(set(days)))}
    age = len(order) - 1 - days.map(order).to_numpy(float)
    return 0.5 ** (age / half_life_sessions)


def skill_weights(oos: pd.DataFrame, names: list[str], weight: np.ndarray) -> dict[str, float]:
    """Each member's recency-weighted AUC above 0.5, normalised to sum 1 (equal weights when
    no member beats chance). ``oos`` holds ``label`` and one probability column per name."""
    y = oos["label"].to_numpy(int)
    if len(np.unique(y)) < 2:
        return {n: 1.0 / len(names) for n in names}
    skill = {n: max(0.0, float(roc_auc_score(y, oos[n], sample_weight=weight)) - 0.5)
             for n in names}
    total = sum(skill.values())
    if total <= 0:
        return {n: 1.0 / len(names) for n in names}
    return {n: s / total for n, s in skill.items()}


@dataclass(frozen=True)
class Weighting:
    """Member weights overall and, with a regime feature, below/above its threshold."""

    weights: dict[str, float]
    regime_feature: str | None = None
    regime_threshold: float | None = None
    regime_weights: dict[str, dict[str, float]] = field(default_factory=dict)

    @classmethod
    def fit(cls, oos: pd.DataFrame, names: list[str], half_life_sessions: float,
            regime_feature: str | None = None) -> Weighting:
        """Weights from out-of-sample predictions (columns ts, label, the regime feature and
        one probability column per member name)."""
        decay = recency_weights(oos["ts"], half_life_sessions)
        overall = skill_weights(oos, names, decay)
        if regime_feature is None or regime_feature not in oos:
            return cls(overall)
        value = oos[regime_feature].to_numpy(float)
        threshold = float(np.nanmedian(value))
        regimes: dict[str, dict[str, float]] = {}
        for regime, rows in (("low", value <= threshold), ("high", value > threshold)):
            part = oos[rows]
            enough = len(part) >= MIN_REGIME_ROWS and part["label"].nunique() == 2
            regimes[regime] = skill_weights(part, names, decay[rows]) if enough else overall
        return cls(overall, regime_feature, threshold, regimes)

    def combine(self, probs: pd.DataFrame, frame: pd.DataFrame) -> np.ndarray:
        """Weighted P(up) per row; rows use their regime's weights when regimes are set."""
        def mix(weights: Mapping[str, float], rows: pd.DataFrame) -> np.ndarray:
            return sum(w * rows[n].to_numpy(float) for n, w in weights.items())

        out = np.asarray(mix(self.weights, probs), float)
        if self.regime_feature is not None and self.regime_threshold is not None:
            value = frame[self.regime_feature].to_numpy(float)
            high = value > self.regime_threshold  # NaN: neither, keeps the overall weights
            low = value <= self.regime_threshold
            if high.any():
                out[high] = mix(self.regime_weights["high"], probs[high])
            if low.any():
                out[low] = mix(self.regime_weights["low"], probs[low])
        return out


@dataclass
class Ensemble:
    """Fitted members, their weighting and the trading thresholds, as one model."""

    members: dict[str, DirectionModel]
    weighting: Weighting
    min_confidence: float
    hold_probability: float
    family: str = "ensemble"

    @property
    def context_bars(self) -> int:
        return max(m.context_bars for m in self.members.values())

    @property
    def features(self) -> list[str]:
        """Every feature some member reads (with the regime feature), in first-seen order."""
        seen: dict[str, None] = {}
        for model in self.members.values():
            seen.update(dict.fromkeys(model.features))
        if self.weighting.regime_feature:
            seen[self.weighting.regime_feature] = None
        return list(seen)

    def member_probs(self, frame: pd.DataFrame, at: np.ndarray | None = None) -> pd.DataFrame:
        """Each member's P(up) of every row, or of the rows at positions ``at``."""
        index = frame.index if at is None else frame.index[at]
        return pd.DataFrame({n: np.asarray(m.predict_proba(frame, at), float)
                             for n, m in self.members.items()}, index=index)

    def raw_proba(self, frame: pd.DataFrame, at: np.ndarray | None = None) -> np.ndarray:
        """The weighted P(up), before the confidence threshold."""
        rows = frame if at is None else frame.iloc[at]
        return self.weighting.combine(self.member_probs(frame, at), rows)

    def predict_proba(self, frame: pd.DataFrame, at: np.ndarray | None = None) -> np.ndarray:
        """P(up) to trade on: below ``min_confidence`` from 0.5 it is the hold value (the
        strategy's exit probability), which neither opens nor closes a position."""
        return self.hold(self.raw_proba(frame, at))

    def hold(self, prob: np.ndarray) -> np.ndarray:
        """``prob`` with the unconfident rows set to the hold value."""
        unsure = np.abs(prob - 0.5) < self.min_confidence
        return np.where(unsure, self.hold_probability, prob)

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        for name, model in self.members.items():
            model.save(directory / name)
        (directory / ENSEMBLE_FILE).write_text(json.dumps({
            "members": {n: m.family for n, m in self.members.items()},
            "weighting": asdict(self.weighting), "min_confidence": self.min_confidence,
            "hold_probability": self.hold_probability}, indent=2))

    @classmethod
    def load(cls, directory: Path) -> Ensemble:
        meta = json.loads((directory / ENSEMBLE_FILE).read_text())
        members = {n: load_member(f, directory / n) for n, f in meta["members"].items()}
        return cls(members, Weighting(**meta["weighting"]), meta["min_confidence"],
                   meta["hold_probability"])
