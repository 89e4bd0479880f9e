"""The torch families (LSTM, multi-modal transformer): they learn a signal that only the row's
history carries, never read a later row or another symbol, reproduce, save/load, fine-tune,
and report per-epoch validation AUC to Optuna."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import pytest
import torch
from sklearn.metrics import roc_auc_score

from tradebot.kernel.errors import ConfigError
from tradebot.kernel.settings import TradebotSettings
from tradebot.models import device as device_module
from tradebot.models.base import Predictor, Pruning, newest_rows, predict_after
from tradebot.models.device import select_device
from tradebot.models.lstm import LSTMDirectionModel
from tradebot.models.torch_training import SequenceDirectionModel
from tradebot.models.transformer import TransformerDirectionModel, is_sentiment_column

SETTINGS = TradebotSettings(model={
    "device": "cpu", "torch_threads": 1,  # tiny nets: one thread is fastest
    "lstm": {"sequence_bars": 4, "hidden_size": 8, "num_layers": 2, "epochs": 3,
             "fine_tune_epochs": 1, "batch_size": 16, "learning_rate": 1e-2},
    "transformer": {"sequence_bars": 4, "sentiment_bars": 4, "d_model": 8, "n_heads": 2,
                    "n_layers": 1, "epochs": 3, "fine_tune_epochs": 1, "batch_size": 16,
                    "learning_rate": 1e-2},
})
FAMILIES = {"lstm": (LSTMDirectionModel, "signal"),
            "transformer": (TransformerDirectionModel, "news_sent_60m")}
"""Each family with the column its planted signal lives in (the transformer's is a sentiment
column, so only the cross-attention path can carry it)."""


def planted(signal_column: str, rows_per_symbol: int, seed: int) -> pd.DataFrame:
    """label = 1 when the signal 2 rows earlier (same symbol) was positive; shuffled rows."""
    rng = np.random.default_rng(seed)
    parts = []
    for symbol in ("AAA", "BBB", "CCC", "DDD"):
        x = rng.normal(size=rows_per_symbol)
        label = np.r_[0.0, 0.0, (x[:-2] > 0).astype(float)]
        parts.append(pd.DataFrame({"symbol": symbol, "ts": np.arange(rows_per_symbol) * 900,
                                   signal_column: x, "noise": rng.normal(size=rows_per_symbol),
                                   "label": label}))
    frame = pd.concat(parts, ignore_index=True)
    return frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def build(family: str, seed: int = 3, **params: Any) -> SequenceDirectionModel:
    cls, column = FAMILIES[family]
    return cls.from_params(params, [column, "noise"], SETTINGS, seed)


@pytest.fixture(scope="module", autouse=True)
def _restore_torch_threads() -> Any:
    """The models set torch's (process-wide) thread count; put it back for other modules."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module", params=list(FAMILIES))
def fitted(request: pytest.FixtureRequest) -> tuple[SequenceDirectionModel, pd.DataFrame]:
    """A fitted model of each family and held-out rows of its planted pattern."""
    family = request.param
    train = planted(FAMILIES[family][1], 150, seed=10)
    model = build(family).fit(train, train["label"].to_numpy())
    return model, planted(FAMILIES[family][1], 50, seed=20)


def test_learns_the_pattern_in_the_rows_history(fitted: Any) -> None:
    model, test = fitted
    proba = model.predict_proba(test)
    assert proba.dtype == np.float64 and proba.shape == (len(test),)
    assert roc_auc_score(test["label"], proba) > 0.7


def test_no_lookahead_later_rows_and_other_symbols_change_no_prediction(fitted: Any) -> None:
    model, test = fitted
    full = model.predict_proba(test)
    cutoff = np.sort(test["ts"].unique())[20]
    early = test["ts"] <= cutoff
    np.testing.assert_allclose(model.predict_proba(test[early]), full[early.to_numpy()],
                               atol=1e-6)
    alone = (test["symbol"] == "BBB").to_numpy()
    np.testing.assert_allclose(model.predict_proba(test[alone]), full[alone], atol=1e-6)


def test_row_order_and_predict_after_context(fitted: Any) -> None:
    model, test = fitted
    full = pd.Series(model.predict_proba(test), index=test.index)
    shuffled = test.sample(frac=1.0, random_state=5)
    np.testing.assert_allclose(model.predict_proba(shuffled), full[shuffled.index], atol=1e-6)
    cutoff = np.sort(test["ts"].unique())[30]
    history, rows = test[test["ts"] <= cutoff], test[test["ts"] > cutoff]
    np.testing.assert_allclose(predict_after(model, history, rows), full[rows.index],
                               atol=1e-6)


def test_predicting_only_some_rows_reads_the_others_as_context(fitted: Any) -> None:
    """What the trade cycle does: predict the newest rows, the rest being their history."""
    model, test = fitted
    full = model.predict_proba(test)
    at = newest_rows(test)
    assert len(at) == test["symbol"].nunique()
    np.testing.assert_allclose(model.predict_proba(test, at), full[at], atol=1e-6)
    np.testing.assert_allclose(Predictor.of(model).newest(test), full[at], atol=1e-6)


