"""``tradebot backtest --bars FILE --signals FILE`` through the real command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.kit.cli import cli

# 2026-06-01 is a Monday; 13:30 UTC is the 09:30 New York open. Opens rise by 1 a minute.
OPENS = [100.0 + i for i in range(10)]


def write_bars(path: Path) -> Path:
    lines = ["symbol,timestamp,open,high,low,close,volume"]
    for i, o in enumerate(OPENS):
        lines.append(f"XYZ,2026-06-01T13:{30 + i:02d}:00+00:00,{o},{o + 0.8},{o - 0.2},"
                     f"{o + 0.5},10000")
    lines.append("XYZ,2026-06-01T12:00:00+00:00,90,91,89,90,500")  # pre-market: left out
    path.write_text("\n".join(lines) + "\n")
    return path


def write_signals(path: Path) -> Path:
    # decided at 09:32 and 09:36 New York time (no offset: read in the market's zone)
    path.write_text("ts,symbol,target_weight\n2026-06-01 09:32,XYZ,0.5\n"
                    "2026-06-01 09:36,xyz,0\n")
    return path


def run_json(tmp_path: Path, *flags: str) -> dict:
    bars, signals = write_bars(tmp_path / "bars.csv"), write_signals(tmp_path / "signals.csv")
    result = cli(tmp_path, "backtest", "--bars", str(bars), "--signals", str(signals),
                 "--json", *flags, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def by_hand(buy_open: float, sell_open: float, commission_bps: float,
            slippage_bps: float) -> float:
    """Half the equity bought at the first open with slippage, sold at the second."""
    slip, rate = slippage_bps / 1e4, commission_bps / 1e4
    buy = buy_open * (1 + slip)
    qty = 0.5 * 100_000 / buy
    cash = 100_000 - qty * buy * (1 + rate)
    sell = sell_open * (1 - slip)
    return cash + qty * sell * (1 - rate)


def test_json_metrics_follow_the_cost_flags_by_hand(tmp_path: Path) -> None:
    out = run_json(tmp_path, "--commission-bps", "5", "--slippage-bps", "10")
    # next_open: the 09:32 decision fills at the 13:32 open (102), the exit at 13:36 (106)
    assert out["final_equity"] == pytest.approx(by_hand(102.0, 106.0, 5, 10), rel=1e-12)
    assert out["total_return"] == pytest.approx(out["final_equity"] / 100_000 - 1)
    assert out["n_trades"] == 1 and out["n_fills"] == 2
    for key in ("sharpe", "max_drawdown", "information_ratio"):
        assert key in out  # null when undefined (one day, no benchmark), never NaN
    assert out["information_ratio"] is None
    assert out["settings"]["commission_bps"] == 5 and out["settings"]["fill"] == "next_open"
    assert any("outside the regular session" in note for note in out["notes"])
    assert Path(out["report"]).read_text().count("data:image/png;base64,") >= 1


def test_fill_at_close_uses_the_bar_that_just_closed(tmp_path: Path) -> None:
    out = run_json(tmp_path, "--fill", "close", "--commission-bps", "0", "--slippage-bps", "0")
    # decided at 09:32: the 13:31 bar just closed at 101.5; the exit at the 13:35 close 105.5
    assert out["final_equity"] == pytest.approx(by_hand(101.5, 105.5, 0, 0), rel=1e-12)


@pytest.mark.parametrize(("content", "code", "message"), [
    ("ts,symbol,target_weight\n2026-06-01 09:32,ABC,0.5\n", 3, "without bars: ABC"),
    ("ts,symbol,target_weight\n2026-06-01 09:32,XYZ,-0.5\n", 2, "backtest.allow_short"),
    ("ts,symbol,weight\n2026-06-01 09:32,XYZ,0.5\n", 3, "missing column(s) ['target_weight']"),
    ("ts,symbol,target_weight\nnot a time,XYZ,0.5\n", 3, "unreadable ts on line(s) 2"),
    ("ts,symbol,target_weight\n2026-06-01 09:32,XYZ,lots\n", 3, "not a finite number"),
    ("ts,symbol,target_weight\n2026-06-01 09:32,XYZ,0.5\n2026-06-01 09:32,XYZ,0.2\n", 3,
     "several target weights"),
])
def test_bad_signals_are_clear_errors(tmp_path: Path, content: str, code: int,
                                      message: str) -> None:
    bars = write_bars(tmp_path / "bars.csv")
    (tmp_path / "signals.csv").write_text(content)
    result = cli(tmp_path, "backtest", "--bars", str(bars), "--signals",
                 str(tmp_path / "signals.csv"), timeout=120)
    assert result.returncode == code, result.stdout + result.stderr
    assert message in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "home" / "reports").exists()  # nothing written


def test_help_explains_the_signal_format() -> None:
    from typer.testing import CliRunner

    from tradebot.cli.main import app

    result = CliRunner().invoke(app, ["backtest", "--help"], env={"COLUMNS": "240"})
    text = " ".join(result.output.split())
    assert "columns ts, symbol, target_weight" in text
    assert all(flag in text for flag in ("--commission-bps", "--slippage-bps", "--fill", "--json"))
