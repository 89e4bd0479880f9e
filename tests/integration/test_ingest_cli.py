"""The ``tradebot ingest`` commands end to end: flat env endpoints, Prefect flows, counts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.kit.cli import cli
from tests.kit.fakes.alpaca import TEST_KEY, TEST_SECRET, AlpacaFake
from tests.kit.market import tiny_market


def _counts(stdout: str) -> list[int]:
    """The numbers of the counts table row: fetched, stored, unchanged, corrected, quarantined."""
    row = next(line for line in stdout.splitlines() if re.search(r"│\s*[\d,]+\s*│", line))
    return [int(n.replace(",", "")) for n in re.findall(r"[\d,]+", row)]


@pytest.mark.prefect
def test_ingest_market_and_file_through_the_cli(tmp_path: Path) -> None:
    bars = tiny_market(symbols=("AAPL",), n_sessions=3).bars
    with AlpacaFake(bars, page_size=400) as fake:
        env = {
            "TRADEBOT_ALPACA_DATA_URL": fake.url,  # the documented flat variables
            "ALPACA_API_KEY": TEST_KEY,
            "ALPACA_SECRET_KEY": TEST_SECRET,
            "COLUMNS": "200",
        }
        result = cli(tmp_path, "ingest", "market", "--source", "alpaca", "--symbols", "AAPL",
                     "--start", "2026-06-01", "--end", "2026-06-04", env=env, timeout=240)
        assert result.returncode == 0, result.stderr
        assert _counts(result.stdout) == [len(bars), len(bars), 0, 0, 0]
        assert len(fake.server.hits("/v2/stocks/bars")) == 3  # 1170 bars, 400 per page
        assert TEST_KEY not in result.stdout + result.stderr
        assert TEST_SECRET not in result.stdout + result.stderr

    csv = tmp_path / "msft.csv"
    csv.write_text("Date,Open,High,Low,Close,Adj Close,Volume\n2026-06-01,10,11,9,10.5,10,100\n"
                   "2026-06-02,10,11,9,10.5,10,-1\n")
    result = cli(tmp_path, "ingest", "file", str(csv), "--symbol", "MSFT", env=env, timeout=240)
    assert result.returncode == 0, result.stderr
    assert _counts(result.stdout) == [2, 1, 0, 0, 1]
    assert "1 rows quarantined" in result.stdout

    status = cli(tmp_path, "status", "--json", env=env, timeout=120)
    data = json.loads(status.stdout)
    assert data["counts"]["bars"] == len(bars) + 1
    assert data["counts"]["quarantined"] == 1
    assert data["quarantined_by_kind"] == {"bars": 1}
