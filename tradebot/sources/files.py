"""Import historical OHLCV bar files (``.csv``, ``.txt``, ``.csv.gz``, ``.parquet``) as bars.

Layouts: ``yahoo`` (``Date,Open,High,Low,Close,Adj Close,Volume``, one symbol per file, pass
``symbol``; ``Adj Close`` is ignored, bars carry the traded ``Close``), ``intraday`` (the same
with timestamps instead of dates) and ``long`` (a ``symbol``/``ticker`` column; ``symbol``
filters). Headers match case-insensitively ignoring spaces, underscores, hyphens and dots: time
``date``/``datetime``/``timestamp``/``time``/``ts``/``ts_event`` (or ``date`` plus ``time``),
``open``/``o``, ``high``/``h``, ``low``/``l``, ``close``/``c``, ``volume``/``vol``/``v``; other
columns are listed in ``BarFile.ignored_columns``. ``ts_event`` is the bar's open time, from:

* ISO 8601 with an offset or ``Z``: per-row offsets, so a file spanning a DST change is exact;
* ISO 8601 without one: local time in ``timezone``; a local time skipped or repeated by a DST
  change is a rejected row, not a guess (regular US sessions never fall in those hours);
* a date (``2026-01-05``, ``20260105``): a session, keyed at midnight in ``timezone`` as UTC, so
  daily bars are keyed by session date at midnight New York, as Alpaca keys 1Day bars;
* epoch seconds, milliseconds, microseconds or nanoseconds (UTC, unit from the magnitude).

Nothing is dropped silently: unparseable rows (bad timestamp, non-numeric value, wrong field
count, a second bar for the same symbol and time) come back in ``Fetched.rejected`` keyed
``line N`` (CSV, header is line 1) or ``row N`` (Parquet, 1-based). File-level problems (no
file, no rows, unknown format, missing columns, naive mixed with offset times) raise
``DataError``. Price sanity (high < low, ...) is the validator's job, not this module's.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from tradebot.kernel.errors import DataError
from tradebot.kernel.records import (
    BAR_COLUMNS,
    REJECT_COLUMNS,
    TIMEFRAMES,
    Fetched,
    empty,
    no_rejects,
)

NUMERIC = ("open", "high", "low", "close", "volume")
ALIASES: dict[str, tuple[str, ...]] = {
    "symbol": ("symbol", "ticker"),
    "time": ("date", "datetime", "timestamp", "time", "ts", "tsevent"),
    "open": ("open", "o"),
    "high": ("high", "h"),
    "low": ("low", "l"),
    "close": ("close", "c"),
    "volume": ("volume", "vol", "v"),
}
CSV_SUFFIXES = (".csv", ".txt", ".csv.gz", ".txt.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")
SPACING = {60.0: "1Min", 300.0: "5Min", 900.0: "15Min", 3600.0: "1Hour"}
_AWARE = r"[Tt ]\d{1,2}(?::?\d{2}){0,2}(?:\.\d+)?\s*(?:[zZ]|[+-]\d{2}(?::?\d{2})?)$"
_EPOCH = r"-?\d+(?:\.\d*)?"
_DATE_ONLY = r"\d{4}-\d{2}-\d{2}(?:[ T]00:00(?::00)?)?|\d{8}"  # midnight: a date
_EPOCH_UNITS = (("s", 1e11), ("ms", 1e14), ("us", 1e17), ("ns", np.inf))
_Raw = tuple[list[str], pd.DataFrame, pd.Series, list[dict[str, object]]]
"""Header, data rows as text (columns by position), their record keys, rows already rejected."""


@dataclass(frozen=True)
class BarFile:
    """An imported file: bars plus rejected rows, the bar timeframe and the detected layout."""

    fetched: Fetched
    timeframe: str
    layout: str
    ignored_columns: tuple[str, ...] = ()


def read_bars_file(
    path: Path,
    symbol: str | None = None,
    timezone: str = "America/New_York",
    timeframe: str | None = None,
) -> BarFile:
    """Parse ``path`` into bar records; see the module docstring for layouts and rules.

    ``symbol`` names the instrument of a file without a symbol column and filters a file with
    one. ``timeframe`` overrides inference from the median spacing of bars per symbol."""
    path = Path(path)
    name = path.name
    if timeframe is not None and timeframe not in TIMEFRAMES:
        raise DataError(f"{name}: timeframe {timeframe!r} is not one of {list(TIMEFRAMES)}")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise DataError(f"{name}: unknown time zone {timezone!r}") from exc
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise DataError(f"{name}: the file is empty")
    if name.lower().endswith(CSV_SUFFIXES):
        header, raw, keys, rejects = _read_csv(path)
    elif name.lower().endswith(PARQUET_SUFFIXES):
        header, raw, keys, rejects = _read_parquet(path)
    else:
        raise DataError(f"{name}: unknown file type; use {list(CSV_SUFFIXES + PARQUET_SUFFIXES)}")
    if raw.empty and not rejects:
        raise DataError(f"{name}: the file has a header but no data rows")
    cols, ignored = _columns(name, header)

    if "symbol" in cols:
        symbols = raw[cols["symbol"][0]].str.strip().str.upper()
        if symbol:
            wanted = symbol.strip().upper()
            keep = (symbols == wanted) | (symbols == "")  # blank symbols stay, to be rejected
            if not (symbols == wanted).any():
                found = sorted(set(symbols) - {""})
                raise DataError(f"{name}: no rows for symbol {wanted}; the file has {found}")
            raw, symbols, keys = raw[keep], symbols[keep], keys[keep]
    elif symbol and symbol.strip():
        symbols = pd.Series(symbol.strip().upper(), index=raw.index, dtype=object)
    else:
        raise DataError(
            f"{name}: no symbol/ticker column, so the instrument is unknown; pass --symbol"
        )

    time_text = raw[cols["time"][0]].str.strip()
    if len(cols["time"]) == 2:  # separate date and time columns
        time_text = (time_text + " " + raw[cols["time"][1]]).str.strip()
    ts, reasons, dates_only = parse_timestamps(time_text, timezone, name)
    why = [reasons, pd.Series(np.where(symbols == "", "missing symbol", ""), index=raw.index)]
    frame = pd.DataFrame({"symbol": symbols.astype(object), "ts_event": ts})
    for field in NUMERIC:
        text = raw[cols[field][0]].str.strip()
        values = pd.to_numeric(text, errors="coerce").astype("float64")
        bad, label = ~np.isfinite(values), pd.Series("", index=raw.index, dtype=object)
        label[bad] = (f"non-numeric {field} '" + text[bad] + "'").mask(
            text[bad] == "", f"missing {field}"
        )
        why.append(label)
        frame[field] = values

    parts = pd.concat(why, axis=1)
    bad_rows = (parts != "").any(axis=1)
    joined = ["; ".join(x for x in row if x) for row in parts[bad_rows].itertuples(index=False)]
    reason = pd.Series(joined, index=parts.index[bad_rows], dtype=object)
    good = frame[~bad_rows]
    dup = good.duplicated(["symbol", "ts_event"], keep="first")
    first = keys[good.index].groupby([good["symbol"], good["ts_event"]]).transform("first")
    reason = pd.concat([reason, "duplicate bar, first at " + first[dup]]).sort_index()
    for i, why_i in reason.items():
        payload = dict(zip(header, raw.loc[i], strict=True))
        rejects.append(_reject(keys[i], why_i, payload))
    rejects.sort(key=lambda r: int(str(r["record_key"]).split()[1]))
    good = good[~dup]

    if timeframe is None:
        timed = frame[frame["ts_event"].notna() & (frame["symbol"] != "")]
        timeframe = _infer_timeframe(
            timed.drop_duplicates(["symbol", "ts_event"]), dates_only, name
        )
    layout = "long" if "symbol" in cols else "yahoo" if dates_only else "intraday"
    if good.empty:
        bars = empty("bars")
    else:
        good = good.assign(ts_event=good["ts_event"].dt.as_unit("ns"))
        bars = good.sort_values(["symbol", "ts_event"], kind="stable")[BAR_COLUMNS]
        bars = bars.reset_index(drop=True)
    rejected = pd.DataFrame(rejects, columns=REJECT_COLUMNS) if rejects else no_rejects()
    return BarFile(Fetched(bars, rejected), timeframe, layout, tuple(ignored))


def _reject(key: str, reason: str, payload: dict[str, str]) -> dict[str, object]:
    return {"record_key": key, "reason": reason, "payload": payload}


def _norm(header: str) -> str:
    return re.sub(r"[\s_\-.]+", "", header).lower()


def _columns(name: str, header: list[str]) -> tuple[dict[str, list[int]], list[str]]:
    """Map each field to its column position(s); raise naming missing or ambiguous columns."""
    found: dict[str, list[int]] = {}
    for i, h in enumerate(header):
        for field, names in ALIASES.items():
            if _norm(h) in names:
                found.setdefault(field, []).append(i)
    times = found.get("time", [])
    split = len(times) == 2 and {_norm(header[i]) for i in times} == {"date", "time"}
    if split:  # separate date and time columns: date first
        found["time"] = sorted(times, key=lambda i: _norm(header[i]) != "date")
    for field, where in found.items():
        if len(where) > (2 if field == "time" and split else 1):
            columns = [header[i] for i in where]
            raise DataError(f"{name}: several columns could be {field}: {columns}")
    missing = [f for f in ALIASES if f != "symbol" and f not in found]
    if missing:
        missing = ["date/timestamp" if f == "time" else f for f in missing]
        raise DataError(f"{name}: missing columns {missing}; found {header}")
    used = {i for where in found.values() for i in where}
    return found, [h for i, h in enumerate(header) if i not in used]


def _read_csv(path: Path) -> _Raw:
    """Rows with the header's field count; others are rejected (trailing empty fields are cut)."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8-sig", newline="") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise DataError(f"{path.name}: cannot read as UTF-8 CSV text ({exc})") from exc
    first = next((ln for ln in text.splitlines() if ln.strip()), None)
    if first is None:
        raise DataError(f"{path.name}: the file is empty")
    if "\0" in first:
        raise DataError(f"{path.name}: not a text CSV file (binary content)")
    reader = csv.reader(io.StringIO(text), delimiter=max(",;\t|", key=first.count))
    header: list[str] | None = None
    rows: list[list[str]] = []
    keys: list[str] = []
    rejects: list[dict[str, object]] = []
    last = 0
    for fields in reader:
        line, last = last + 1, reader.line_num
        if len(fields) <= 1 and not "".join(fields).strip():
            continue  # a blank line holds no record
        if header is None:
            header = [f.strip() for f in fields]
            continue
        if len(fields) > len(header) and not any(f.strip() for f in fields[len(header) :]):
            fields = fields[: len(header)]  # trailing empty fields carry nothing
        if len(fields) != len(header):
            payload = dict(zip(header, fields, strict=False))
            payload.update({f"_extra_{i}": v for i, v in enumerate(fields[len(header) :], 1)})
            reason = f"expected {len(header)} fields, got {len(fields)}"
            rejects.append(_reject(f"line {line}", reason, payload))
            continue
        rows.append(fields)
        keys.append(f"line {line}")
    assert header is not None
    raw = pd.DataFrame(rows, columns=range(len(header)), dtype=object)
    return header, raw, pd.Series(keys, dtype=object), rejects


