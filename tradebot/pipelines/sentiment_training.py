"""Fine-tuning of the sentiment classifier on labelled texts (``tradebot train sentiment``).

A plain torch loop (AdamW, linear warm-up and decay, gradient clipping) over a stratified
train/validation split. The result is saved with ``save_pretrained`` (model and tokenizer), so
the output directory works as ``sentiment.model``.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from tradebot.features.finbert import LABELS
from tradebot.kernel.errors import ConfigError, DataError

Progress = Callable[[int, int], None]  # (batches done, batches in all epochs)


def load_labelled_texts(path: Path) -> tuple[list[str], list[str]]:
    """Texts and labels from a CSV with columns ``text`` and ``label`` (positive, negative or
    neutral, any case). Raises DataError naming the problem and the file."""
    path = Path(path)
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise DataError(f"labelled texts file {path} does not exist") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"labelled texts file {path} is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{path} is not a readable CSV: {' '.join(str(exc).split())}") from None
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    missing = [c for c in ("text", "label") if c not in frame.columns]
    if missing:
        raise DataError(
            f"{path} has no column {' or '.join(missing)} (columns: {list(frame.columns)}); "
            "expected a header line 'text,label'"
        )
    if frame.empty:
        raise DataError(f"labelled texts file {path} has a header but no rows")
    labels = frame["label"].str.strip().str.lower()
    bad = frame.index[~labels.isin(LABELS)]
    if len(bad):
        shown = ", ".join(f"line {i + 2}: {frame['label'][i]!r}" for i in bad[:5])
        raise DataError(
            f"{path}: {len(bad)} unknown label(s) ({shown}); labels must be "
            f"{', '.join(LABELS)}"
        )
    blank = frame.index[frame["text"].str.strip() == ""]
    if len(blank):
        raise DataError(f"{path}: empty text on line(s) {', '.join(str(i + 2) for i in blank[:5])}")
    return frame["text"].tolist(), labels.tolist()


def split_indices(labels: Sequence[str], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Stratified split: about ``fraction`` of each label's items go to validation."""
    rng = random.Random(seed)
    train: list[int] = []
    val: list[int] = []
    for label in LABELS:
        idx = [i for i, lab in enumerate(labels) if lab == label]
        rng.shuffle(idx)
        n_val = round(len(idx) * fraction)
        val += idx[:n_val]
        train += idx[n_val:]
    rng.shuffle(train)
    return train, sorted(val)


def _load_base(base_model: str, allow_download: bool) -> tuple[Any, Any]:
    """Tokenizer and classifier; a base model without sentiment labels gets a new 3-way head."""
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    local = not allow_download
    try:
        config = AutoConfig.from_pretrained(base_model, local_files_only=local)
        tokenizer = AutoTokenizer.from_pretrained(base_model, local_files_only=local)
        labels = {str(v).strip().lower() for v in (config.id2label or {}).values()}
        if labels == set(LABELS):
            model = AutoModelForSequenceClassification.from_pretrained(
                base_model, local_files_only=local)
        else:
            model = AutoModelForSequenceClassification.from_pretrained(
                base_model, local_files_only=local, num_labels=len(LABELS),
                id2label=dict(enumerate(LABELS)), label2id={k: i for i, k in enumerate(LABELS)},
                ignore_mismatched_sizes=True,
            )
    except (OSError, ValueError) as exc:
        hint = "" if allow_download else " (downloads are off: pass a local directory)"
        raise ConfigError(
            f"cannot load base model {base_model!r}{hint}: {' '.join(str(exc).split())[:300]}"
        ) from None
    return tokenizer, model


