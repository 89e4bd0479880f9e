"""Fit the ensemble: each member tuned on the validation folds and refitted on all development
rows (full and emergency retrains), or the champion's members continued on the rows that came
after it (incremental retrain). Member weights come from out-of-sample predictions either way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

from tradebot.kernel.errors import DataError
from tradebot.kernel.settings import TradebotSettings
from tradebot.models.base import DirectionModel, predict_after
from tradebot.models.ensemble import Ensemble, Weighting
from tradebot.models.families import Member, members
from tradebot.pipelines.tuning import OOS_COLUMNS, Budget, TunedMember, tune_member

MODES = ("full", "incremental", "emergency")
MemberProgress = Callable[[str, int, int], None]


@dataclass
class FittedEnsemble:
    """The ensemble, how each member got its parameters, and the out-of-sample rows that set
    the weights."""

    ensemble: Ensemble
    mode: str
    tuned: dict[str, TunedMember] = field(default_factory=dict)
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    oos: pd.DataFrame = field(default_factory=pd.DataFrame)


def _weighting(oos: pd.DataFrame, names: list[str], dev: pd.DataFrame,
               settings: TradebotSettings) -> Weighting:
    cfg = settings.model.ensemble
    regime = cfg.regime_feature
    if regime is not None:
        if regime not in dev:
            raise DataError(f"model.ensemble.regime_feature {regime!r} is not a feature column")
        oos = oos.merge(dev[["symbol", "ts", regime]], on=["symbol", "ts"], how="left")
    return Weighting.fit(oos, names, cfg.recency_half_life_sessions, regime)


def _assemble(models: dict[str, DirectionModel], weighting: Weighting,
              settings: TradebotSettings) -> Ensemble:
    return Ensemble(models, weighting, settings.model.ensemble.min_confidence,
                    settings.strategy.exit_probability)


def fit_tuned(dev: pd.DataFrame, features: list[str], settings: TradebotSettings,
              storage: str, study_prefix: str, *, emergency: bool = False,
              names: list[str] | None = None,
              progress: MemberProgress | None = None) -> FittedEnsemble:
    """Full (or, with ``emergency``, small-budget) retrain: tune every member on the folds
    of ``dev``, refit it on all of ``dev`` with its best parameters, weight by the best
    trials' validation-fold predictions."""
    seed = settings.optuna.seed
    tuned: dict[str, TunedMember] = {}
    models: dict[str, DirectionModel] = {}
    y = dev["label"].to_numpy(int)
    for member in members(settings, names):
        budget = Budget.of(member, settings, emergency)
        report = (lambda done, total, n=member.name: progress(n, done, total)) \
            if progress else None
        tuned[member.name] = tune_member(member, dev, features, settings, storage,
                                         f"{study_prefix}-{member.name}", budget, report)
        models[member.name] = member.build(tuned[member.name].params, features, seed)
        models[member.name].fit(dev, y)
    oos = _merge_oos(list(tuned.values()))
    weighting = _weighting(oos, list(models), dev, settings)
    return FittedEnsemble(_assemble(models, weighting, settings),
                          "emergency" if emergency else "full", tuned,
                          {n: t.params for n, t in tuned.items()}, oos)


def _merge_oos(tuned: list[TunedMember]) -> pd.DataFrame:
    merged = tuned[0].oos
    for item in tuned[1:]:
        merged = merged.merge(item.oos.drop(columns="label"), on=["symbol", "ts"], how="inner")
    return merged


def fit_incremental(previous: Ensemble, dev: pd.DataFrame, since: datetime,
                    settings: TradebotSettings, names: list[str] | None = None
                    ) -> FittedEnsemble:
    """Incremental retrain: the previous members' predictions on the development rows from
    ``since`` on (the start of the previous model's test window: rows it never trained on)
    set the new weights; then the members named in
    ``names`` (default all) continue on those rows: XGBoost adds boosting rounds to its
    booster, the nets fine-tune a few epochs, scikit-learn models partial_fit or refit."""
    recent = dev[dev["ts"] >= pd.Timestamp(since)]
    if recent["ts"].nunique() < 2 or recent["label"].nunique() < 2:
        raise DataError(f"too few labelled development rows since the champion's training "
                        f"rows ended ({since.isoformat()}) to continue on: ingest and build "
                        "features for newer sessions, or run 'tradebot train --mode full'")
    chosen = names or list(previous.members)
    unknown = [n for n in chosen if n not in previous.members]
    if unknown:
        raise DataError(f"the champion has no member(s) {unknown} to continue (it has "
                        f"{list(previous.members)}): run 'tradebot train --mode full'")
    history = dev[dev["ts"] < pd.Timestamp(since)]
    oos = recent[OOS_COLUMNS].copy()
    for name, model in previous.members.items():
        oos[name] = predict_after(model, history, recent)
    y = recent["label"].to_numpy(int)
    for name in chosen:
        model = previous.members[name]
        steps = Member(name, model.family, settings).incremental_steps()
        model.continue_fit(recent, y, steps)
    weighting = _weighting(oos, list(previous.members), dev, settings)
    return FittedEnsemble(_assemble(dict(previous.members), weighting, settings), "incremental",
                          {}, {n: {"continued": n in chosen} for n in previous.members}, oos)
