"""Tiny configurations for tests: few symbols, few sessions, few trials."""

from __future__ import annotations

from pathlib import Path

TINY_NETS_TOML = """
[model.lstm]
sequence_bars = 8
hidden_size = 8
epochs = 2
batch_size = 128
n_trials = 2
[model.transformer]
sequence_bars = 8
sentiment_bars = 4
d_model = 8
n_heads = 2
n_layers = 1
epochs = 2
batch_size = 128
n_trials = 2
"""
"""Small sequence nets with two Optuna trials each (also ``bench/train.py --tiny``)."""

TINY_TOML = """
home = "{home}"
symbols = ["QQQ", "AAPL", "MSFT"]
[data]
start = 2026-06-01
sessions = {sessions}
replay_sessions = 1
[optuna]
n_trials = {trials}
n_splits = 2
[model.xgboost]
n_estimators = 60
n_jobs = 1
[gate]
min_test_auc = 0.0
min_test_net_return = -1.0
[synthetic]
signal_strength = {signal}
""" + TINY_NETS_TOML


def write_tiny_config(
    directory: Path, *, sessions: int = 12, trials: int = 3, signal: float = 0.6,
    extra: str = "",
) -> Path:
    """A config whose home is ``directory/home``; returns the file path."""
    path = directory / "tiny.toml"
    home = directory / "home"
    path.write_text(TINY_TOML.format(home=home.as_posix(), sessions=sessions, trials=trials,
                                     signal=signal) + extra)
    return path