def _linear_schedule(total: int) -> Callable[[int], float]:
    """Learning-rate factor: linear warm-up over the first 10% of steps, then linear decay."""
    warmup = max(1, total // 10)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total - step) / max(1, total - warmup))

    return factor


def _accuracy(model: Any, tokenizer: Any, texts: list[str], targets: list[int],
              batch_size: int, max_length: int) -> float:
    import torch

    model.eval()
    correct = 0
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(texts[start : start + batch_size], padding=True, truncation=True,
                              max_length=max_length, return_tensors="pt")
            pred = model(**batch).logits.argmax(dim=-1).tolist()
            correct += sum(p == t for p, t in zip(pred, targets[start:start + batch_size],
                                                   strict=True))
    return correct / len(texts)


def fine_tune_sentiment(
    base_model: str,
    texts: list[str],
    labels: list[str],
    output_dir: Path,
    epochs: int = 1,
    batch_size: int = 16,
    learning_rate: float = 2e-5,
    max_length: int = 64,
    seed: int = 0,
    allow_download: bool = False,
    validation_fraction: float = 0.2,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Fine-tune ``base_model`` (hub id or local path) on labelled texts and save it to
    ``output_dir``. Returns train_loss (mean over the last epoch), validation_accuracy (None
    without a validation split), n_train, n_val, epochs, loss_per_epoch and output_dir.

    ``progress(done, total)`` is called after every batch."""
    import torch

    labels = [str(lab).strip().lower() for lab in labels]
    if len(texts) != len(labels):
        raise DataError(f"{len(texts)} texts but {len(labels)} labels")
    unknown = sorted(set(labels) - set(LABELS))
    if unknown:
        raise DataError(f"unknown label(s) {unknown}; labels must be {', '.join(LABELS)}")
    if not 0 <= validation_fraction < 1:
        raise ConfigError(f"validation_fraction must be in [0, 1), got {validation_fraction}")
    if epochs < 1 or batch_size < 1:
        raise ConfigError("epochs and batch_size must be at least 1")
    train_idx, val_idx = split_indices(labels, validation_fraction, seed)
    if not train_idx:
        raise DataError("no texts left to train on")

    torch.manual_seed(seed)
    tokenizer, model = _load_base(base_model, allow_download)
    label2id = {str(v).strip().lower(): int(k) for k, v in model.config.id2label.items()}
    targets = [label2id[lab] for lab in labels]

    steps_per_epoch = -(-len(train_idx) // batch_size)
    total = steps_per_epoch * epochs
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, _linear_schedule(total))
    rng = random.Random(seed)
    losses: list[float] = []
    done = 0
    for _ in range(epochs):
        model.train()
        order = train_idx[:]
        rng.shuffle(order)
        epoch_loss = 0.0
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            batch = tokenizer([texts[i] for i in chunk], padding=True, truncation=True,
                              max_length=max_length, return_tensors="pt")
            loss = model(**batch, labels=torch.tensor([targets[i] for i in chunk])).loss
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            epoch_loss += loss.item() * len(chunk)
            done += 1
            if progress is not None:
                progress(done, total)
        losses.append(epoch_loss / len(order))

    accuracy = None
    if val_idx:
        accuracy = _accuracy(model, tokenizer, [texts[i] for i in val_idx],
                             [targets[i] for i in val_idx], batch_size * 2, max_length)
    metrics: dict[str, Any] = {
        "base_model": base_model, "train_loss": losses[-1], "validation_accuracy": accuracy,
        "n_train": len(train_idx), "n_val": len(val_idx), "epochs": epochs,
        "loss_per_epoch": losses, "output_dir": str(output_dir),
    }
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    model.eval()
    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    (output_dir / "training_metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def log_fine_tune(tracking_uri: str, artifacts: Path, experiment: str,
                  params: dict[str, Any], metrics: dict[str, Any]) -> str:
    """Record a fine-tuning run in MLflow (params, final metrics, per-epoch loss and the
    metrics file); returns the run id. The weights stay in the output directory."""
    import mlflow

    from tradebot.models import registry

    registry.configure(tracking_uri, artifacts, experiment)
    with mlflow.start_run(run_name=f"sentiment-{Path(str(metrics['output_dir'])).name}") as run:
        mlflow.log_params(params | {"n_train": metrics["n_train"], "n_val": metrics["n_val"]})
        for epoch, loss in enumerate(metrics["loss_per_epoch"], start=1):
            mlflow.log_metric("train_loss", loss, step=epoch)
        if metrics["validation_accuracy"] is not None:
            mlflow.log_metric("validation_accuracy", metrics["validation_accuracy"])
        mlflow.log_dict(metrics, "training_metrics.json")
        mlflow.set_tags({"tradebot.kind": "sentiment-fine-tune",
                         "tradebot.output_dir": str(metrics["output_dir"])})
        return run.info.run_id