def test_save_load_round_trip_predicts_the_same(fitted: Any, tmp_path: Path) -> None:
    model, test = fitted
    model.save(tmp_path / "member")
    loaded = type(model).load(tmp_path / "member")
    assert loaded.features == model.features and loaded.params == model.params
    assert loaded.context_bars == model.context_bars
    np.testing.assert_array_equal(loaded.predict_proba(test), model.predict_proba(test))


@pytest.mark.parametrize("family", list(FAMILIES))
def test_same_seed_same_data_gives_identical_predictions(family: str) -> None:
    data = planted(FAMILIES[family][1], 60, seed=1)
    first = build(family, epochs=2).fit(data, data["label"].to_numpy()).predict_proba(data)
    second = build(family, epochs=2).fit(data, data["label"].to_numpy()).predict_proba(data)
    np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_continue_fit_moves_the_weights_and_keeps_the_scaler(family: str) -> None:
    data = planted(FAMILIES[family][1], 60, seed=1)
    model = build(family, epochs=1).fit(data, data["label"].to_numpy())
    before = {k: v.clone() for k, v in model.net.state_dict().items()}
    scaler = model.scaler
    recent = planted(FAMILIES[family][1], 30, seed=2)
    model.continue_fit(recent, recent["label"].to_numpy())
    after = model.net.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert model.scaler is scaler
    assert np.isfinite(model.predict_proba(recent)).all()


class FakeTrial:
    def __init__(self, prune: bool) -> None:
        self.prune = prune
        self.reports: list[tuple[int, float]] = []

    def report(self, value: float, step: int) -> None:
        self.reports.append((step, value))

    def should_prune(self) -> bool:
        return self.prune


@pytest.mark.parametrize("family", list(FAMILIES))
def test_pruned_trial_stops_after_the_first_epoch(family: str) -> None:
    data = planted(FAMILIES[family][1], 40, seed=1)
    valid = planted(FAMILIES[family][1], 20, seed=2)
    trial = FakeTrial(prune=True)
    with pytest.raises(optuna.TrialPruned):
        build(family, epochs=3).fit(data, data["label"].to_numpy(),
                                    valid=(valid, valid["label"].to_numpy()),
                                    pruning=Pruning(trial))  # type: ignore[arg-type]
    assert [step for step, _ in trial.reports] == [0]


@pytest.mark.parametrize("family", list(FAMILIES))
def test_validation_auc_is_reported_once_per_epoch(family: str) -> None:
    data = planted(FAMILIES[family][1], 40, seed=1)
    valid = planted(FAMILIES[family][1], 20, seed=2)
    trial = FakeTrial(prune=False)
    model = build(family, epochs=2).fit(
        data, data["label"].to_numpy(), valid=(valid, valid["label"].to_numpy()),
        pruning=Pruning(trial).at_fold(1, steps_per_fold=2))  # type: ignore[arg-type]
    assert [step for step, _ in trial.reports] == [2, 3]
    assert [auc for _, auc in trial.reports] == model.history
    assert all(0.0 <= auc <= 1.0 for auc in model.history)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_default_params_are_a_point_of_the_search_space(family: str) -> None:
    cls = FAMILIES[family][0]
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    defaults = cls.default_params(SETTINGS)
    study.enqueue_trial(defaults)
    assert cls.search_space(study.ask(), SETTINGS) == defaults
    assert set(cls.search_space(study.ask(), SETTINGS)) == set(defaults)


@pytest.mark.parametrize("features", [["signal", "noise"], ["news_sent_60m", "post_count_240m"]])
def test_transformer_works_without_one_of_its_streams_and_with_nan(features: list[str]) -> None:
    data = planted("signal", 30, seed=1).rename(columns={"signal": features[0],
                                                         "noise": features[1]})
    data.loc[data.index % 3 == 0, features[0]] = np.nan
    model = TransformerDirectionModel.from_params({"epochs": 1}, features, SETTINGS, 0)
    proba = model.fit(data, data["label"].to_numpy()).predict_proba(data)
    assert np.isfinite(proba).all()


def test_context_bars_and_sentiment_columns() -> None:
    settings = TradebotSettings(model={"transformer": {"sequence_bars": 4, "sentiment_bars": 6,
                                                       "d_model": 8, "n_heads": 2}})
    assert TransformerDirectionModel.from_params({}, ["x"], settings, 0).context_bars == 6
    assert build("lstm").context_bars == 4
    assert is_sentiment_column("news_sent_60m") and is_sentiment_column("post_count_240m")
    assert is_sentiment_column("news_sent_decay_30m")
    assert not is_sentiment_column("ret_1") and not is_sentiment_column("natr_14")


def test_select_device(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(device_module.torch.cuda, "is_available", lambda: False)
    assert select_device("cpu") == torch.device("cpu")
    assert select_device("auto") == torch.device("cpu")
    with pytest.raises(ConfigError, match="cuda"):
        select_device("cuda")
    cuda_settings = TradebotSettings(model={"device": "cuda"})
    with pytest.raises(ConfigError):
        LSTMDirectionModel.from_params({}, ["x"], cuda_settings, 0)
