"""Ensemble members by name: the built-in families and the scikit-learn classifiers named in
``[model.sklearn.NAME]``, each with its constructor, Optuna search space and loader."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from tradebot.kernel.errors import ConfigError
from tradebot.kernel.model_settings import FAMILIES
from tradebot.kernel.settings import TradebotSettings
from tradebot.models.base import DirectionModel


def family_class(family: str) -> Any:
    """The model class of a family (imported on demand: torch is heavy)."""
    if family == "xgboost":
        from tradebot.models.xgb import XGBDirectionModel
        return XGBDirectionModel
    if family == "lstm":
        from tradebot.models.lstm import LSTMDirectionModel
        return LSTMDirectionModel
    if family == "transformer":
        from tradebot.models.transformer import TransformerDirectionModel
        return TransformerDirectionModel
    if family == "sklearn":
        from tradebot.models.sklearn_model import SklearnDirectionModel
        return SklearnDirectionModel
    raise ConfigError(f"unknown model family {family!r}: use one of {[*FAMILIES, 'sklearn']}")


@dataclass(frozen=True)
class Member:
    """One configured ensemble member: ``name`` is how the config and MLflow call it."""

    name: str
    family: str
    settings: TradebotSettings

    @property
    def _spec(self) -> Any:
        return self.settings.model.sklearn[self.name] if self.family == "sklearn" else None

    @property
    def _config(self) -> Any:
        return self._spec if self.family == "sklearn" else self.settings

    def build(self, params: dict[str, Any], features: list[str], seed: int) -> DirectionModel:
        cls = family_class(self.family)
        return cls.from_params(params, features, self._config, seed)

    def search_space(self, trial: optuna.Trial) -> dict[str, Any]:
        return family_class(self.family).search_space(trial, self._config)

    def default_params(self) -> dict[str, Any]:
        return family_class(self.family).default_params(self._config)

    def incremental_steps(self) -> int | None:
        """Rounds (XGBoost) or epochs (nets) an incremental retrain adds, from the config."""
        model = self.settings.model
        if self.family == "xgboost":
            return model.xgboost.incremental_rounds
        if self.family in ("lstm", "transformer"):
            return getattr(model, self.family).fine_tune_epochs
        return None

    def n_trials(self, emergency: bool) -> int:
        opt = self.settings.optuna
        if emergency:
            return opt.emergency_trials
        own = getattr(self.settings.model, self.family, None)
        return getattr(own, "n_trials", None) or opt.n_trials


def members(settings: TradebotSettings, names: list[str] | None = None) -> list[Member]:
    """The configured ensemble members, or the ``names`` subset of them (``--models``)."""
    configured = settings.model.ensemble.members
    chosen = names or configured
    known = set(FAMILIES) | set(settings.model.sklearn)
    unknown = [n for n in chosen if n not in known]
    if unknown:
        raise ConfigError(f"unknown model(s) {unknown}: choose from {sorted(known)} (sklearn "
                          "members are defined as [model.sklearn.NAME])")
    return [Member(n, n if n in FAMILIES else "sklearn", settings) for n in chosen]


def load_member(family: str, directory: Path) -> DirectionModel:
    return family_class(family).load(directory)
