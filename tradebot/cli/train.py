"""Training commands: ``tradebot train`` (the trading model) and ``tradebot train sentiment``."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from tradebot.cli.context import _config_arg, _runtime

train_app = typer.Typer(
    help="Train models. Without a sub-command: tune (Optuna), train, log to MLflow, register "
    "and gate the trading model.",
    invoke_without_command=True,
)
console = Console()


class TrainMode(StrEnum):
    full = "full"
    incremental = "incremental"
    emergency = "emergency"


@train_app.callback()
def train_default(
    ctx: typer.Context,
    mode: Annotated[TrainMode, typer.Option(
        "--mode", help="full: Optuna tunes every member (weekly). incremental: the champion's "
        "members continue on the rows after its training data, XGBoost adds rounds to its "
        "booster and the nets fine-tune a few epochs (daily). emergency: full with the small "
        "optuna.emergency_* budget, to finish within one 15-minute cycle.")] = TrainMode.full,
    models: Annotated[str | None, typer.Option(
        "--models", help="Comma-separated members to train (default: model.ensemble.members), "
        "e.g. xgboost,lstm. Incremental: the members to continue; the others are kept.",
        show_default=False)] = None,
    until: Annotated[datetime | None, typer.Option(
        "--until", formats=["%Y-%m-%d"], help="Train on decision times before this session "
        "(default: before the data.replay_sessions replayed sessions).", show_default=False)
    ] = None,
) -> None:
    """Fit the ensemble (XGBoost, LSTM, sentiment transformer and any [model.sklearn.NAME]), evaluate it on a held-out test window and backtest it there after costs, log every member and the ensemble to MLflow, register it and let the promotion gate decide.

    The new version gets the 'challenger' alias; it takes 'champion' only if it beats the champion on the same window. A run that fails or is stopped never moves an alias.
    """  # noqa: E501 (one line per paragraph: rich keeps line breaks in --help)
    if ctx.invoked_subcommand is not None:
        return
    _runtime()
    from tradebot.flows.train import train_flow

    names = [m.strip() for m in models.split(",") if m.strip()] if models else None
    result = train_flow(_config_arg(), mode=mode.value, models=names,
                        until=until.date() if until else None)
    verdict = "[green]promoted to champion[/]" if result["promoted"] else "[yellow]not promoted[/]"
    weights = ", ".join(f"{n} {w:.2f}" for n, w in result["weights"].items())
    console.print(
        f"{result['model_name']} v{result['version']} ({result['mode']}): {verdict} "
        f"({escape(result['gate_reason'])})\nmember weights: {weights}"
    )


@train_app.command("sentiment")
def train_sentiment(
    data: Annotated[Path, typer.Option(
        "--data", help="CSV with columns text,label (label: positive, negative or neutral).",
        show_default=False)],
    output: Annotated[Path | None, typer.Option(
        help="Directory for the fine-tuned model and tokenizer. Default: "
        "<home>/models/sentiment-<base name>.", show_default=False)] = None,
    base: Annotated[str | None, typer.Option(
        help="Model to start from: hub id or local directory. Default: sentiment.model.",
        show_default=False)] = None,
    epochs: Annotated[int, typer.Option(min=1)] = 2,
    batch_size: Annotated[int, typer.Option(min=1)] = 16,
    learning_rate: Annotated[float, typer.Option(min=0.0)] = 2e-5,
    max_length: Annotated[int | None, typer.Option(
        min=8, max=512, help="Tokens per text. Default: sentiment.max_length.",
        show_default=False)] = None,
    validation_fraction: Annotated[float, typer.Option(
        min=0.0, max=0.9, help="Share of texts held out (stratified) for accuracy.")] = 0.2,
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """Fine-tune the sentiment classifier on labelled texts; logs the run to MLflow.

    The result is a transformers directory: set sentiment.model to it and texts are scored with it from then on (texts scored by another model are scored again under the new name).

    Nothing is downloaded unless sentiment.allow_download is true.
    """  # noqa: E501 (one line per paragraph: rich keeps line breaks in --help)
    rt = _runtime()
    from tradebot.pipelines.sentiment_training import (
        fine_tune_sentiment,
        load_labelled_texts,
        log_fine_tune,
    )

    cfg = rt.settings.sentiment
    base_model = base or cfg.model
    texts, labels = load_labelled_texts(data)
    target = output or rt.home.root / "models" / f"sentiment-{Path(base_model).name}"
    length = max_length or cfg.max_length
    columns = [TextColumn("fine-tuning"), BarColumn(), MofNCompleteColumn(),
               TextColumn("batches"), TimeElapsedColumn()]
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("fine-tune", total=None)
        metrics = fine_tune_sentiment(
            base_model, texts, labels, target, epochs=epochs, batch_size=batch_size,
            learning_rate=learning_rate, max_length=length, seed=seed,
            allow_download=cfg.allow_download, validation_fraction=validation_fraction,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    params = {"base_model": base_model, "data": str(data), "epochs": epochs,
              "batch_size": batch_size, "learning_rate": learning_rate, "max_length": length,
              "validation_fraction": validation_fraction, "seed": seed}
    run_id = log_fine_tune(rt.home.mlflow_tracking_uri, rt.home.mlflow_artifacts,
                           f"{rt.settings.model.experiment}-sentiment", params, metrics)
    accuracy = metrics["validation_accuracy"]
    shown = "n/a (no validation split)" if accuracy is None else f"{accuracy:.3f}"
    console.print(
        f"fine-tuned {escape(base_model)} on {metrics['n_train']} texts "
        f"({metrics['n_val']} held out): train loss {metrics['train_loss']:.4f}, "
        f"validation accuracy {shown}; MLflow run {run_id}"
    )
    console.print(f"saved to [bold]{escape(str(target))}[/]; to score with it set "
                  f"sentiment.model = \"{escape(str(target))}\"", highlight=False)
