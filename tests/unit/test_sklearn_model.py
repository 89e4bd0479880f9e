"""The configurable scikit-learn family: learns a planted signal, survives NaN, round-trips,
parses its Optuna space and reports to the pruner."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from sklearn.metrics import roc_auc_score

from tradebot.kernel.errors import ConfigError
from tradebot.kernel.model_settings import SklearnSettings
from tradebot.models.base import Pruning
from tradebot.models.sklearn_model import SklearnDirectionModel, search_distributions

FEATURES = ["f0", "f1", "f2", "f3"]
LOGREG = SklearnSettings(estimator="sklearn.linear_model.LogisticRegression")
KNN = SklearnSettings(estimator="sklearn.neighbors.KNeighborsClassifier",
                      params={"n_neighbors": 25})


def _frame(n: int, seed: int, nan_share: float = 0.0) -> tuple[pd.DataFrame, np.ndarray]:
    """Rows whose label follows 2*f0 - 1.5*f1 (plus noise); f2, f3 are noise."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, len(FEATURES)))
    y = (rng.random(n) < 1 / (1 + np.exp(-(2 * X[:, 0] - 1.5 * X[:, 1])))).astype(int)
    if nan_share:
        X[rng.random(X.shape) < nan_share] = np.nan
    frame = pd.DataFrame(X, columns=FEATURES)
    frame.insert(0, "symbol", "AAPL")
    frame.insert(1, "ts", pd.date_range("2026-01-02 14:30", periods=n, freq="15min", tz="UTC"))
    return frame[["ts", *reversed(FEATURES), "symbol"]], y


def _fitted(spec: SklearnSettings, nan_share: float = 0.0) -> SklearnDirectionModel:
    train, y = _frame(600, seed=1, nan_share=nan_share)
    return SklearnDirectionModel.from_params({}, FEATURES, spec, seed=3).fit(train, y)


@pytest.mark.parametrize("spec", [LOGREG, KNN], ids=["logreg", "knn"])
def test_learns_planted_signal(spec: SklearnSettings) -> None:
    model = _fitted(spec)
    test, y = _frame(400, seed=2)
    prob = model.predict_proba(test)
    assert prob.dtype == np.float64 and prob.shape == (400,)
    assert roc_auc_score(y, prob) > 0.7
    assert model.context_bars == 1 and model.family == "sklearn"


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("scale", [True, False])
def test_nan_features_are_imputed(scale: bool) -> None:
    train, y_train = _frame(600, seed=1, nan_share=0.2)
    train["f3"] = np.nan  # a feature with no value in the whole window
    spec = LOGREG.model_copy(update={"scale": scale})
    model = SklearnDirectionModel.from_params({}, FEATURES, spec, seed=3).fit(train, y_train)
    test, y = _frame(400, seed=2, nan_share=0.2)
    test.loc[:5, "f2"] = np.inf
    prob = model.predict_proba(test)
    assert np.isfinite(prob).all()
    assert roc_auc_score(y, prob) > 0.65


def test_seed_reaches_estimators_with_random_state() -> None:
    spec = SklearnSettings(estimator="sklearn.ensemble.RandomForestClassifier",
                           params={"n_estimators": 5})
    model = SklearnDirectionModel.from_params({"max_depth": 3}, FEATURES, spec, seed=11)
    assert model.final_estimator.get_params()["random_state"] == 11
    assert model.final_estimator.get_params()["max_depth"] == 3
    knn = SklearnDirectionModel.from_params({}, FEATURES, KNN, seed=11)
    assert "random_state" not in knn.final_estimator.get_params()


def test_save_load_round_trip(tmp_path: Path) -> None:
    model = _fitted(LOGREG, nan_share=0.1)
    model.save(tmp_path / "member")
    loaded = SklearnDirectionModel.load(tmp_path / "member")
    test, _ = _frame(100, seed=5, nan_share=0.1)
    np.testing.assert_array_equal(loaded.predict_proba(test), model.predict_proba(test))
    assert loaded.features == FEATURES and loaded.estimator == LOGREG.estimator


