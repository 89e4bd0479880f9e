"""The ML validity tests of the ensemble, through ``tradebot ingest``, ``features`` and
``train`` on the synthetic market: with the planted signal it must find it out of sample
(test AUC >= 0.55, positive Sharpe after costs on its test-window backtest); on pure noise
(``synthetic.signal_strength = 0``) it must not (test AUC 0.50 +/- 0.03) and the gate must
refuse it. Seeds are fixed, so the figures are reproducible."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.kit.config import TINY_NETS_TOML
from tradebot.cli.main import app

pytestmark = [pytest.mark.prefect, pytest.mark.slow]
WIDE = {"COLUMNS": "200"}
UNTIL = "2026-04-14"  # session 31 of 36: the incremental retrain gets the sessions after it
CONFIG = """
home = "{home}"
[data]
start = 2026-03-02
sessions = 36
replay_sessions = 1
[optuna]
n_trials = 3
n_splits = 2
test_fraction = 0.3
[model]
torch_threads = 1
[model.xgboost]
n_estimators = 100
n_jobs = 1
incremental_rounds = 100
[synthetic]
signal_strength = {signal}
""" + TINY_NETS_TOML


def _invoke(config: Path, *args: str) -> Any:
    result = CliRunner().invoke(app, ["--config", str(config), *args], env=WIDE)
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result


def _home(tmp_path: Path, signal: float) -> Path:
    config = tmp_path / "validity.toml"
    config.write_text(CONFIG.format(home=(tmp_path / "home").as_posix(), signal=signal))
    _invoke(config, "ingest")
    _invoke(config, "features")
    return config


def _versions(config: Path) -> list[dict[str, Any]]:
    return json.loads(_invoke(config, "models", "--json").stdout)


def _run(config: Path, version: dict[str, Any]) -> Any:
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(f"sqlite:///{config.parent / 'home' / 'mlflow.db'}")
    return MlflowClient().get_run(version["run_id"])


def test_planted_signal_found_then_an_incremental_retrain_continues_it(
        tmp_path, prefect_server) -> None:
    config = _home(tmp_path, 0.8)
    _invoke(config, "train", "--until", UNTIL)  # leaves sessions for the incremental retrain
    [full] = _versions(config)
    metrics = full["metrics"]
    assert metrics["test_auc"] >= 0.55, metrics
    assert metrics["bt_sharpe"] > 0, metrics
    assert full["gate_decision"] == "promoted" and "champion" in full["aliases"]

    _invoke(config, "train", "--mode", "incremental")
    newest = _versions(config)[0]
    assert newest["version"] == "2" and newest["gate_decision"] in ("promoted", "rejected")
    before, after = _run(config, full), _run(config, newest)
    assert after.data.params["train.mode"] == "incremental"
    assert after.data.params["data.window"] != before.data.params["data.window"]
    for member in ("xgboost", "lstm", "transformer"):
        assert 0.0 <= after.data.metrics[f"weight_{member}"] <= 1.0
    rounds = [_ensemble(config, v).members["xgboost"].booster.num_boosted_rounds()
              for v in ("1", "2")]
    assert rounds[1] == rounds[0] + 100  # tiny config: incremental_rounds = 100


def _ensemble(config: Path, version: str) -> Any:
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{config.parent / 'home' / 'mlflow.db'}")
    model = mlflow.pyfunc.load_model(f"models:/tradebot-direction/{version}")
    return model.unwrap_python_model().ensemble


def test_ensemble_finds_nothing_in_noise_and_the_gate_refuses(tmp_path, prefect_server) -> None:
    config = _home(tmp_path, 0.0)
    _invoke(config, "train")
    [version] = _versions(config)
    metrics = version["metrics"]
    assert abs(metrics["test_auc"] - 0.5) <= 0.03, metrics
    assert version["gate_decision"] == "rejected", version["gate_reason"]
    assert "champion" not in version["aliases"]
