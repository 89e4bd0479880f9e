"""PNG figures of a model's out-of-sample behaviour: confusion matrix, calibration, feature
importance, equity curve and ensemble member weights.

Built with matplotlib's object API (``Figure`` without pyplot): no global figure registry, no
GUI backend, safe to call from worker threads. Every builder writes ``path`` (creating its
folder), returns it, and draws a note instead of raising when the input is degenerate.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from textwrap import shorten

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from sklearn.calibration import calibration_curve

CLASS_NAMES = ("down", "up")
DPI = 100


@contextmanager
def _figure(path: Path | str, width: float, height: float) -> Iterator[Figure]:
    """A fresh figure, saved as PNG to ``path`` on exit and then cleared."""
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    try:
        yield fig
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format="png")
    finally:
        fig.clear()


def _note(ax: Axes, text: str) -> None:
    """A grey message in the middle of ``ax`` that never widens the layout."""
    label = ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes,
                    color="0.4", wrap=True)
    label.set_in_layout(False)


def _finite_pairs(y_true: np.ndarray, prob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype=float).ravel()
    p = np.asarray(prob, dtype=float).ravel()
    keep = np.isfinite(y) & np.isfinite(p)
    return y[keep].astype(int), p[keep]


def confusion_matrix_png(y_true: np.ndarray, prob: np.ndarray, threshold: float,
                         path: Path | str) -> Path:
    """Counts of actual vs predicted direction, predicting up when ``prob >= threshold``."""
    y, p = _finite_pairs(y_true, prob)
    binary = (y == 0) | (y == 1)
    cells = 2 * y[binary] + (p[binary] >= threshold)
    counts = np.bincount(cells, minlength=4).reshape(2, 2)  # rows: actual, columns: predicted
    with _figure(path, 4.5, 4.0) as fig:
        ax = fig.add_subplot()
        ax.imshow(counts, cmap="Blues", vmin=0, vmax=max(int(counts.max()), 1))
        total = max(int(counts.sum()), 1)
        for (row, col), count in np.ndenumerate(counts):
            dark = count > counts.max() / 2
            ax.text(col, row, f"{count}\n{count / total:.0%}", ha="center", va="center",
                    color="white" if dark else "black")
        ax.set_xticks([0, 1], CLASS_NAMES)
        ax.set_yticks([0, 1], CLASS_NAMES)
        ax.set_xlabel("predicted")
        ax.set_ylabel("actual")
        ax.set_title(f"Confusion matrix (threshold {threshold:.2f}, n={int(counts.sum())})")
    return Path(path)


def calibration_png(y_true: np.ndarray, prob: np.ndarray, path: Path | str,
                    bins: int = 10) -> Path:
    """Reliability diagram over quantile bins of ``prob``, with its histogram below."""
    y, p = _finite_pairs(y_true, prob)
    with _figure(path, 5.0, 5.5) as fig:
        grid = fig.add_gridspec(2, 1, height_ratios=[3, 1])
        ax = fig.add_subplot(grid[0])
        hist = fig.add_subplot(grid[1], sharex=ax)
        ax.plot([0, 1], [0, 1], ls="--", color="0.5", label="perfectly calibrated")
        try:
            if not len(p):
                raise ValueError("no rows")
            observed, predicted = calibration_curve(y, p, n_bins=bins, strategy="quantile")
        except ValueError as exc:  # no rows, labels other than 0/1, prob outside [0, 1]
            _note(ax, f"no calibration curve:\n{shorten(str(exc), 120)}")
        else:
            ax.plot(predicted, observed, marker="o", label="model")
            ax.legend(loc="upper left")
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.02, 1.02)
        ax.set_ylabel("observed frequency of up")
        ax.set_title(f"Calibration ({bins} quantile bins, n={len(p)})")
        hist.hist(np.clip(p, 0, 1), bins=20, range=(0, 1), color="0.6")
        hist.set_xlabel("predicted P(up)")
        hist.set_ylabel("rows")
    return Path(path)


def feature_importance_png(importance: Mapping[str, float], path: Path | str,
                           top: int = 25) -> Path:
    """Horizontal bars of the ``top`` most important features, largest at the top."""
    values = pd.Series(importance, dtype=float).dropna()
    shown = values.sort_values(ascending=False).head(top)
    with _figure(path, 7.0, max(2.5, 0.28 * len(shown) + 1.2)) as fig:
        ax = fig.add_subplot()
        if shown.empty:
            _note(ax, "no feature importance available")
            ax.set_yticks([])
        else:
            ax.barh(shown.index[::-1], shown.to_numpy()[::-1], color="tab:blue")
            ax.set_xlabel("importance")
        ax.set_title(f"Feature importance (top {len(shown)} of {len(values)})")
    return Path(path)


def equity_curve_png(equity: pd.Series, benchmark: pd.Series | None, path: Path | str,
                     title: str) -> Path:
    """Strategy equity against the benchmark, rescaled to start at the same value."""
    with _figure(path, 8.0, 4.0) as fig:
        ax = fig.add_subplot()
        curve = equity.dropna()
        if curve.empty:
            _note(ax, "no equity values")
        else:
            ax.plot(curve.index, curve.to_numpy(float), label="strategy", color="tab:blue")
            bench = _rescaled(benchmark, float(curve.iloc[0]))
            if bench is not None:
                ax.plot(bench.index, bench.to_numpy(float), label="benchmark", color="0.5")
            ax.legend(loc="best")
            if isinstance(curve.index, pd.DatetimeIndex):
                locator = AutoDateLocator()
                ax.xaxis.set_major_locator(locator)
                ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
        ax.set_ylabel("equity")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    return Path(path)


def _rescaled(benchmark: pd.Series | None, start: float) -> pd.Series | None:
    """``benchmark`` scaled so its first value is ``start``; None if it has no usable start."""
    if benchmark is None:
        return None
    bench = benchmark.dropna()
    if bench.empty or not np.isfinite(start) or bench.iloc[0] == 0:
        return None
    return bench * (start / float(bench.iloc[0]))


def member_weights_png(weights: Mapping[str, float], path: Path | str, title: str) -> Path:
    """Bars of the ensemble member weights, each annotated with its value."""
    values = pd.Series(weights, dtype=float).fillna(0.0)
    with _figure(path, max(4.0, 0.9 * len(values) + 2.0), 3.5) as fig:
        ax = fig.add_subplot()
        if values.empty:
            _note(ax, "no ensemble members")
        else:
            bars = ax.bar(values.index, values.to_numpy(), color="tab:green")
            ax.bar_label(bars, fmt="%.2f")
            ax.axhline(0, color="0.3", lw=0.8)
            ax.margins(y=0.15)
        ax.set_ylabel("weight")
        ax.set_title(title)
    return Path(path)
