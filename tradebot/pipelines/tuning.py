"""Optuna per ensemble member on walk-forward folds with purge/embargo.

Each member has its own study in RDB storage (optuna.db, or PostgreSQL), seeded, with the
configured trial and time budget; trial 0 is the configured defaults. Every fold reports the
validation AUC per boosting round (XGBoost's pruning callback) or epoch (torch) to a median
pruner. The best trial's validation-fold predictions are the member's out-of-sample record
from which the ensemble sets its weights.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import optuna
import pandas as pd

from tradebot.kernel.errors import DataError
from tradebot.kernel.settings import TradebotSettings
from tradebot.models.base import Pruning, predict_after
from tradebot.models.evaluation import classification_metrics
from tradebot.models.families import Member
from tradebot.models.validation import Split, walk_forward_splits

Progress = Callable[[int, int], None]
STEPS_PER_FOLD = 10_000  # pruning steps reserved per fold (rounds or epochs)
OOS_COLUMNS = ["symbol", "ts", "label"]


@dataclass(frozen=True)
class Budget:
    """Optuna's trial and time budget of one member."""

    n_trials: int
    timeout_seconds: float

    @classmethod
    def of(cls, member: Member, settings: TradebotSettings, emergency: bool) -> Budget:
        opt = settings.optuna
        timeout = opt.emergency_timeout_seconds if emergency else opt.timeout_seconds
        return cls(member.n_trials(emergency), timeout)


@dataclass(frozen=True)
class TunedMember:
    """A member's best parameters, its study and its best trial's out-of-sample rows
    (``symbol, ts, label`` and the member's P(up) in a column named after it)."""

    member: Member
    params: dict
    study: optuna.Study
    cv_auc: float
    oos: pd.DataFrame


def embargo_bars(settings: TradebotSettings) -> int:
    """The purge/embargo gap: at least the label horizon (labels of the last training rows
    look that many bars ahead, into the validation block)."""
    return max(settings.optuna.embargo_bars, settings.label.horizon_bars)


def dev_splits(dev: pd.DataFrame, settings: TradebotSettings) -> list[Split]:
    try:
        return walk_forward_splits(dev["ts"], settings.optuna.n_splits, embargo_bars(settings))
    except ValueError:
        raise DataError(f"too few decision times ({dev['ts'].nunique()}) for "
                        f"{settings.optuna.n_splits} walk-forward folds: ingest more sessions "
                        "or lower optuna.n_splits") from None


def fold_predictions(member: Member, params: dict, dev: pd.DataFrame, features: list[str],
                     splits: list[Split], seed: int, trial: optuna.Trial | None = None
                     ) -> tuple[float, pd.DataFrame]:
    """Fit on each fold's training rows and predict its validation rows; returns the mean
    fold AUC and the validation rows with the member's P(up)."""
    y = dev["label"].to_numpy(int)
    scores, parts = [], []
    for k, split in enumerate(splits):
        train, valid = dev.iloc[split.train], dev.iloc[split.valid]
        model = member.build(params, features, seed)
        pruning = Pruning(trial).at_fold(k, STEPS_PER_FOLD) if trial is not None else None
        model.fit(train, y[split.train], valid=(valid, y[split.valid]), pruning=pruning)
        prob = predict_after(model, train, valid)
        scores.append(classification_metrics(y[split.valid], prob)["auc"])
        parts.append(valid[OOS_COLUMNS].assign(**{member.name: prob}))
    return float(np.mean(scores)), pd.concat(parts, ignore_index=True)


def tune_member(member: Member, dev: pd.DataFrame, features: list[str],
                settings: TradebotSettings, storage: str, study_name: str, budget: Budget,
                progress: Progress | None = None) -> TunedMember:
    """Search ``member``'s space on the walk-forward folds of ``dev``; a study of the same
    name in ``storage`` is resumed (its finished trials count against the budget)."""
    seed = settings.optuna.seed
    splits = dev_splits(dev, settings)
    oos_by_trial: dict[int, pd.DataFrame] = {}

    def objective(trial: optuna.Trial) -> float:
        params = member.search_space(trial)
        score, oos = fold_predictions(member, params, dev, features, splits, seed, trial)
        oos_by_trial[trial.number] = oos
        return score

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=study_name, storage=storage, direction="maximize", load_if_exists=True,
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3),
    )
    done = len([t for t in study.trials if t.state.is_finished()])
    if done == 0:
        study.enqueue_trial(member.default_params())
    remaining = max(0, budget.n_trials - done)
    callbacks = ([lambda s, _t: progress(min(len(s.trials), budget.n_trials), budget.n_trials)]
                 if progress else [])
    if remaining:
        study.optimize(objective, n_trials=remaining, timeout=budget.timeout_seconds,
                       callbacks=callbacks, gc_after_trial=False)
    completed = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not completed:
        raise DataError(f"no Optuna trial of {member.name} completed within "
                        f"{budget.timeout_seconds:.0f} s: raise the optuna time budget")
    best = study.best_trial
    params = member.search_space(optuna.trial.FixedTrial(best.params))
    oos = oos_by_trial.get(best.number)
    if oos is None:  # the best trial ran in an earlier process: predict its folds again
        _, oos = fold_predictions(member, params, dev, features, splits, seed)
    return TunedMember(member, params, study, float(best.value), oos)
