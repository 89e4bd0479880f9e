"""Checks that the features are point in time and that live rows equal training rows.

* **lookahead** (the idea of Freqtrade's lookahead-analysis): compute the features once on the
  full history, then again on the data cut at sampled decision times t (bars with
  ts_event < t, texts known by t), from the same history start. A feature whose value at t
  changes when the future is removed looks ahead.
* **parity**: compare ``online_features(asof=t)`` (the live path, bounded warm-up history)
  with the ``training_frame`` rows at the same sampled times.

Values agree when ``|a - b| <= tolerance * max(1, |a|, |b|)``; NaN agrees only with NaN.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from tradebot.features.build import feature_columns
from tradebot.features.feature_store import FeatureStore
from tradebot.features.store import bar_bounds, load_minute_bars, load_scored_items
from tradebot.kernel.db import Database
from tradebot.kernel.errors import DataError

TOLERANCE = 1e-9


@dataclass
class CheckReport:
    """Sampled times, rows compared, and per feature the mismatching samples."""

    check: str
    samples: list[datetime]
    rows_compared: int = 0
    mismatches: dict[str, list[str]] = field(default_factory=dict)
    max_difference: dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.mismatches and self.rows_compared > 0

    def summary(self) -> dict[str, Any]:
        """Passed, rows compared, sampled times and the features that differ (JSON-ready)."""
        return {"passed": self.passed, "rows": self.rows_compared,
                "samples": len(self.samples), "mismatches": sorted(self.mismatches)}


def checks_markdown(reports: Sequence[CheckReport]) -> str:
    """A markdown table of check results (the Prefect artifact)."""
    lines = ["| check | result | rows compared | sampled times | features that differ |",
             "|---|---|---|---|---|"]
    lines += [f"| {r.check} | {'passed' if r.passed else 'FAILED'} | {r.rows_compared} | "
              f"{len(r.samples)} | {', '.join(sorted(r.mismatches)) or '-'} |" for r in reports]
    return "\n".join(lines)


def _differs(a: np.ndarray, b: np.ndarray, tolerance: float) -> np.ndarray:
    both_nan = np.isnan(a) & np.isnan(b)
    scale = np.maximum(1.0, np.maximum(np.abs(a), np.abs(b)))
    with np.errstate(invalid="ignore"):
        close = np.abs(a - b) <= tolerance * scale
    return ~(both_nan | close)


def compare_rows(report: CheckReport, expected: pd.DataFrame, actual: pd.DataFrame,
                 tolerance: float = TOLERANCE) -> None:
    """Compare rows keyed by (symbol, ts); record each differing feature and where."""
    keys = ["symbol", "ts"]
    merged = expected.merge(actual, on=keys, how="outer", suffixes=("", "__other"),
                            indicator="present")
    missing = merged[merged["present"] != "both"]
    for symbol, ts, present in missing[["symbol", "ts", "present"]].itertuples(index=False):
        side = "second only" if present == "right_only" else "first only"
        report.mismatches.setdefault("<row>", []).append(f"{symbol}@{ts} ({side})")
    both = merged[merged["present"] == "both"]
    report.rows_compared += len(both)
    for column in feature_columns(expected.drop(columns=["label", "forward_return"],
                                                errors="ignore")):
        a = both[column].to_numpy(float)
        b = both[f"{column}__other"].to_numpy(float) if f"{column}__other" in both else a * np.nan
        bad = _differs(a, b, tolerance)
        if bad.any():
            where = both.loc[bad, keys].astype(str).agg("@".join, axis=1).tolist()
            report.mismatches.setdefault(column, []).extend(where)
            diff = float(np.nanmax(np.abs(a[bad] - b[bad]), initial=0.0))
            report.max_difference[column] = max(report.max_difference.get(column, 0.0), diff)


def _sample(times: pd.Series, samples: int, seed: int) -> list[pd.Timestamp]:
    unique = pd.Series(times.unique()).sort_values(ignore_index=True)
    if unique.empty:
        raise DataError("no feature rows to check: ingest data first ('tradebot ingest')")
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(unique), size=min(samples, len(unique)), replace=False)
    return sorted(pd.Timestamp(unique[i]) for i in picked)


def check_lookahead(db: Database, store: FeatureStore, symbols: Sequence[str],
                    samples: int = 20, seed: int = 0, tolerance: float = TOLERANCE
                    ) -> CheckReport:
    """Recompute features on data cut at sampled times; any change at t is a lookahead."""
    settings = store.settings
    with db.session() as session:
        first, _ = bar_bounds(session, settings.market.base_timeframe)
        if first is None:
            raise DataError("no bars stored: run 'tradebot ingest' first")
        bars = load_minute_bars(session, symbols, timeframe=settings.market.base_timeframe)
        items = load_scored_items(session, store.scorer)

    def build(cut_bars: pd.DataFrame, cut_items: pd.DataFrame) -> pd.DataFrame:
        return store.compute(cut_bars, cut_items, drop_warmup=False)

    full = build(bars, items)
    warm = full.dropna(subset=full.attrs.get("warmup_columns", []))
    times = _sample(warm["ts"], samples, seed)
    report = CheckReport("lookahead", [t.to_pydatetime() for t in times])
    for t in times:
        cut = build(bars[bars["ts_event"] < t],
                    items[items["ts_known"] <= t] if not items.empty else items)
        compare_rows(report, full[full["ts"] == t], cut[cut["ts"] == t], tolerance)
    return report


def check_parity(db: Database, store: FeatureStore, symbols: Sequence[str],
                 samples: int = 20, seed: int = 0, tolerance: float = TOLERANCE
                 ) -> CheckReport:
    """Compare the live path (``online_features``) with ``training_frame`` at sampled times."""
    settings = store.settings
    with db.session() as session:
        first, last = bar_bounds(session, settings.market.base_timeframe)
        if first is None or last is None:
            raise DataError("no bars stored: run 'tradebot ingest' first")
        training = store.training_frame(session, symbols, first, last)
        times = _sample(training["ts"], samples, seed)
        report = CheckReport("parity", [t.to_pydatetime() for t in times])
        for t in times:
            live = store.online_features(session, symbols, t.to_pydatetime())
            compare_rows(report, training[training["ts"] == t], live, tolerance)
    return report
