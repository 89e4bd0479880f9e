"""Importing historical bar files: layouts, time zones, timeframe inference and bad input."""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pytest

from tradebot.kernel.errors import DataError
from tradebot.kernel.records import BAR_COLUMNS, REJECT_COLUMNS
from tradebot.sources.files import read_bars_file

UTC = "datetime64[ns, UTC]"
OHLCV = "1,2,0.5,1.5,100"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def utc(*stamps: str) -> list[pd.Timestamp]:
    return [pd.Timestamp(s, tz="UTC") for s in stamps]


def check_schema(frame: pd.DataFrame) -> None:
    assert list(frame.columns) == BAR_COLUMNS
    assert str(frame["ts_event"].dtype) == UTC
    for col in ("open", "high", "low", "close", "volume"):
        assert frame[col].dtype == "float64"


YAHOO = """Date,Open,High,Low,Close,Adj Close,Volume
2026-01-02,100.0,101.5,99.0,101.0,97.5,1000000
2026-01-05,101.0,103.0,100.5,102.5,99.0,1200000
2026-01-06,102.5,104.0,102.0,103.75,100.2,900000
"""


def test_yahoo_csv_with_symbol(tmp_path: Path) -> None:
    got = read_bars_file(write(tmp_path, "spy.csv", YAHOO), symbol="spy")
    frame = got.fetched.frame
    check_schema(frame)
    assert (got.layout, got.timeframe) == ("yahoo", "1Day")
    assert got.ignored_columns == ("Adj Close",)
    assert frame["symbol"].tolist() == ["SPY"] * 3
    # session date at midnight New York (EST, UTC-5 in January)
    assert frame["ts_event"].tolist() == utc(
        "2026-01-02 05:00", "2026-01-05 05:00", "2026-01-06 05:00"
    )
    assert frame["close"].tolist() == [101.0, 102.5, 103.75]  # Close, not Adj Close
    assert frame["volume"].tolist() == [1_000_000.0, 1_200_000.0, 900_000.0]
    assert got.fetched.rejected.empty
    assert list(got.fetched.rejected.columns) == REJECT_COLUMNS


def test_yahoo_daily_keys_follow_dst(tmp_path: Path) -> None:
    text = (
        "date,open,high,low,close,adj_close,volume\n"
        "2026-03-06,1,2,0.5,1.5,1.4,100\n"
        "2026-03-09,1,2,0.5,1.5,1.4,100\n"
    )
    got = read_bars_file(write(tmp_path, "x.csv", text), symbol="X")
    assert got.ignored_columns == ("adj_close",)
    # midnight EST before the change, midnight EDT after it
    assert got.fetched.frame["ts_event"].tolist() == utc("2026-03-06 05:00", "2026-03-09 04:00")


def test_yahoo_without_symbol_asks_for_it(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="--symbol"):
        read_bars_file(write(tmp_path, "spy.csv", YAHOO))


LONG = """Ticker,Date,O,H,L,C,V
AAPL,2026-01-02,10,11,9,10.5,100
MSFT,2026-01-02,20,21,19,20.5,200
aapl,2026-01-05,10.5,12,10,11,150
MSFT,2026-01-05,20.5,22,20,21,250
"""


def test_long_format_two_symbols(tmp_path: Path) -> None:
    path = write(tmp_path, "long.csv", LONG)
    got = read_bars_file(path)
    frame = got.fetched.frame
    check_schema(frame)
    assert (got.layout, got.timeframe) == ("long", "1Day")
    assert frame["symbol"].tolist() == ["AAPL", "AAPL", "MSFT", "MSFT"]
    assert frame["close"].tolist() == [10.5, 11.0, 20.5, 21.0]

    only = read_bars_file(path, symbol="msft").fetched
    assert only.frame["symbol"].tolist() == ["MSFT", "MSFT"]
    assert only.frame["open"].tolist() == [20.0, 20.5]
    assert only.rejected.empty

    with pytest.raises(
        DataError, match=r"no rows for symbol TSLA; the file has \['AAPL', 'MSFT'\]"
    ):
        read_bars_file(path, symbol="TSLA")


