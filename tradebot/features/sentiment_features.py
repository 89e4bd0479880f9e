"""Per-symbol sentiment features over trailing windows, from items known by the decision time."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

ITEM_COLUMNS = ["kind", "symbols", "ts_known", "score"]


def items_for_symbol(items: pd.DataFrame, symbol: str) -> pd.DataFrame:
    """Items whose comma-separated ``symbols`` field names ``symbol``."""
    if items.empty:
        return items
    mask = items["symbols"].str.split(",").apply(lambda tickers: symbol in tickers)
    return items[mask]


def window_sums(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``values[lo[i]:hi[i]].sum()`` for each i (0 for an empty slice).

    Each slice is summed on its own (``np.add.reduceat``), never as a difference of running
    sums: a difference of cumulative sums leaves a residue that depends on how much history
    came before (e.g. -2.4e-15 instead of 0.0), and a tree model splitting at 0 then decides
    differently live (short history) than in training (long history)."""
    out = np.zeros(len(lo))
    take = hi > lo
    if take.any():
        padded = np.append(np.asarray(values, float), 0.0)  # reduceat needs index < size
        bounds = np.column_stack([lo[take], hi[take]]).ravel()
        out[take] = np.add.reduceat(padded, bounds)[::2]
    return out


def sentiment_features(
    items: pd.DataFrame, decision_times: pd.DatetimeIndex, windows_minutes: Sequence[int]
) -> pd.DataFrame:
    """Mean score and count per item kind and window, using items with ts_known in (t - w, t].

    ``items`` must already be filtered to one symbol. Mean is NaN when a window is empty.
    """
    out: dict[str, np.ndarray] = {}
    t = pd.DatetimeIndex(decision_times).as_unit("ns").asi8
    for kind in ("news", "post"):
        sub = items[items["kind"] == kind].sort_values("ts_known") if not items.empty else items
        known = (
            pd.DatetimeIndex(sub["ts_known"]).as_unit("ns").asi8
            if len(sub)
            else np.array([], dtype="int64")
        )
        scores = sub["score"].to_numpy(float) if len(sub) else np.array([], dtype=float)
        hi = np.searchsorted(known, t, side="right")
        for w in windows_minutes:
            lo = np.searchsorted(known, t - int(w) * 60_000_000_000, side="right")
            count = (hi - lo).astype(float)
            total = window_sums(scores, lo, hi)
            with np.errstate(invalid="ignore", divide="ignore"):
                out[f"{kind}_sent_{w}m"] = np.where(count > 0, total / count, np.nan)
            out[f"{kind}_count_{w}m"] = count
    return pd.DataFrame(out, index=decision_times)


NS_PER_MINUTE = 60_000_000_000
_ORIGIN_NS = pd.Timestamp("2020-01-01", tz="UTC").value  # fixed: values never depend on data


def _known_ns(sub: pd.DataFrame) -> np.ndarray:
    if not len(sub):
        return np.array([], dtype="int64")
    return pd.DatetimeIndex(sub["ts_known"]).as_unit("ns").asi8


def decayed_sentiment(
    known_ns: np.ndarray, scores: np.ndarray, t_ns: np.ndarray, half_life_minutes: float
) -> tuple[np.ndarray, np.ndarray]:
    """Exponentially decayed sum of scores and of item counts at each time in ``t_ns``.

    ``S(t) = sum over items with ts_known <= t of score * 2 ** (-(t - ts_known) / half_life)``
    (0 before the first item). ``known_ns`` must be sorted. Computed in log space with
    ``logaddexp.accumulate`` over positive and negative scores separately, so no weight
    overflows whatever the history length and a prefix of the items gives the same values.
    """
    rate = np.log(2.0) / float(half_life_minutes)  # per minute
    age = (known_ns - _ORIGIN_NS) / NS_PER_MINUTE * rate
    now = (t_ns - _ORIGIN_NS) / NS_PER_MINUTE * rate
    idx = np.searchsorted(known_ns, t_ns, side="right") - 1
    has = idx >= 0
    safe = np.where(has, idx, 0)
    with np.errstate(divide="ignore"):
        log_pos = np.log(np.clip(scores, 0.0, None)) + age
        log_neg = np.log(np.clip(-scores, 0.0, None)) + age
    total = np.zeros(len(t_ns))
    count = np.zeros(len(t_ns))
    if len(known_ns):
        pos = np.logaddexp.accumulate(log_pos)[safe] - now
        neg = np.logaddexp.accumulate(log_neg)[safe] - now
        cnt = np.logaddexp.accumulate(age)[safe] - now
        total = np.where(has, np.exp(pos) - np.exp(neg), 0.0)
        count = np.where(has, np.exp(cnt), 0.0)
    return total, count


def extended_sentiment_features(
    items: pd.DataFrame,
    decision_times: pd.DatetimeIndex,
    half_life_minutes: int,
    window_minutes: int,
    baseline_minutes: int,
) -> pd.DataFrame:
    """Per item kind (news, post), from items with ts_known <= t (``items`` of one symbol):

    - ``{kind}_sent_decay_{h}m``: decayed sum of scores, half-life ``h`` minutes (0 if none);
    - ``{kind}_count_decay_{h}m``: decayed item count (their ratio is the decayed mean);
    - ``{kind}_sent_surprise_{w}m_{b}m``: mean score in (t - w, t] minus the mean score in the
      baseline (t - b, t - w] before it; an empty baseline counts as neutral (0), an empty
      current window gives NaN. Items without a score are ignored.
    """
    out: dict[str, np.ndarray] = {}
    t = pd.DatetimeIndex(decision_times).as_unit("ns").asi8
    h, w, b = int(half_life_minutes), int(window_minutes), int(baseline_minutes)
    for kind in ("news", "post"):
        sub = items[(items["kind"] == kind) & items["score"].notna()] if len(items) else items
        sub = sub.sort_values("ts_known", kind="stable") if len(sub) else sub
        known = _known_ns(sub)
        scores = sub["score"].to_numpy(float) if len(sub) else np.array([], dtype=float)
        total, count = decayed_sentiment(known, scores, t, h)
        out[f"{kind}_sent_decay_{h}m"] = total
        out[f"{kind}_count_decay_{h}m"] = count

        hi = np.searchsorted(known, t, side="right")
        mid = np.searchsorted(known, t - w * NS_PER_MINUTE, side="right")
        lo = np.searchsorted(known, t - b * NS_PER_MINUTE, side="right")
        n_cur, n_base = (hi - mid).astype(float), (mid - lo).astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            current = np.where(n_cur > 0, window_sums(scores, mid, hi) / n_cur, np.nan)
            baseline = np.where(n_base > 0, window_sums(scores, lo, mid) / n_base, 0.0)
        out[f"{kind}_sent_surprise_{w}m_{b}m"] = current - baseline
    return pd.DataFrame(out, index=decision_times)
