"""Validation of ingested records: valid rows go on to the store, the rest to quarantine.

Each rule is a named pandera check; a row failing any rule is rejected with every reason it
failed (joined by "; "), never dropped silently. Duplicate keys inside one batch are rejected
too: an identical copy keeps its first occurrence, conflicting copies are all rejected (we
cannot know which one is right).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa

from tradebot.kernel.clock import MarketClock
from tradebot.kernel.records import REJECT_COLUMNS, RecordKind, no_rejects

PRICES = ["open", "high", "low", "close"]
OHLCV = [*PRICES, "volume"]
INTRADAY = ("1Min", "5Min", "15Min", "1Hour")

Rule = Callable[[pd.DataFrame], pd.Series]


@dataclass
class Validated:
    valid: pd.DataFrame
    rejected: pd.DataFrame  # REJECT_COLUMNS


def _finite(frame: pd.DataFrame) -> pd.Series:
    values = frame[OHLCV].to_numpy(dtype=float, na_value=np.nan)
    return pd.Series(np.isfinite(values).all(axis=1), index=frame.index)


def _bar_rules(session_check: Callable[[pd.Series], np.ndarray] | None) -> dict[str, Rule]:
    rules: dict[str, Rule] = {
        "NaN or infinite value": _finite,
        "non-positive price": lambda f: (f[PRICES] > 0).all(axis=1),
        "high < low": lambda f: ~(f["high"] < f["low"]),
        "open outside [low, high]": lambda f: ~((f["open"] < f["low"]) | (f["open"] > f["high"])),
        "close outside [low, high]": lambda f: ~(
            (f["close"] < f["low"]) | (f["close"] > f["high"])
        ),
        "negative volume": lambda f: ~(f["volume"] < 0),
        "missing symbol or time": lambda f: f["symbol"].notna() & f["ts_event"].notna(),
    }
    if session_check is not None:
        rules["outside the regular session"] = lambda f: pd.Series(
            session_check(f["ts_event"]), index=f.index
        )
    return rules


def _text_rules(time_column: str) -> dict[str, Rule]:
    def present(column: str) -> Rule:
        return lambda f: f[column].notna() & (f[column].astype(str).str.strip() != "")

    return {
        "missing id": present("external_id"),
        f"missing {time_column}": lambda f: f[time_column].notna(),
        "missing text": present("title"),
    }


def _all_pass(frame: pd.DataFrame, rules: dict[str, Rule]) -> bool:
    """True when every rule holds on every row (plain boolean results, all True). Anything else
    (a failing row, missing values, an error) is left to pandera, which names the failures."""
    for rule in rules.values():
        try:
            result = rule(frame)
        except Exception:
            return False
        if not (
            isinstance(result, pd.Series) and result.dtype == np.bool_
            and result.index.equals(frame.index) and bool(result.all())
        ):
            return False
    return True


def _failures(frame: pd.DataFrame, rules: dict[str, Rule]) -> pd.Series:
    """Per row, the '; '-joined names of the rules it fails ('' when it passes).

    The rules are evaluated directly first; pandera (whose bookkeeping costs several times the
    rules themselves) runs only when some row fails."""
    if _all_pass(frame, rules):
        return pd.Series("", index=frame.index, dtype=object)
    schema = pa.DataFrameSchema(
        checks=[pa.Check(rule, name=name, ignore_na=False) for name, rule in rules.items()]
    )
    reasons = pd.Series("", index=frame.index, dtype=object)
    try:
        schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases.dropna(subset=["index"]).drop_duplicates(["check", "index"])
        order = {name: i for i, name in enumerate(rules)}
        cases = cases.assign(rank=cases["check"].map(order)).sort_values(["index", "rank"])
        joined = cases.groupby("index", sort=False)["check"].agg("; ".join)
        reasons.loc[joined.index] = joined.to_numpy()
    return reasons


def json_safe(value: Any) -> Any:
    """A value as JSON can hold it: times as ISO text, NaN/inf as text, numpy scalars unboxed."""
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    try:
        json.dumps(value)
    except TypeError:
        return str(value)
    return value


def _rejects(rows: pd.DataFrame, keys: pd.Series, reasons: pd.Series) -> pd.DataFrame:
    if rows.empty:
        return no_rejects()
    payloads = [{k: json_safe(v) for k, v in r.items()} for r in rows.to_dict("records")]
    return pd.DataFrame(
        {"record_key": keys.to_numpy(), "reason": reasons.to_numpy(), "payload": payloads},
        columns=REJECT_COLUMNS,
    )


def _duplicates(frame: pd.DataFrame, key: list[str], values: list[str]) -> pd.Series:
    """Reasons for rows whose key repeats: extra identical copies, or all conflicting copies."""
    reasons = pd.Series("", index=frame.index, dtype=object)
    repeated = frame.duplicated(key, keep=False)
    if not repeated.any():
        return reasons
    extra_copy = frame.duplicated(key + values, keep="first") & repeated
    distinct = frame[repeated].drop_duplicates(key + values).groupby(key).size()
    conflicting = frame.set_index(key).index.isin(distinct[distinct > 1].index)
    reasons[extra_copy] = "duplicate key (identical copy)"
    reasons[conflicting] = "duplicate key with conflicting values"
    return reasons


def _split(
    frame: pd.DataFrame, reasons: pd.Series, make_keys: Callable[[pd.Series], pd.Series]
) -> Validated:
    """Valid rows and rejects. ``make_keys(bad)`` gives the record keys of at least the rejected
    rows and every row sharing a key with one (repeated keys are numbered " #2", " #3", ...);
    it is not called when nothing is rejected."""
    bad = reasons != ""
    if not bad.any():
        return Validated(frame.reset_index(drop=True), no_rejects())
    keys = make_keys(bad)
    occurrence = keys.groupby(keys).cumcount()
    keys = keys.where(occurrence == 0, keys + " #" + (occurrence + 1).astype(str))
    rejected = frame[bad]
    return Validated(
        valid=frame[~bad].reset_index(drop=True),
        rejected=_rejects(rejected, keys.loc[rejected.index], reasons[bad]),
    )


def _merge(first: pd.Series, second: pd.Series) -> pd.Series:
    if not (second != "").any():
        return first
    both = (first != "") & (second != "")
    return first.where(~both, first + "; " + second).where(first != "", second)


def validate_bars(
    bars: pd.DataFrame, timeframe: str, clock: MarketClock | None = None
) -> Validated:
    """Split bars into valid rows and rejects. With ``clock``, intraday bars must lie inside
    the regular session (pass None for 24/7 markets such as crypto)."""
    if bars.empty:
        return Validated(bars.reset_index(drop=True), no_rejects())
    frame = bars.reset_index(drop=True)
    check = clock.in_session if clock is not None and timeframe in INTRADAY else None
    reasons = _merge(_failures(frame, _bar_rules(check)), _duplicates(
        frame, ["symbol", "ts_event"], OHLCV
    ))
    return _split(frame, reasons, lambda bad: _bar_keys(frame, bad))


def _iso(t: Any) -> str:
    return t.isoformat() if isinstance(t, pd.Timestamp) else str(t)


def _bar_keys(frame: pd.DataFrame, bad: pd.Series) -> pd.Series:
    """Keys ``symbol@time`` of the rejected rows and of every row sharing a key with one.

    With a datetime ``ts_event`` column the time text (isoformat, or "NaT") is one-to-one and
    holds no "@", so equal keys mean equal (symbol text, time): only rows in a group of a
    rejected row get a key. Other columns (no dtype guarantee) get keys for all rows."""
    symbols, times = frame["symbol"].astype(str), frame["ts_event"]
    if pd.api.types.is_datetime64_any_dtype(times):
        group = frame.groupby([symbols, times], dropna=False, sort=False).ngroup()
        need = group.isin(group[bad].unique()) | bad
        symbols, times = symbols[need], times[need]
    return symbols + "@" + times.map(_iso)


def validate_texts(items: pd.DataFrame, kind: RecordKind) -> Validated:
    """Articles (``news``) or posts (``posts``) without id, time or text are rejected."""
    if items.empty:
        return Validated(items.reset_index(drop=True), no_rejects())
    frame = items.reset_index(drop=True)
    time_column = "published_at" if kind == "news" else "created_at"
    text_columns = [c for c in frame.columns if c not in ("external_id", time_column)]
    reasons = _merge(
        _failures(frame, _text_rules(time_column)),
        _duplicates(frame, ["external_id"], text_columns),
    )
    keys = frame["external_id"].astype(str).where(
        frame["external_id"].notna(), "row " + (frame.index + 1).astype(str)
    )
    return _split(frame, reasons, lambda _bad: keys)