def test_intraday_offsets_across_dst(tmp_path: Path) -> None:
    rows = [
        "2026-03-06 09:30:00-05:00",
        "2026-03-06 09:31:00-05:00",
        "2026-03-06T09:32:00-05:00",
        "2026-03-09 09:30:00-04:00",
        "2026-03-09 09:31:00-04:00",
        "2026-03-09T13:32:00Z",
    ]
    text = "Time_Stamp,Open,High,Low,Close,Volume\n" + "".join(f"{r},{OHLCV}\n" for r in rows)
    got = read_bars_file(write(tmp_path, "qqq.csv", text), symbol="QQQ")
    frame = got.fetched.frame
    check_schema(frame)
    assert (got.layout, got.timeframe) == ("intraday", "1Min")
    assert frame["ts_event"].tolist() == utc(
        "2026-03-06 14:30",
        "2026-03-06 14:31",
        "2026-03-06 14:32",
        "2026-03-09 13:30",
        "2026-03-09 13:31",
        "2026-03-09 13:32",
    )


def test_fifteen_minute_bars_and_explicit_timeframe(tmp_path: Path) -> None:
    stamps = ["09:30", "09:45", "10:00", "10:15"]
    text = "datetime,open,high,low,close,volume\n"
    text += "".join(f"2026-01-05T{t}:00-05:00,{OHLCV}\n" for t in stamps)
    path = write(tmp_path, "q.csv", text)
    assert read_bars_file(path, symbol="Q").timeframe == "15Min"
    assert read_bars_file(path, symbol="Q", timeframe="5Min").timeframe == "5Min"
    with pytest.raises(DataError, match="timeframe '2Min'"):
        read_bars_file(path, symbol="Q", timeframe="2Min")


def test_unsupported_spacing_asks_for_timeframe(tmp_path: Path) -> None:
    text = "datetime,open,high,low,close,volume\n"
    text += "".join(f"2026-01-05T{t}:00Z,{OHLCV}\n" for t in ("14:30", "15:00", "15:30"))
    with pytest.raises(DataError, match="median bar spacing is 30 minutes"):
        read_bars_file(write(tmp_path, "q.csv", text), symbol="Q")


def test_naive_intraday_is_local_new_york(tmp_path: Path) -> None:
    text = (
        "Date,Time,Open,High,Low,Close,Volume\n"
        "2026-03-06,09:30,1,2,0.5,1.5,100\n"
        "2026-03-06,09:35,1,2,0.5,1.5,100\n"
        "2026-03-09,09:30,1,2,0.5,1.5,100\n"
        "2026-03-09,09:35,1,2,0.5,1.5,100\n"
        "2026-03-08,02:30,1,2,0.5,1.5,100\n"  # skipped by the spring-forward change
    )
    got = read_bars_file(write(tmp_path, "n.csv", text), symbol="N")
    assert (got.layout, got.timeframe) == ("intraday", "5Min")
    assert got.fetched.frame["ts_event"].tolist() == utc(
        "2026-03-06 14:30", "2026-03-06 14:35", "2026-03-09 13:30", "2026-03-09 13:35"
    )
    rejected = got.fetched.rejected
    assert rejected["record_key"].tolist() == ["line 6"]
    assert "local time '2026-03-08 02:30' does not exist or is ambiguous" in rejected["reason"][0]

    chicago = read_bars_file(write(tmp_path, "n.csv", text), symbol="N", timezone="America/Chicago")
    assert chicago.fetched.frame["ts_event"].iloc[0] == pd.Timestamp("2026-03-06 15:30", tz="UTC")
    with pytest.raises(DataError, match="unknown time zone 'Mars/Base'"):
        read_bars_file(write(tmp_path, "n.csv", text), symbol="N", timezone="Mars/Base")


def test_epoch_milliseconds_and_seconds(tmp_path: Path) -> None:
    ms = [1772807400000, 1772807460000, 1772807520000]  # 2026-03-06 14:30, :31, :32 UTC
    text = "ts,open,high,low,close,volume\n" + "".join(f"{v},{OHLCV}\n" for v in ms)
    got = read_bars_file(write(tmp_path, "e.csv", text), symbol="E")
    assert got.timeframe == "1Min"
    expected = utc("2026-03-06 14:30", "2026-03-06 14:31", "2026-03-06 14:32")
    assert got.fetched.frame["ts_event"].tolist() == expected
    secs = text.replace("000,", ",")
    assert (
        read_bars_file(write(tmp_path, "e.csv", secs), symbol="E")
        .fetched.frame["ts_event"]
        .tolist()
        == expected
    )