def test_continue_fit_uses_partial_fit_or_refits() -> None:
    sgd = SklearnSettings(estimator="sklearn.linear_model.SGDClassifier",
                          params={"loss": "log_loss"})
    model = _fitted(sgd)
    before = model.final_estimator.coef_.copy()
    recent, y = _frame(200, seed=7)
    model.continue_fit(recent, y)
    assert not np.array_equal(before, model.final_estimator.coef_)
    assert model.predict_proba(recent).shape == (200,)
    knn = _fitted(KNN)
    knn.continue_fit(recent, y)
    assert knn.final_estimator.n_samples_fit_ == 200


@pytest.mark.parametrize("path", ["sklearn.linear_model.NoSuchModel", "nosuchpackage.Model",
                                  "LogisticRegression", "sklearn.metrics.roc_auc_score",
                                  "sklearn.linear_model.LinearRegression", "sklearn.svm.SVC"])
def test_bad_estimator_raises_config_error(path: str) -> None:
    with pytest.raises(ConfigError, match=path.replace(".", r"\.")):
        SklearnDirectionModel.from_params({}, FEATURES, SklearnSettings(estimator=path), seed=0)


def test_bad_constructor_params_raise_config_error() -> None:
    with pytest.raises(ConfigError, match="n_neighbours"):
        SklearnDirectionModel.from_params({"n_neighbours": 3}, FEATURES, KNN, seed=0)


def test_search_space_distributions() -> None:
    spec = SklearnSettings(search={"n_neighbors": [5, 50], "C": [0.01, 10, "log"],
                                   "alpha": [0.1, 0.9], "leaf_size": [10, 100, "log"],
                                   "weights": ["choice", "uniform", "distance"]})
    study = optuna.create_study()
    trial = study.ask()
    params = SklearnDirectionModel.search_space(trial, spec)
    assert set(params) == set(spec.search)
    assert trial.distributions == {
        "n_neighbors": IntDistribution(5, 50),
        "C": FloatDistribution(0.01, 10.0, log=True),
        "alpha": FloatDistribution(0.1, 0.9),
        "leaf_size": IntDistribution(10, 100, log=True),
        "weights": CategoricalDistribution(["uniform", "distance"]),
    }
    fixed = optuna.trial.FixedTrial({"n_neighbors": 7, "C": 1.0, "alpha": 0.5,
                                     "leaf_size": 30, "weights": "distance"})
    assert SklearnDirectionModel.search_space(fixed, spec)["weights"] == "distance"
    assert SklearnDirectionModel.default_params(spec) == {}


@pytest.mark.parametrize("entry", [[1], [1, 2, 3], [1, 2, "lin"], ["a", 2], [True, 5],
                                   [5, 1], [0, 1.0, "log"], ["choice"], ["choice", [1, 2]],
                                   [1, 2, "log", 4]])
def test_bad_search_entries_raise_config_error(entry: list) -> None:
    with pytest.raises(ConfigError, match="bad_key"):
        search_distributions(SklearnSettings(search={"bad_key": entry}))


class _PruningTrial:
    def __init__(self) -> None:
        self.reports: list[tuple[float, int]] = []

    def report(self, value: float, step: int) -> None:
        self.reports.append((value, step))

    def should_prune(self) -> bool:
        return True


def test_fit_reports_validation_auc_and_prunes() -> None:
    train, y = _frame(300, seed=1)
    valid = _frame(200, seed=2)
    trial = _PruningTrial()
    model = SklearnDirectionModel.from_params({}, FEATURES, LOGREG, seed=0)
    with pytest.raises(optuna.TrialPruned):
        model.fit(train, y, valid=valid, pruning=Pruning(trial, offset=4))  # type: ignore[arg-type]
    [(auc, step)] = trial.reports
    assert step == 4 and auc > 0.7