def _read_parquet(path: Path) -> _Raw:
    """Parquet values rendered as text so CSV and Parquet share one parser."""
    try:
        frame = pd.read_parquet(path)
    except ImportError as exc:
        raise DataError(f"{path.name}: reading Parquet needs pyarrow ({exc})") from exc
    except Exception as exc:  # pyarrow raises several unrelated types for corrupt files
        raise DataError(f"{path.name}: cannot read as Parquet ({exc})") from exc
    if not isinstance(frame.index, pd.RangeIndex):
        frame = frame.reset_index()  # e.g. a DatetimeIndex named Date
    header = [str(c) for c in frame.columns]
    raw = pd.DataFrame(
        {
            i: frame[c].astype(object).map(lambda v: "" if _isna(v) else str(v))
            for i, c in enumerate(frame.columns)
        },
        index=range(len(frame)),
    )
    keys = pd.Series([f"row {i + 1}" for i in range(len(frame))], dtype=object)
    return header, raw, keys, []


def _isna(value: object) -> bool:
    return value is None or (np.ndim(value) == 0 and bool(pd.isna(value)))


def parse_timestamps(text: pd.Series, tz: str, name: str) -> tuple[pd.Series, pd.Series, bool]:
    """UTC timestamps (NaT where unparseable), per-row reasons, and whether all are dates."""
    out = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns, UTC]")
    epoch = text.str.fullmatch(_EPOCH) & ~text.str.fullmatch(r"\d{8}")
    aware = text.str.contains(_AWARE, regex=True) & ~epoch
    naive = ~epoch & ~aware & (text != "")
    why = pd.Series(np.where(text == "", "missing timestamp", ""), index=text.index, dtype=object)
    if epoch.any():
        num = pd.to_numeric(text[epoch])
        lower = 0.0
        for unit, upper in _EPOCH_UNITS:
            part = num[(num.abs() >= lower) & (num.abs() < upper)]
            lower = upper
            if not part.empty:
                out[part.index] = pd.to_datetime(part, unit=unit, utc=True, errors="coerce")
    if aware.any():
        out[aware] = pd.to_datetime(text[aware], format="ISO8601", utc=True, errors="coerce")
    if naive.any():
        try:
            local = pd.to_datetime(text[naive], format="ISO8601", errors="coerce")
            zoned = local.dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
        except (TypeError, ValueError) as exc:  # an offset spelling _AWARE does not know
            raise DataError(f"{name}: cannot tell which times carry a UTC offset: {exc}") from exc
        explicit = (epoch | aware) & out.notna()
        if local.notna().any() and explicit.any():
            example, other = text[naive][local.notna()].iloc[0], text[explicit].iloc[0]
            raise DataError(
                f"{name}: the time column mixes values without a UTC offset (e.g. {example!r}) "
                f"and with one (e.g. {other!r}); the naive ones are ambiguous, so give every "
                "value an offset or none"
            )
        gap = local.notna() & zoned.isna()
        why[gap[gap].index] = (
            "local time '" + text[gap[gap].index] + f"' does not exist or is ambiguous in {tz} "
            "(DST change); give it a UTC offset"
        )
        out[naive] = zoned.dt.tz_convert("UTC")
    unparsed = out.isna() & (text != "") & (why == "")
    why[unparsed] = "unparseable timestamp '" + text[unparsed] + "'"
    parsed = text[out.notna()]
    dates_only = bool(len(parsed)) and bool(parsed.str.fullmatch(_DATE_ONLY).all())
    return out, why, dates_only


def _infer_timeframe(bars: pd.DataFrame, dates_only: bool, name: str) -> str:
    """Timeframe from the median spacing of consecutive bars of the same symbol."""
    ordered = bars.sort_values(["symbol", "ts_event"])
    gaps = ordered.groupby("symbol")["ts_event"].diff().dropna().dt.total_seconds()
    if gaps.empty:
        if dates_only or bars.empty:  # no bars at all: nothing is stored under the timeframe
            return "1Day" if dates_only else "1Min"
        raise DataError(f"{name}: one bar per symbol, timeframe unknown; pass --timeframe")
    median = float(gaps.quantile(0.5, interpolation="lower"))  # an actual spacing
    if 20 * 3600 <= median <= 4 * 86400:
        return "1Day"
    if median in SPACING:
        return SPACING[median]
    raise DataError(
        f"{name}: median bar spacing is {median / 60:g} minutes, not one of {list(TIMEFRAMES)}; "
        "pass --timeframe or resample the file"
    )
