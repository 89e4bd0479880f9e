"""The real ``tradebot`` entry point: clear errors, documented exit codes, no partial writes."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.kit.cli import cli

MASK = "**********"
COMMANDS = ["demo", "status", "config", "report", "train", "trade", "ingest", "features", "init"]
WRITE_TABLES = ["bars", "news_articles", "social_posts", "orders", "fills", "trade_cycles"]


def write_config(tmp_path: Path, text: str, name: str = "cfg.toml") -> Path:
    """A config file in ``tmp_path``."""
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The CLI's 'error: ...' message (first line and any indented continuation lines)."""
    match = re.search(r"^error: .*(?:\n  .*)*", result.stderr, re.M)
    assert match, f"no 'error:' line on stderr:\n{result.stderr}"
    return match.group(0)


def assert_no_partial_writes(tmp_path: Path) -> None:
    """Either no project database was created, or none of its data tables has a row."""
    db = tmp_path / "home" / "tradebot.db"
    if not db.exists():
        return
    with sqlite3.connect(db) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        counts = {
            t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
            for t in WRITE_TABLES
            if t in tables
        }
    assert not any(counts.values()), f"rows written despite the error: {counts}"


def test_help_lists_every_command(tmp_path: Path) -> None:
    result = cli(tmp_path, "--help")
    assert result.returncode == 0, result.stderr
    for name in COMMANDS:
        assert re.search(rf"^\W*{name}\s{{2,}}\S", result.stdout, re.M), f"{name} not in --help"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[risk\nmax_position_pct = = 0.1\n", ["{path}", "not valid TOML"]),
        ("[risk]\nmax_position_pct = 5\n", ["{path}", "risk.max_position_pct"]),
        ("[risk]\nmax_postion_pct = 0.1\n", ["did you mean 'risk.max_position_pct'"]),
        ('symbols = ["AAPL", "aapl"]\n', ["symbols", "unique"]),
    ],
    ids=["corrupt-toml", "invalid-value", "misspelled-key", "duplicate-symbols"],
)
def test_bad_config_exits_2_and_names_the_problem(
    tmp_path: Path, text: str, expected: list[str]
) -> None:
    path = write_config(tmp_path, text)
    result = cli(tmp_path, "--config", str(path), "init")
    assert result.returncode == 2, result.stderr
    message = error_line(result)
    for part in expected:
        assert part.format(path=path) in message
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "home" / "tradebot.db").exists()


def test_missing_config_file_exits_2(tmp_path: Path) -> None:
    result = cli(tmp_path, "--config", "absent.toml", "status")
    assert result.returncode == 2
    assert "config file not found" in error_line(result) and "absent.toml" in result.stderr
    assert not (tmp_path / "home" / "tradebot.db").exists()


def test_error_message_is_printed_verbatim(tmp_path: Path) -> None:
    """Square brackets in a path are not eaten as markup and long messages are not wrapped."""
    path = write_config(tmp_path, "[risk\n", name="configs[prod]/" + "x" * 80 + ".toml")
    result = cli(tmp_path, "--config", str(path), "config", "show")
    assert result.returncode == 2
    assert f"error: config file {path} is not valid TOML" in result.stderr


def test_unknown_symbol_exits_3_without_writing(tmp_path: Path) -> None:
    path = write_config(tmp_path, "[data]\nsessions = 5\n")
    result = cli(tmp_path, "--config", str(path), "ingest", "--symbol", "ZZZZ", timeout=180)
    assert result.returncode == 3, result.stderr
    message = error_line(result)
    assert "unknown symbol 'ZZZZ'" in message
    assert "QQQ, AAPL, MSFT, NVDA, AMZN, META" in message  # tells the user what is allowed
    assert "Traceback" not in result.stderr  # rejected before any flow runs
    assert_no_partial_writes(tmp_path)


def test_too_few_sessions_exits_3_naming_the_key(tmp_path: Path) -> None:
    path = write_config(tmp_path, "[data]\nsessions = 3\nreplay_sessions = 1\n")
    result = cli(tmp_path, "--config", str(path), "ingest", timeout=180)
    assert result.returncode == 3, result.stderr
    assert "data.sessions=3" in error_line(result)
    assert "Traceback" not in result.stderr
    assert_no_partial_writes(tmp_path)


@pytest.mark.prefect
def test_trade_without_champion_exits_4(tmp_path: Path) -> None:
    result = cli(tmp_path, "trade", "--once", "--asof", "2026-06-02T15:00:00Z", timeout=180)
    assert result.returncode == 4, result.stderr
    message = error_line(result)
    assert "no model holds the 'champion' alias" in message
    assert "tradebot train" in message  # says what to do next
    assert_no_partial_writes(tmp_path)


def test_config_show_masks_env_secret(tmp_path: Path) -> None:
    secret = "sekret-123"
    result = cli(tmp_path, "config", "show", env={"TRADEBOT_SOURCES__NEWSAPI__API_KEY": secret})
    assert result.returncode == 0, result.stderr
    assert secret not in result.stdout + result.stderr
    assert re.search(rf"sources\.newsapi\.api_key\W+{re.escape(MASK)}", result.stdout)


def test_config_show_json_is_effective_and_masked(tmp_path: Path) -> None:
    path = write_config(tmp_path, "[risk]\nmax_position_pct = 0.2\ndaily_loss_pct = 0.03\n")
    env = {
        "TRADEBOT_SOURCES__NEWSAPI__API_KEY": "sekret-123",
        "TRADEBOT_RISK__DAILY_LOSS_PCT": "0.01",
    }
    result = cli(tmp_path, "--config", str(path), "config", "show", "--json", env=env)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["sources"]["newsapi"]["api_key"] == MASK
    assert data["sources"]["alpaca"]["api_key"] is None
    assert data["risk"]["max_position_pct"] == 0.2  # from --config
    assert data["risk"]["daily_loss_pct"] == 0.01  # env beats the file
    assert data["home"] == str(tmp_path / "home")
    assert "sekret-123" not in result.stdout
