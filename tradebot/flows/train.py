"""Train flow: tune, fit, evaluate, log to MLflow, register and gate the model."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact

from tradebot.flows.runtime import runtime
from tradebot.pipelines.train import TrainResult, result_markdown, train_and_register
from tradebot.pipelines.universe import data_window


@task(name="train-register-gate")
def train_task(config_path: str | None) -> TrainResult:
    rt = runtime(config_path)
    window = data_window(rt.settings, rt.clock)
    train_end, _ = rt.clock.open_close(window.replay[0])
    store = rt.feature_store()
    return train_and_register(rt.db, rt.home, rt.settings, train_end, rt.now(),
                              feature_version=store.version, store=store)


@flow(name="train-model")
def train_flow(config_path: str | None = None) -> dict[str, Any]:
    """Train on all data before the replayed sessions; promote only past the gate."""
    result = train_task(config_path)
    create_markdown_artifact(markdown=result_markdown(result), key="training-result",
                             description="Out-of-sample metrics and gate decision")
    return asdict(result)
