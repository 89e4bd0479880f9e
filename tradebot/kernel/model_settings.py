"""Config sections of the model families, the ensemble and their Optuna budgets."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

FAMILIES = ("xgboost", "lstm", "transformer")
"""Built-in member families; any other member name refers to a ``[model.sklearn.NAME]``."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class XGBoostSettings(_Section):
    n_estimators: int = Field(200, ge=1)
    max_depth: int = Field(3, ge=1)
    learning_rate: float = Field(0.05, gt=0)
    n_jobs: int = Field(2, ge=1)
    incremental_rounds: int = Field(
        50, ge=1, description="Boosting rounds added to the previous booster by an incremental "
        "retrain")


class SequenceNetSettings(_Section):
    """What the two torch families share: the sequence, the training loop, the budget."""

    sequence_bars: int = Field(60, ge=1, description="Decision bars of history per prediction")
    epochs: int = Field(8, ge=1, description="Most epochs a fit runs (Optuna tunes below it)")
    fine_tune_epochs: int = Field(2, ge=1, description="Epochs of an incremental retrain")
    batch_size: int = Field(256, ge=8)
    learning_rate: float = Field(1e-3, gt=0)
    dropout: float = Field(0.1, ge=0, lt=1)
    n_trials: int | None = Field(
        4, ge=1, description="Optuna trials of this family (None: optuna.n_trials)")


class LSTMSettings(SequenceNetSettings):
    hidden_size: int = Field(32, ge=2)
    num_layers: int = Field(2, ge=1)


class TransformerSettings(SequenceNetSettings):
    d_model: int = Field(32, ge=4)
    n_heads: int = Field(4, ge=1)
    n_layers: int = Field(2, ge=1)
    sentiment_bars: int = Field(
        16, ge=1, description="Bars of the sentiment stream the price tokens attend to "
        "(16 x 15 min = a 4-hour context window)")
    patch_bars: int = Field(
        4, ge=1, description="Bars per price token (sequence_bars must be a multiple)")

    @model_validator(mode="after")
    def _shapes_fit(self) -> TransformerSettings:
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) must be a multiple of n_heads "
                             f"({self.n_heads})")
        if self.sequence_bars % self.patch_bars:
            raise ValueError(f"sequence_bars ({self.sequence_bars}) must be a multiple of "
                             f"patch_bars ({self.patch_bars})")
        return self


class SklearnSettings(_Section):
    """Any scikit-learn classifier: ``estimator`` is its import path."""

    estimator: str = Field("sklearn.linear_model.LogisticRegression",
                           description="Import path of a classifier with predict_proba")
    params: dict[str, Any] = Field(default_factory=dict, description="Fixed constructor args")
    search: dict[str, list[Any]] = Field(
        default_factory=dict,
        description="Optuna space: name = [low, high] (int or float), [low, high, 'log'], or "
        "['choice', a, b, ...]")
    scale: bool = Field(True, description="Standardise features first (NaN become 0)")


class EnsembleSettings(_Section):
    members: list[str] = Field(default_factory=lambda: list(FAMILIES), min_length=1)
    min_confidence: float = Field(
        0.0, ge=0, lt=0.5, description="Hold (no trade) when |P(up) - 0.5| is below this")
    recency_half_life_sessions: float = Field(
        5.0, gt=0, description="Weighting of the out-of-sample rows that set member weights")
    regime_feature: str | None = Field(
        None, description="Feature whose median splits two regimes with their own weights "
        "(e.g. 'natr_14')")

    @field_validator("members")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("ensemble members must be unique")
        return value


class ModelSettings(_Section):
    registered_name: str = "tradebot-direction"
    experiment: str = Field("tradebot", description="The ensemble's MLflow experiment; each "
                            "family logs to '<experiment>-<family>'")
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="Torch device: auto takes CUDA when present, else the CPU")
    torch_threads: int = Field(2, ge=1)
    xgboost: XGBoostSettings = XGBoostSettings()
    lstm: LSTMSettings = LSTMSettings()
    transformer: TransformerSettings = TransformerSettings()
    sklearn: dict[str, SklearnSettings] = Field(default_factory=dict)
    ensemble: EnsembleSettings = EnsembleSettings()

    @model_validator(mode="after")
    def _members_known(self) -> ModelSettings:
        clash = set(self.sklearn) & set(FAMILIES)
        if clash:
            raise ValueError(f"[model.sklearn.NAME] may not reuse a family name: {sorted(clash)}")
        known = set(FAMILIES) | set(self.sklearn)
        unknown = [m for m in self.ensemble.members if m not in known]
        if unknown:
            raise ValueError(f"unknown ensemble member(s) {unknown}: use {sorted(known)} or "
                             "define [model.sklearn.NAME] with an estimator")
        return self


class OptunaSettings(_Section):
    n_trials: int = Field(15, ge=1, description="Trials per member (full retrain)")
    timeout_seconds: float = Field(300, gt=0, description="Time budget per member")
    emergency_trials: int = Field(3, ge=1, description="Trials per member (emergency retrain)")
    emergency_timeout_seconds: float = Field(60, gt=0)
    n_splits: int = Field(3, ge=2, description="Walk-forward validation folds")
    embargo_bars: int = Field(2, ge=0, description="Gap between train and validation (>= horizon)")
    test_fraction: float = Field(0.2, gt=0, lt=0.5, description="Held-out test share")
    seed: int = 42
