"""``tradebot train sentiment`` through the real command line, offline, on a tiny local BERT."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from tests.kit.cli import cli
from tests.kit.config import write_tiny_config
from tests.kit.tiny_bert import build_tiny_bert, labelled_set

OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


@pytest.fixture(scope="module")
def base_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_bert(tmp_path_factory.mktemp("base") / "tiny-finbert",
                           initializer_range=0.1)


def write_labelled(path: Path, n_per_label: int, seed: int) -> Path:
    texts, labels = labelled_set(n_per_label, seed)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(zip(texts, labels, strict=True))
    return path


def test_fine_tunes_saves_a_scorer_model_and_logs_the_run(base_model: Path,
                                                          tmp_path: Path) -> None:
    import mlflow

    config = write_tiny_config(tmp_path)
    data = write_labelled(tmp_path / "labelled.csv", 20, seed=3)
    out = tmp_path / "tuned"
    result = cli(tmp_path, "--config", str(config), "train", "sentiment", "--data", str(data),
                 "--base", str(base_model), "--output", str(out), "--epochs", "3",
                 "--learning-rate", "0.007", "--max-length", "32", env=OFFLINE, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "fine-tuned" in result.stdout and "validation accuracy" in result.stdout
    assert f'sentiment.model = "{out}"' in " ".join(result.stdout.split())
    assert (out / "config.json").exists() and (out / "training_metrics.json").exists()

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'home' / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["tradebot-sentiment"], output_format="list")
    assert len(runs) == 1
    run = runs[0]
    assert run.data.params["base_model"] == str(base_model)
    assert run.data.params["n_train"] == "48" and run.data.params["n_val"] == "12"
    assert "train_loss" in run.data.metrics and "validation_accuracy" in run.data.metrics

    # the saved directory is a model the configured scorer loads (no lexicon fallback)
    from tradebot.features.finbert import make_scorer
    from tradebot.kernel.settings import SentimentSettings

    scorer = make_scorer(SentimentSettings(model=str(out), quantize=False))
    assert scorer.name == "finbert:tuned"
    assert len(scorer.score(["acme gains", ""])) == 2


def test_bad_labelled_file_is_a_clear_error_and_writes_nothing(base_model: Path,
                                                               tmp_path: Path) -> None:
    config = write_tiny_config(tmp_path)
    data = tmp_path / "bad.csv"
    data.write_text("text,label\nacme gains,bullish\n")
    out = tmp_path / "tuned"
    result = cli(tmp_path, "--config", str(config), "train", "sentiment", "--data", str(data),
                 "--base", str(base_model), "--output", str(out), env=OFFLINE, timeout=120)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "error:" in result.stderr and "'bullish'" in result.stderr
    assert not out.exists()


def test_missing_base_model_offline_is_a_clear_error(tmp_path: Path) -> None:
    config = write_tiny_config(tmp_path)
    data = write_labelled(tmp_path / "labelled.csv", 2, seed=1)
    result = cli(tmp_path, "--config", str(config), "train", "sentiment", "--data", str(data),
                 "--base", "no-such-org/no-such-model", "--output", str(tmp_path / "o"),
                 env=OFFLINE, timeout=120)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "error:" in result.stderr and "no-such-org/no-such-model" in result.stderr