def test_parquet_file(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "symbol": ["AAPL", "AAPL", "MSFT"],
            "timestamp": pd.to_datetime(
                ["2026-01-05 14:30", "2026-01-05 15:30", "2026-01-05 14:30"], utc=True
            ),
            "open": [1.0, 2.0, 3.0],
            "high": [2.0, 3.0, 4.0],
            "low": [0.5, 1.5, 2.5],
            "close": [1.5, None, 3.5],
            "volume": [10, 20, 30],
        }
    )
    path = tmp_path / "bars.parquet"
    frame.to_parquet(path)
    got = read_bars_file(path)
    bars = got.fetched.frame
    check_schema(bars)
    assert (got.layout, got.timeframe) == ("long", "1Hour")
    assert bars["symbol"].tolist() == ["AAPL", "MSFT"]
    assert bars["ts_event"].tolist() == utc("2026-01-05 14:30", "2026-01-05 14:30")
    assert bars["volume"].tolist() == [10.0, 30.0]
    rejected = got.fetched.rejected
    assert rejected["record_key"].tolist() == ["row 2"]
    assert rejected["reason"].tolist() == ["missing close"]
    assert rejected["payload"][0]["close"] == ""


def test_yahoo_parquet_with_date_index(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "Open": [1.0, 2.0],
            "High": [2.0, 3.0],
            "Low": [0.5, 1.0],
            "Close": [1.5, 2.5],
            "Adj Close": [1.4, 2.4],
            "Volume": [10, 20],
        },
        index=pd.DatetimeIndex(["2026-01-02", "2026-01-05"], name="Date"),
    )
    path = tmp_path / "spy.pq"
    frame.to_parquet(path)
    got = read_bars_file(path, symbol="SPY")
    assert (got.layout, got.timeframe) == ("yahoo", "1Day")
    assert got.fetched.frame["ts_event"].tolist() == utc("2026-01-02 05:00", "2026-01-05 05:00")


def test_gzipped_semicolon_csv(tmp_path: Path) -> None:
    path = tmp_path / "bars.csv.gz"
    with gzip.open(path, "wt") as fh:
        fh.write("SYMBOL;TS;OPEN;HIGH;LOW;CLOSE;VOLUME\nabc;2026-01-05T14:30:00Z;1;2;0.5;1.5;7\n")
    frame = read_bars_file(path, timeframe="1Min").fetched.frame
    assert frame.iloc[0].tolist() == [
        "ABC",
        pd.Timestamp("2026-01-05 14:30", tz="UTC"),
        1.0,
        2.0,
        0.5,
        1.5,
        7.0,
    ]


def test_wrong_columns_are_named(tmp_path: Path) -> None:
    path = write(tmp_path, "prices.csv", "date,open,high,low,vol\n2026-01-02,1,2,0.5,100\n")
    with pytest.raises(DataError) as err:
        read_bars_file(path, symbol="X")
    assert str(err.value) == (
        "prices.csv: missing columns ['close']; found ['date', 'open', 'high', 'low', 'vol']"
    )
    path = write(tmp_path, "p2.csv", "when,open,high,low,close,volume\n2026-01-02,1,2,0.5,1,1\n")
    with pytest.raises(DataError, match=r"missing columns \['date/timestamp'\]"):
        read_bars_file(path, symbol="X")


def test_empty_and_header_only_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"empty\.csv: the file is empty"):
        read_bars_file(write(tmp_path, "empty.csv", ""), symbol="X")
    with pytest.raises(DataError, match=r"blank\.csv: the file is empty"):
        read_bars_file(write(tmp_path, "blank.csv", "\n\n"), symbol="X")
    header = "Date,Open,High,Low,Close,Adj Close,Volume\n"
    with pytest.raises(DataError, match=r"hdr\.csv: the file has a header but no data rows"):
        read_bars_file(write(tmp_path, "hdr.csv", header), symbol="X")


