"""Settings: precedence (env > .env > TOML > defaults), secrets masking, clear config errors."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

import tradebot
from tradebot.kernel.errors import ConfigError
from tradebot.kernel.settings import DEFAULT_SYMBOLS, TradebotSettings, load_settings

MASK = "**********"
SECRET = "alpaca-key-s3cr3t"
EXAMPLE_CONFIG = Path(tradebot.__file__).parent / "examples" / "tradebot.toml"


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """No developer TRADEBOT_* variables, .env or tradebot.toml can leak into a test."""
    for name in list(os.environ):
        if name.upper().startswith("TRADEBOT_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    yield tmp_path


def write(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` and return it."""
    path.write_text(text, encoding="utf-8")
    return path


def config_error(path: Path) -> str:
    """The message of the ConfigError raised while loading ``path``."""
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    return str(info.value)


def test_defaults_are_valid() -> None:
    settings = load_settings()
    assert settings.symbols == DEFAULT_SYMBOLS
    assert settings.risk.max_position_pct == 0.10
    assert settings.broker.kind == "simulated" and settings.broker.paper
    assert not settings.live_trading
    assert settings.sources.alpaca.api_key is None


def test_toml_values_are_applied(tmp_path: Path) -> None:
    path = write(
        tmp_path / "cfg.toml",
        'symbols = ["AAPL", "MSFT"]\n'
        "[risk]\nmax_position_pct = 0.2\n"
        "[data]\nsessions = 10\n"
        "[model.xgboost]\nmax_depth = 5\n",
    )
    settings = load_settings(path)
    assert settings.symbols == ["AAPL", "MSFT"]
    assert settings.risk.max_position_pct == 0.2
    assert settings.data.sessions == 10
    assert settings.model.xgboost.max_depth == 5
    assert settings.risk.daily_loss_pct == 0.02  # untouched keys keep their defaults


def test_env_overrides_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "cfg.toml", "[risk]\nmax_position_pct = 0.2\ndaily_loss_pct = 0.03\n")
    monkeypatch.setenv("TRADEBOT_RISK__MAX_POSITION_PCT", "0.05")
    settings = load_settings(path)
    assert settings.risk.max_position_pct == 0.05
    assert settings.risk.daily_loss_pct == 0.03  # the rest of the TOML section survives


def test_dotenv_secret_is_secretstr_and_masked(tmp_path: Path) -> None:
    write(tmp_path / ".env", f"TRADEBOT_SOURCES__ALPACA__API_KEY={SECRET}\n")
    settings = load_settings()
    key = settings.sources.alpaca.api_key
    assert isinstance(key, SecretStr)
    assert key.get_secret_value() == SECRET
    assert settings.masked()["sources"]["alpaca"]["api_key"] == MASK
    assert SECRET not in str(settings.masked())
    assert SECRET not in str(settings)
    assert SECRET not in repr(settings)


def test_dotenv_beats_toml(tmp_path: Path) -> None:
    path = write(tmp_path / "cfg.toml", "[risk]\nmax_position_pct = 0.2\n")
    write(tmp_path / ".env", "TRADEBOT_RISK__MAX_POSITION_PCT=0.3\n")
    assert load_settings(path).risk.max_position_pct == 0.3


def test_env_beats_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(
        tmp_path / ".env",
        "TRADEBOT_SOURCES__ALPACA__API_KEY=from-dotenv\nTRADEBOT_RISK__MAX_POSITION_PCT=0.3\n",
    )
    monkeypatch.setenv("TRADEBOT_SOURCES__ALPACA__API_KEY", "from-env")
    monkeypatch.setenv("TRADEBOT_RISK__MAX_POSITION_PCT", "0.04")
    settings = load_settings()
    assert settings.sources.alpaca.api_key is not None
    assert settings.sources.alpaca.api_key.get_secret_value() == "from-env"
    assert settings.risk.max_position_pct == 0.04


def test_config_env_var_selects_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "tradebot.toml", "[risk]\nmax_position_pct = 0.2\n")  # the cwd default
    chosen = write(tmp_path / "chosen.toml", "[risk]\nmax_position_pct = 0.07\n")
    assert load_settings().risk.max_position_pct == 0.2
    monkeypatch.setenv("TRADEBOT_CONFIG", str(chosen))
    assert load_settings().risk.max_position_pct == 0.07


def test_invalid_value_names_the_key(tmp_path: Path) -> None:
    message = config_error(write(tmp_path / "bad.toml", "[risk]\nmax_position_pct = 5\n"))
    assert "risk.max_position_pct" in message
    assert "bad.toml" in message


def test_misspelled_key_suggests_the_right_one(tmp_path: Path) -> None:
    message = config_error(write(tmp_path / "typo.toml", "[risk]\nmax_postion_pct = 0.1\n"))
    assert "risk.max_postion_pct" in message
    assert "did you mean 'risk.max_position_pct'" in message


def test_misspelled_env_value_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADEBOT_RISK__MAX_POSITION_PCT", "ten percent")
    with pytest.raises(ConfigError, match=r"risk\.max_position_pct"):
        load_settings()


def test_corrupt_toml_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path / "corrupt.toml", "[risk\nmax_position_pct = = 0.1\n")
    message = config_error(path)
    assert str(path) in message
    assert "not valid TOML" in message


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    message = config_error(tmp_path / "nope.toml")
    assert "not found" in message and "nope.toml" in message


def test_missing_file_from_config_env_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADEBOT_CONFIG", str(tmp_path / "gone.toml"))
    with pytest.raises(ConfigError, match=r"gone\.toml"):
        load_settings()


def test_symbols_are_upper_cased(tmp_path: Path) -> None:
    path = write(tmp_path / "cfg.toml", 'symbols = ["aapl", " msft ", "Brk.B"]\n')
    assert load_settings(path).symbols == ["AAPL", "MSFT", "BRK.B"]


def test_duplicate_symbols_are_rejected(tmp_path: Path) -> None:
    message = config_error(write(tmp_path / "dup.toml", 'symbols = ["AAPL", "aapl"]\n'))
    assert "symbols" in message and "unique" in message


def test_empty_symbol_list_is_rejected(tmp_path: Path) -> None:
    assert "symbols" in config_error(write(tmp_path / "none.toml", "symbols = []\n"))


def test_settings_are_frozen() -> None:
    settings = load_settings()
    with pytest.raises(ValueError):
        settings.risk.max_position_pct = 0.9  # type: ignore[misc]


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mapping as dotted keys (lists are leaves)."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


@pytest.mark.skipif(
    not EXAMPLE_CONFIG.is_file(), reason=f"example config {EXAMPLE_CONFIG} not shipped yet"
)
def test_example_config_loads_and_documents_the_defaults() -> None:
    """The shipped example validates, and every value it shows is the real default."""
    settings = load_settings(EXAMPLE_CONFIG)
    assert settings.broker.kind == "simulated" and not settings.live_trading
    written = flatten(tomllib.loads(EXAMPLE_CONFIG.read_text(encoding="utf-8")))
    effective = flatten(settings.masked())
    defaults = flatten(TradebotSettings().masked())
    assert written, "the example config sets nothing"
    differ = {k: (effective[k], defaults[k]) for k in defaults if effective[k] != defaults[k]}
    assert differ == {}, f"example config differs from the defaults (example, default): {differ}"
