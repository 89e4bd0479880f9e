"""Out-of-sample metrics: classification quality and trading results after costs."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, brier_score_loss, log_loss, roc_auc_score

BARS_PER_YEAR = 26 * 252


def classification_metrics(y: np.ndarray, prob: np.ndarray) -> dict[str, float]:
    y = np.asarray(y, int)
    prob = np.clip(np.asarray(prob, float), 1e-6, 1 - 1e-6)
    return {
        "auc": auc(y, prob),
        "log_loss": float(log_loss(y, prob, labels=[0, 1])),
        "accuracy": float(accuracy_score(y, prob >= 0.5)),
        "brier": float(brier_score_loss(y, prob)),
        "calibration_error": calibration_error(y, prob),
    }


def auc(y: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC, 0.5 when ``y`` holds one class only."""
    y = np.asarray(y, int)
    return float(roc_auc_score(y, scores)) if len(np.unique(y)) > 1 else 0.5


def calibration_error(y: np.ndarray, prob: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error: the row-weighted mean |observed - predicted| over
    quantile bins of the predicted probability."""
    y, prob = np.asarray(y, float), np.asarray(prob, float)
    if len(y) == 0:
        return float("nan")
    edges = np.unique(np.quantile(prob, np.linspace(0, 1, bins + 1)))
    which = np.clip(np.searchsorted(edges, prob, "right") - 1, 0, max(len(edges) - 2, 0))
    gaps = [abs(y[which == b].mean() - prob[which == b].mean()) * (which == b).sum()
            for b in np.unique(which)]
    return float(sum(gaps) / len(y))


def trading_metrics(
    frame: pd.DataFrame, prob: np.ndarray, entry: float, cost_bps: float
) -> dict[str, float]:
    """Long-when-confident portfolio over the window: equal weight across symbols per bar,
    net of ``cost_bps`` per unit of turnover, against equal-weight buy-and-hold."""
    df = frame[["symbol", "ts", "forward_return"]].assign(position=(prob >= entry).astype(float))
    df = df.sort_values(["symbol", "ts"])
    turnover = df.groupby("symbol")["position"].diff().abs().fillna(df["position"])
    df["net"] = df["position"] * df["forward_return"] - turnover * cost_bps / 1e4
    per_bar = df.groupby("ts")["net"].mean()
    bench = df.groupby("ts")["forward_return"].mean()
    equity = (1 + per_bar).cumprod()
    drawdown = float((equity / equity.cummax() - 1).min()) if len(equity) else 0.0
    std = per_bar.std(ddof=0)
    sharpe = float(per_bar.mean() / std * np.sqrt(BARS_PER_YEAR)) if std > 0 else 0.0
    return {
        "net_return": float(equity.iloc[-1] - 1) if len(equity) else 0.0,
        "benchmark_return": float((1 + bench).prod() - 1),
        "sharpe": sharpe,
        "max_drawdown": drawdown,
        "exposure": float(df["position"].mean()),
        "turnover": float(turnover.sum()),
    }
