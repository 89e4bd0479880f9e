"""``tradebot models`` and ``tradebot promote`` on the demo's home; a retrain on the same data is
judged against the champion backtested on the same test window and only becomes challenger."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tradebot.cli.main import app
from tradebot.kernel.errors import NoChampionError, TradebotError

WIDE = {"COLUMNS": "200"}
NAME = "tradebot-direction"

pytestmark = pytest.mark.prefect


def _invoke(config: Path, *args: str) -> Any:
    return CliRunner().invoke(app, ["--config", str(config), *args], env=WIDE)


def _models(config: Path) -> list[dict[str, Any]]:
    result = _invoke(config, "models", "--json")
    assert result.exit_code == 0, result.output + repr(result.exception)
    return json.loads(result.stdout)


def _client(config: Path) -> Any:
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(f"sqlite:///{config.parent / 'home' / 'mlflow.db'}")
    return MlflowClient()


@pytest.fixture(scope="module")
def listings(demo_home) -> tuple[Path, list[dict[str, Any]], list[dict[str, Any]]]:
    """(config, versions before this module changed anything, versions after one retrain)."""
    config, _ = demo_home
    before = _models(config)
    result = _invoke(config, "train")
    assert result.exit_code == 0, result.output + repr(result.exception)
    return config, before, _models(config)


def test_models_json_lists_versions_with_aliases_gate_and_bt_metrics(listings) -> None:
    _, before, _ = listings
    versions = [int(v["version"]) for v in before]
    assert versions == sorted(versions, reverse=True) and versions[-1] == 1
    first = before[-1]
    assert "champion" in first["aliases"]
    assert "challenger" in before[0]["aliases"]  # the newest candidate
    if len(before) == 1:
        assert first["aliases"] == ["challenger", "champion"]
    assert first["gate_decision"] == "promoted" and "no champion yet" in first["gate_reason"]
    metrics = first["metrics"]
    assert set(metrics) == {"test_auc", "bt_sharpe", "bt_total_return", "bt_max_drawdown",
                            "bt_n_trades"}
    assert 0.0 <= metrics["test_auc"] <= 1.0 and metrics["bt_n_trades"] >= 0
    assert metrics["bt_max_drawdown"] >= 0.0 and metrics["bt_total_return"] is not None
    assert first["run_id"] and first["created"].endswith("+00:00")


def test_retrain_on_same_data_is_challenger_not_champion(listings) -> None:
    config, before, after = listings
    newest = after[0]
    assert int(newest["version"]) == int(before[0]["version"]) + 1
    assert newest["aliases"] == ["challenger"]
    assert newest["gate_decision"] == "rejected"
    assert "does not beat champion" in newest["gate_reason"]
    assert "compared with champion v1 on the same test window" in newest["gate_reason"]
    assert "champion" in next(v for v in after if v["version"] == "1")["aliases"]
    client = _client(config)
    version = client.get_model_version(NAME, newest["version"])
    assert version.tags["gate.champion_version"] == "1"
    run = client.get_run(newest["run_id"])
    assert run.data.params["gate.champion_version"] == "1"
    # the champion, backtested on the same window, scores what the identical candidate scores
    for key in ("bt_total_return", "bt_max_drawdown", "bt_n_trades"):
        assert run.data.metrics[f"champion_{key}"] == pytest.approx(run.data.metrics[key])


def test_models_table_shows_the_champion(listings) -> None:
    config, _, _ = listings
    result = _invoke(config, "models")
    assert result.exit_code == 0, result.output
    assert "champion" in result.output and "challenger" in result.output
    assert "sharpe" in result.output and "rejected" in result.output


def test_promote_without_force_says_the_gate_decides(listings) -> None:
    config, _, _ = listings
    result = _invoke(config, "promote", "1")
    assert result.exit_code == 1
    assert isinstance(result.exception, TradebotError)
    message = str(result.exception)
    assert "gate decides" in message and "--force overrides it" in message
    missing_reason = _invoke(config, "promote", "1", "--force")
    assert "--reason" in str(missing_reason.exception)


def test_promote_unknown_version_is_a_clear_error(listings) -> None:
    config, _, _ = listings
    result = _invoke(config, "promote", "999", "--force", "--reason", "typo")
    assert isinstance(result.exception, NoChampionError)
    assert "has no version 999" in str(result.exception)


def test_forced_promotion_is_recorded_and_tagged(listings) -> None:
    config, _, _ = listings
    result = _invoke(config, "promote", "1", "--force", "--reason", "manual check")
    assert result.exit_code == 0, result.output + repr(result.exception)
    with sqlite3.connect(config.parent / "home" / "tradebot.db") as conn:
        rows = conn.execute("SELECT model_name, model_version, reason, run_id FROM "
                            "model_promotions WHERE decision = 'forced'").fetchall()
    assert (NAME, "1", "manual check") in [row[:3] for row in rows]
    client = _client(config)
    version = client.get_model_version(NAME, "1")
    assert version.tags["gate.decision"] == "forced"
    assert version.tags["gate.reason"] == "manual check"
    assert str(client.get_model_version_by_alias(NAME, "champion").version) == "1"
    assert all(row[3] == version.run_id for row in rows)


def _aliases(config: Path) -> dict[str, list[str]]:
    return {v["version"]: v["aliases"] for v in _models(config)}


@pytest.mark.parametrize("failing", ["tradebot.models.lstm.LSTMDirectionModel.fit",
                                     "tradebot.pipelines.train.record_decision"])
def test_a_training_run_that_fails_moves_no_alias(listings, monkeypatch, failing) -> None:
    """A run that dies while a member trains registers nothing; one that dies after its
    version was registered but before the decision was stored leaves it without alias."""
    config, _, _ = listings
    before = _aliases(config)

    def killed(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("killed")

    monkeypatch.setattr(failing, killed)
    result = _invoke(config, "train", "--mode", "emergency")
    assert result.exit_code != 0 and "killed" in repr(result.exception)
    after = _aliases(config)
    assert {v: a for v, a in after.items() if v in before} == before
    new = [v for v in after if v not in before]
    assert len(new) == (0 if "fit" in failing else 1)
    assert all(after[v] == [] for v in new)