def test_missing_file_and_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        read_bars_file(tmp_path / "nope.csv", symbol="X")
    with pytest.raises(DataError, match="unknown file type"):
        read_bars_file(write(tmp_path, "bars.json", "{}"), symbol="X")
    with pytest.raises(DataError, match="cannot read as Parquet"):
        read_bars_file(write(tmp_path, "bad.parquet", "not parquet"), symbol="X")


def test_garbage_rows_are_rejected_with_line_numbers(tmp_path: Path) -> None:
    text = (
        "timestamp,symbol,open,high,low,close,volume\n"  # line 1
        f"2026-01-05T14:30:00Z,AAPL,{OHLCV}\n"  # 2 good
        f"garbage,AAPL,{OHLCV}\n"  # 3 bad timestamp
        "2026-01-05T14:31:00Z,AAPL,1,2,0.5,n/a,100\n"  # 4 non-numeric close
        f"2026-01-05T14:32:00Z,AAPL,{OHLCV},extra\n"  # 5 extra field
        "\n"  # 6 blank
        f"2026-01-05T14:33:00Z,AAPL,{OHLCV}\n"  # 7 good
        "2026-01-05T14:34:00Z,AAPL,null,2,0.5,1.5,\n"  # 8 null open, missing volume
        f"2026-01-05T14:33:00Z,AAPL,{OHLCV}\n"  # 9 duplicate of line 7
        f"2026-01-05T14:35:00Z,,{OHLCV}\n"  # 10 no symbol
        f"2026-01-05T14:36:00Z,AAPL,1,2\n"  # 11 too few fields
        f"2026-01-05T14:37:00Z,AAPL,{OHLCV}\n"  # 12 good
    )
    got = read_bars_file(write(tmp_path, "g.csv", text))
    frame = got.fetched.frame
    assert frame["ts_event"].tolist() == utc(
        "2026-01-05 14:30", "2026-01-05 14:33", "2026-01-05 14:37"
    )
    assert got.timeframe == "1Min"
    rejected = got.fetched.rejected
    assert list(rejected.columns) == REJECT_COLUMNS
    assert dict(zip(rejected["record_key"], rejected["reason"], strict=True)) == {
        "line 3": "unparseable timestamp 'garbage'",
        "line 4": "non-numeric close 'n/a'",
        "line 5": "expected 7 fields, got 8",
        "line 8": "non-numeric open 'null'; missing volume",
        "line 9": "duplicate bar, first at line 7",
        "line 10": "missing symbol",
        "line 11": "expected 7 fields, got 4",
    }
    payloads = dict(zip(rejected["record_key"], rejected["payload"], strict=True))
    assert payloads["line 3"] == {
        "timestamp": "garbage",
        "symbol": "AAPL",
        "open": "1",
        "high": "2",
        "low": "0.5",
        "close": "1.5",
        "volume": "100",
    }
    assert payloads["line 5"]["_extra_1"] == "extra"


def test_all_rows_rejected_gives_empty_frame(tmp_path: Path) -> None:
    text = "Date,Open,High,Low,Close,Volume\nx,1,2,0.5,1.5,10\n2026-01-02,a,2,0.5,1.5,10\n"
    got = read_bars_file(write(tmp_path, "bad.csv", text), symbol="X")
    assert got.fetched.frame.empty
    check_schema(got.fetched.frame)
    assert got.fetched.rejected["record_key"].tolist() == ["line 2", "line 3"]


def test_mixed_naive_and_aware_is_an_error(tmp_path: Path) -> None:
    text = (
        "datetime,open,high,low,close,volume\n"
        f"2026-01-05 09:30:00,{OHLCV}\n"
        f"2026-01-05T14:31:00Z,{OHLCV}\n"
    )
    with pytest.raises(DataError, match="mixes values without a UTC offset"):
        read_bars_file(write(tmp_path, "m.csv", text), symbol="M")


def test_ambiguous_header_is_an_error(tmp_path: Path) -> None:
    text = f"date,timestamp,open,high,low,close,volume\n2026-01-05,2026-01-05T14:30Z,{OHLCV}\n"
    with pytest.raises(DataError, match=r"several columns could be time: \['date', 'timestamp'\]"):
        read_bars_file(write(tmp_path, "a.csv", text), symbol="A")
