"""Train flow: fit the ensemble (full, emergency or incremental), evaluate, log to MLflow,
register and gate it."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from tradebot.flows.runtime import runtime
from tradebot.pipelines.train import TrainResult, result_markdown, train_and_register
from tradebot.pipelines.universe import data_window


@task(name="train-register-gate")
def train_task(config_path: str | None, mode: str, models: list[str] | None,
               until: date | None) -> TrainResult:
    rt = runtime(config_path)
    logger = get_run_logger()
    if until is None:
        until = data_window(rt.settings, rt.clock).replay[0]
    train_end, _ = rt.clock.open_close(until)
    store = rt.feature_store()
    seen: dict[str, int] = {}

    def progress(member: str, done: int, total: int) -> None:
        if seen.get(member) != done:
            seen[member] = done
            logger.info("%s: Optuna trial %d/%d", member, done, total)

    return train_and_register(rt.db, rt.home, rt.settings, train_end, rt.now(), progress,
                              feature_version=store.version, store=store, mode=mode,
                              models=models)


@flow(name="train-model")
def train_flow(config_path: str | None = None, mode: str = "full",
               models: list[str] | None = None, until: date | None = None) -> dict[str, Any]:
    """Train on the data before ``until`` (default: before the replayed sessions); promote
    only past the gate. ``mode``: full | incremental | emergency; ``models``: a subset of the
    ensemble's members."""
    result = train_task(config_path, mode, models, until)
    create_markdown_artifact(markdown=result_markdown(result), key="training-result",
                             description="Out-of-sample metrics and gate decision")
    return asdict(result)
