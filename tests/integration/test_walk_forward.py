"""Walk-forward backtest on the demo's stored data: retrains per window on earlier data only,
one continuous book, recorded in MLflow."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from tradebot.cli.main import app

pytestmark = pytest.mark.prefect


@pytest.fixture(scope="module")
def walked(demo_home, tmp_path_factory):
    config, _ = demo_home
    out = tmp_path_factory.mktemp("wf")
    result = CliRunner().invoke(app, [
        "--config", str(config), "backtest", "--walk-forward", "--retrain-every", "2",
        "--start", "2026-06-10", "--json", "--report", str(out / "wf.html")])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return config, json.loads(result.stdout), out


def test_each_window_trains_only_on_data_before_it(walked) -> None:
    _, payload, _ = walked
    windows = payload["windows"]
    # 2026-06-10 .. 2026-06-16 holds 5 sessions: windows of 2, 2 and 1
    assert [w["first_session"] for w in windows] == ["2026-06-10", "2026-06-12", "2026-06-16"]
    assert [w["last_session"] for w in windows] == ["2026-06-11", "2026-06-15", "2026-06-16"]
    rows = [w["train_rows"] for w in windows]
    assert rows == sorted(rows) and rows[0] < rows[-1]  # expanding window
    assert payload["walk_forward_windows"] == 3 and payload["retrain_every"] == 2


def test_one_book_runs_through_every_window(walked) -> None:
    _, payload, out = walked
    assert payload["cycles"] == 5 * 26
    assert payload["initial_equity"] == 100_000
    assert payload["final_equity"] == pytest.approx(
        payload["initial_equity"] * (1 + payload["total_return"]))
    assert (out / "wf.html").is_file() and (out / "windows.csv").is_file()
    windows = pd.read_csv(out / "windows.csv")
    assert (pd.to_datetime(windows["train_end"], utc=True)
            < pd.to_datetime(windows["first_session"]).dt.tz_localize("UTC")).all()


def test_walk_forward_is_an_mlflow_run_with_trading_metrics(walked) -> None:
    import mlflow
    from mlflow import MlflowClient

    config, payload, _ = walked
    mlflow.set_tracking_uri(f"sqlite:///{config.parent / 'home' / 'mlflow.db'}")
    run = MlflowClient().get_run(payload["mlflow_run_id"])
    assert run.data.tags["tradebot.kind"] == "walk-forward"
    assert run.data.params["walk_forward.windows"] == "3"
    assert run.data.metrics["bt_final_equity"] == pytest.approx(payload["final_equity"])
    files = {a.path for a in MlflowClient().list_artifacts(run.info.run_id, "backtest")}
    assert {"backtest/report.html", "backtest/windows.csv", "backtest/trades.csv"} <= files
