"""The one validated configuration: TOML file, then TRADEBOT_* environment variables, then .env.

Precedence (highest first): environment variables, ``.env``, the TOML file, built-in defaults.
Nested keys use ``__`` in environment variables, e.g. ``TRADEBOT_RISK__MAX_POSITION_PCT=0.05``.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from tradebot.kernel.errors import ConfigError
from tradebot.kernel.model_settings import (  # noqa: F401  (re-exported)
    EnsembleSettings,
    LSTMSettings,
    ModelSettings,
    OptunaSettings,
    SklearnSettings,
    TransformerSettings,
    XGBoostSettings,
)

CONFIG_ENV_VAR = "TRADEBOT_CONFIG"
DEFAULT_CONFIG_FILE = "tradebot.toml"


class Section(BaseModel):
    """Base for config sections: frozen and strict about unknown keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class MarketSettings(Section):
    calendar: str = "XNYS"
    timezone: str = "America/New_York"
    base_timeframe: Literal["1Min"] = "1Min"
    bar_minutes: int = Field(15, ge=1, le=60, description="Decision bar size in minutes")


class DataSettings(Section):
    source: Literal["synthetic"] = "synthetic"
    start: date = Field(date(2026, 6, 1), description="First session of the data window")
    sessions: int = Field(60, ge=3, description="Number of NYSE sessions to ingest")
    replay_sessions: int = Field(
        1, ge=1, description="Final sessions held out of training and replayed by the trade flow"
    )
    regular_session_only: bool = Field(
        True, description="Quarantine intraday equity bars outside the regular session"
    )


class SyntheticSettings(Section):
    seed: int = 7
    signal_strength: float = Field(
        0.6, ge=0.0, le=1.0, description="Sentiment edge on the next bar (0 = noise)"
    )
    annual_volatility: float = Field(0.30, gt=0.0, le=3.0)
    correlation: float = Field(0.5, ge=0.0, lt=1.0, description="Market correlation")
    news_per_symbol_per_day: float = Field(14.0, ge=0.0)
    posts_per_symbol_per_day: float = Field(20.0, ge=0.0)


class IndicatorSpec(Section):
    name: Literal[
        "return", "rsi", "macd", "bbands", "atr", "adx", "stoch", "obv", "mfi", "volume_z",
        "realized_vol", "time_of_day", "day_of_week", "vwap_distance", "overnight_gap",
        "daily_return", "daily_range",
    ]
    params: dict[str, int | float] = Field(default_factory=dict)


def _default_indicators() -> list[IndicatorSpec]:
    return [
        IndicatorSpec(name="return", params={"periods": 1}),
        IndicatorSpec(name="return", params={"periods": 4}),
        IndicatorSpec(name="return", params={"periods": 26}),
        IndicatorSpec(name="rsi", params={"timeperiod": 14}),
        IndicatorSpec(name="macd", params={"fastperiod": 12, "slowperiod": 26, "signalperiod": 9}),
        IndicatorSpec(name="bbands", params={"timeperiod": 20, "nbdev": 2}),
        IndicatorSpec(name="atr", params={"timeperiod": 14}),
        IndicatorSpec(name="adx", params={"timeperiod": 14}),
        IndicatorSpec(name="obv", params={}),
        IndicatorSpec(name="volume_z", params={"timeperiod": 26}),
        IndicatorSpec(name="realized_vol", params={"timeperiod": 26}),
        IndicatorSpec(name="time_of_day", params={}),
        IndicatorSpec(name="day_of_week", params={}),
    ]


class FeatureSettings(Section):
    set_version: str = "v1"
    indicators: list[IndicatorSpec] = Field(default_factory=_default_indicators)
    sentiment_window_minutes: int = Field(60, ge=15, description="Look-back for sentiment features")
    sentiment_extended: bool = Field(
        False, description="Add decayed sentiment and sentiment surprise per item kind"
    )
    sentiment_half_life_minutes: int = Field(
        60, ge=1, description="Half-life of the decayed sentiment (sentiment_extended)"
    )
    sentiment_baseline_minutes: int = Field(
        1440, ge=30, description="Surprise baseline: mean before the sentiment window"
    )
    cross_sectional: bool = Field(
        False, description="Add returns relative to the benchmark and cross-sectional ranks"
    )
    warmup_sessions: int = Field(
        25, ge=0, description="History loaded before a row so recursive indicators converge"
    )

    @model_validator(mode="after")
    def _baseline_longer_than_window(self) -> FeatureSettings:
        if self.sentiment_baseline_minutes <= self.sentiment_window_minutes:
            raise ValueError("sentiment_baseline_minutes must exceed sentiment_window_minutes")
        return self


class SentimentSettings(Section):
    """Text sentiment: FinBERT through transformers, or the lexicon when it cannot load."""

    model: str = Field("ProsusAI/finbert", description="Hub id or local path of the model")
    allow_download: bool = Field(
        False, description="Fetch the model from the hub if it is not cached (off: offline)"
    )
    batch_size: int = Field(32, ge=1)
    max_length: int = Field(64, ge=8, le=512, description="Tokens per text (longer truncated)")
    quantize: bool = Field(True, description="Dynamic int8 quantisation of linear layers on CPU")


class LabelSettings(Section):
    kind: Literal["direction", "ternary"] = Field(
        "direction", description="direction: up 1 / else 0; ternary: up 1 / flat 0 / down -1"
    )
    horizon_bars: int = Field(1, ge=1, description="Forward return horizon in decision bars")
    flat_threshold_bps: float = Field(
        0.0, ge=0, description="Up needs a forward return above this (down: below minus it)"
    )
    cost_aware: bool = Field(
        False, description="Threshold at least the round trip 2 * (commission + slippage) bps"
    )


class GateSettings(Section):
    min_test_auc: float = Field(0.51, ge=0, le=1)
    min_test_net_return: float = Field(
        0.0, ge=-1, description="Test-window backtest return after costs must exceed this"
    )
    require_beat_champion: bool = Field(
        True, description="Also beat the champion backtested on the candidate's test window"
    )
    min_sharpe_margin: float = Field(
        0.0, description="Candidate bt_sharpe must exceed the champion's by more than this"
    )
    max_drawdown_slack: float = Field(
        0.02, ge=0, le=1,
        description="Candidate bt_max_drawdown may exceed the champion's by at most this",
    )


class StrategySettings(Section):
    name: str = "direction-v1"
    entry_probability: float = Field(0.55, gt=0.5, lt=1.0, description="Go long above this P(up)")
    exit_probability: float = Field(0.5, gt=0.0, lt=1.0, description="Flatten below this P(up)")
    sizing: Literal["kelly", "linear"] = Field(
        "kelly",
        description="kelly: fractional Kelly p - (1 - p) / b; linear: half to full cap ramp",
    )
    kelly_fraction: float = Field(
        0.5, gt=0, le=1, description="Share of the full Kelly fraction to bet (0.5: half Kelly)"
    )
    payoff_window: int = Field(
        50, ge=1, description="Recent closed trades used to estimate the payoff ratio b"
    )
    min_trades_for_payoff: int = Field(
        10, ge=1, description="Fewer non-zero closed trades than this: use default_payoff_ratio"
    )
    default_payoff_ratio: float = Field(
        1.0, gt=0, description="Payoff ratio b (mean win / mean loss) without enough history"
    )

    @model_validator(mode="after")
    def _consistent_thresholds(self) -> StrategySettings:
        if self.exit_probability > self.entry_probability:
            raise ValueError("exit_probability must not exceed entry_probability")
        if self.min_trades_for_payoff > self.payoff_window:
            raise ValueError("min_trades_for_payoff must not exceed payoff_window")
        return self


class RiskSettings(Section):
    max_position_pct: float = Field(0.10, gt=0, le=1, description="Max equity share per position")
    daily_loss_pct: float = Field(0.02, gt=0, le=1, description="Daily loss: no entries")
    max_drawdown_pct: float = Field(0.05, gt=0, le=1, description="Drawdown from peak that halts")
    max_orders_per_cycle: int = Field(20, ge=1)
    max_notional_per_order: float = Field(25_000, gt=0)
    price_band_pct: float = Field(0.05, gt=0, description="Max distance from the last trade price")
    stop_loss_pct: float = Field(0.0, ge=0, lt=1, description="Exit below entry by this (0: off)")
    take_profit_pct: float = Field(0.0, ge=0, description="Exit above entry by this (0: off)")
    trailing_stop_pct: float = Field(
        0.0, ge=0, lt=1, description="Exit this far below the best price since entry (0: off)"
    )
    trade_risk_pct: float = Field(
        0.01, ge=0, lt=1,
        description="Stop-loss at this share of equity per trade: exit a position when its "
        "unrealized loss reaches it (0: off)",
    )
    max_orders_per_minute: int = Field(
        30, ge=1, description="Orders in the last minute after which entries are denied"
    )
    pdt_equity_threshold: float = Field(
        25_000, ge=0, description="Below this equity the pattern day trader limit applies"
    )
    pdt_max_day_trades: int = Field(
        3, ge=0, description="Day trades allowed in the rolling window below the threshold"
    )
    pdt_window_sessions: int = Field(
        5, ge=1, description="Rolling window of the day-trade count, in sessions (today included)"
    )


class BrokerSettings(Section):
    kind: Literal["simulated", "alpaca"] = "simulated"
    paper: bool = Field(
        True, description="Alpaca paper account; false (with TRADEBOT_LIVE_TRADING=true) is live"
    )
    live_url: str = Field(
        "https://api.alpaca.markets", description="Alpaca trading API for live orders"
    )
    reconcile_days: int = Field(
        5, ge=1, description="How far back reconciliation lists the broker's orders"
    )
    initial_cash: float = Field(100_000, gt=0)
    commission_per_share: float = Field(0.0, ge=0)
    commission_bps: float = Field(1.0, ge=0)
    slippage_bps: float = Field(2.0, ge=0)
    spread_bps: float = Field(
        0.0, ge=0, description="Bid-ask spread: buys fill half of it above the price, sells below"
    )


class NotificationSettings(Section):
    """Where alerts go: apprise URLs (e.g. ``tgram://token/chat``, ``slack://...``,
    ``mailto://...``, ``twilio://...``), each with the lowest level it receives. The URLs
    carry credentials, so they are secrets."""

    critical: list[SecretStr] = Field(
        default_factory=list, description="Kill switch, shutdown, large loss, system failure"
    )
    warning: list[SecretStr] = Field(
        default_factory=list, description="Falling confidence, drift, data delays (+ critical)"
    )
    info: list[SecretStr] = Field(
        default_factory=list, description="Daily summary, retrain finished, promotion (+ all)"
    )
    timeout_seconds: float = Field(10.0, gt=0, description="Per delivery attempt")


class BacktestSettings(Section):
    """Fill and cost model of the backtester, on top of the broker's commission and slippage."""

    fill: Literal["next_open", "close", "vwap"] = Field(
        "next_open", description="next_open: open after the decision; close: the bar that "
        "closed; vwap: the VWAP of the bar after the decision"
    )
    slippage_vol_multiplier: float = Field(
        0.0, ge=0, description="Extra slippage = this x the fill bar's (high - low) / close"
    )
    volume_cap_pct: float = Field(
        0.0, ge=0, le=1, description="Max share of a bar's volume per fill (0: no cap)"
    )
    fractional: bool = Field(True, description="Fractional shares (false: whole shares)")
    allow_short: bool = Field(False, description="Negative target weights open short positions")
    borrow_fee_bps_per_year: float = Field(50.0, ge=0, description="On short notional, daily")
    walk_forward_sessions: int = Field(
        20, ge=1, description="Sessions each walk-forward model trades before the next retrain"
    )
    after_training: bool = Field(
        True, description="Backtest each trained model on its test window through the live "
        "trade cycle and log the trading metrics and report to its MLflow run"
    )


class ScheduleSettings(Section):
    timezone: str = "America/New_York"
    trade: str = "*/15 9-15 * * 1-5"
    market_ingest: str = "*/15 9-16 * * 1-5"
    news_ingest: str = "0 * * * *"
    retrain: str = "30 17 * * 1-5"
    full_retrain: str = "0 6 * * 6"
    daily_report: str = "30 16 * * 1-5"


class HttpSettings(Section):
    """Retries and timeouts for every external API request."""

    timeout_seconds: float = Field(15.0, gt=0, description="Per-request connect/read timeout")
    attempts: int = Field(5, ge=1, description="Tries per request (429, 5xx, timeouts)")
    backoff_seconds: float = Field(0.5, ge=0, description="Base of the jittered back-off")
    max_backoff_seconds: float = Field(30.0, ge=0)
    max_retry_after_seconds: float = Field(120.0, ge=0, description="Cap on a server's Retry-After")
    max_budget_wait_seconds: float = Field(
        120.0, ge=0, description="Longest wait for a client-side rate-limit slot"
    )
    flow_retries: int = Field(2, ge=0, description="Prefect retries of a failed ingest task")
    flow_retry_delay_seconds: float = Field(30.0, ge=0)


class AlpacaSource(Section):
    api_key: SecretStr | None = None
    secret_key: SecretStr | None = None
    trading_url: str = "https://paper-api.alpaca.markets"
    data_url: str = "https://data.alpaca.markets"
    stream_url: str = "wss://stream.data.alpaca.markets"
    feed: Literal["iex", "sip"] = "iex"
    requests_per_minute: int = Field(200, ge=1, description="Alpaca's limit is 200/min")
    symbols_per_request: int = Field(100, ge=1, le=1000)


DEFAULT_COMPANY_NAMES = {
    "AAPL": "Apple", "MSFT": "Microsoft", "NVDA": "Nvidia", "AMZN": "Amazon",
    "META": "Meta Platforms", "GOOGL": "Alphabet", "GOOG": "Alphabet", "AVGO": "Broadcom",
    "TSLA": "Tesla", "COST": "Costco", "NFLX": "Netflix", "AMD": "Advanced Micro Devices",
    "QQQ": "Nasdaq-100",
}


class NewsApiSource(Section):
    api_key: SecretStr | None = None
    base_url: str = "https://newsapi.org/v2"
    requests_per_day: int = Field(100, ge=1, description="Free plan: 100 requests/day")
    page_size: int = Field(100, ge=1, le=100)
    max_results: int = Field(100, ge=1, description="Results reachable per query (free plan: 100)")
    language: str = "en"
    company_names: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_COMPANY_NAMES),
        description="Ticker -> company name, queried together with the ticker",
    )


DEFAULT_AMBIGUOUS_TICKERS = [
    "A", "ALL", "AM", "AN", "ANY", "ARE", "AT", "BE", "BIG", "BY", "CAN", "CEO", "DD", "EOD",
    "FOR", "GO", "HAS", "HE", "IT", "KEY", "LOW", "NEW", "NOW", "ON", "ONE", "OR", "OUT", "PM",
    "REAL", "RUN", "SEE", "SO", "TV", "TWO", "UK", "USA", "WELL", "YOU",
]


class RedditSource(Section):
    client_id: SecretStr | None = None
    client_secret: SecretStr | None = None
    user_agent: str = "tradebot/0.1"
    oauth_url: str = "https://oauth.reddit.com"
    reddit_url: str = "https://www.reddit.com"
    subreddits: list[str] = Field(default_factory=lambda: ["stocks", "investing", "wallstreetbets"])
    requests_per_minute: int = Field(100, ge=1, description="Reddit's limit is 100/min per client")
    posts_per_subreddit: int = Field(1000, ge=1, le=1000, description="Newest posts scanned")
    ambiguous_tickers: list[str] = Field(
        default_factory=lambda: list(DEFAULT_AMBIGUOUS_TICKERS),
        description="Tickers that are common words: matched only as $CASHTAGs",
    )


class SourcesSettings(Section):
    http: HttpSettings = HttpSettings()
    alpaca: AlpacaSource = AlpacaSource()
    newsapi: NewsApiSource = NewsApiSource()
    reddit: RedditSource = RedditSource()


class UniverseSettings(Section):
    """Which symbols to trade: the configured list, or Alpaca's tradable US equities."""

    mode: Literal["configured", "alpaca"] = "configured"
    exchanges: list[str] = Field(default_factory=lambda: ["NASDAQ", "NYSE", "ARCA", "AMEX", "BATS"])
    min_price: float = Field(5.0, ge=0)
    max_price: float = Field(10_000.0, gt=0)
    max_symbols: int = Field(500, ge=1)
    exclude_name_patterns: list[str] = Field(
        default_factory=lambda: [r"\bwarrants?\b", r"\brights?\b", r"\bunits?\b"],
        description="Case-insensitive regexes on the asset name (warrants, rights, units)",
    )


DEFAULT_SYMBOLS = ["QQQ", "AAPL", "MSFT", "NVDA", "AMZN", "META"]


class TradebotSettings(BaseSettings):
    """Effective configuration. Build it with :func:`load_settings`."""

    model_config = SettingsConfigDict(
        env_prefix="TRADEBOT_",
        env_nested_delimiter="__",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="forbid",
        frozen=True,
    )

    home: Path = Field(Path(".tradebot"), description="Where all state lives")
    database_url: SecretStr | None = Field(
        None, description="Project database URL; default sqlite:///<home>/tradebot.db"
    )
    live_trading: bool = Field(False, description="Live orders (needs broker.paper=false)")
    symbols: list[str] = Field(default_factory=lambda: list(DEFAULT_SYMBOLS), min_length=1)
    benchmark: str = "QQQ"
    market: MarketSettings = MarketSettings()
    data: DataSettings = DataSettings()
    synthetic: SyntheticSettings = SyntheticSettings()
    features: FeatureSettings = FeatureSettings()
    label: LabelSettings = LabelSettings()
    sentiment: SentimentSettings = SentimentSettings()
    model: ModelSettings = ModelSettings()
    optuna: OptunaSettings = OptunaSettings()
    gate: GateSettings = GateSettings()
    strategy: StrategySettings = StrategySettings()
    risk: RiskSettings = RiskSettings()
    broker: BrokerSettings = BrokerSettings()
    backtest: BacktestSettings = BacktestSettings()
    notifications: NotificationSettings = NotificationSettings()
    schedules: ScheduleSettings = ScheduleSettings()
    sources: SourcesSettings = SourcesSettings()
    universe: UniverseSettings = UniverseSettings()

    @field_validator("symbols")
    @classmethod
    def _symbols_upper_unique(cls, value: list[str]) -> list[str]:
        cleaned = [s.strip().upper() for s in value]
        bad = [s for s in cleaned if not s or not all(c.isalnum() or c in "./-" for c in s)]
        if bad:
            raise ValueError(f"invalid symbol(s): {bad}")
        if len(set(cleaned)) != len(cleaned):
            raise ValueError("symbols must be unique")
        return cleaned

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # init kwargs carry the TOML file's content, so they rank below env and .env.
        # The documented flat variables (ENV_ALIASES) rank just below their nested spelling.
        dotenv_vars = dict(getattr(dotenv_settings, "env_vars", {}))
        if isinstance(dotenv_settings, DotEnvSettingsSource):
            for name in list(dotenv_settings.env_vars):
                if name.upper() in ENV_ALIASES:
                    del dotenv_settings.env_vars[name]  # type: ignore[attr-defined]
        return (
            env_settings,
            AliasEnvSource(settings_cls, os.environ),
            dotenv_settings,
            AliasEnvSource(settings_cls, dotenv_vars),
            init_settings,
            file_secret_settings,
        )

    def masked(self) -> dict[str, Any]:
        """The effective config as plain data, secrets replaced by '**********'."""
        return _mask(self.model_dump(mode="python"))


ENV_ALIASES: dict[str, tuple[str, ...]] = {
    "TRADEBOT_ALPACA_DATA_URL": ("sources", "alpaca", "data_url"),
    "TRADEBOT_ALPACA_TRADING_URL": ("sources", "alpaca", "trading_url"),
    "TRADEBOT_ALPACA_STREAM_URL": ("sources", "alpaca", "stream_url"),
    "TRADEBOT_NEWSAPI_URL": ("sources", "newsapi", "base_url"),
    "TRADEBOT_REDDIT_OAUTH_URL": ("sources", "reddit", "oauth_url"),
    "TRADEBOT_REDDIT_URL": ("sources", "reddit", "reddit_url"),
    "ALPACA_API_KEY": ("sources", "alpaca", "api_key"),
    "ALPACA_SECRET_KEY": ("sources", "alpaca", "secret_key"),
    "NEWSAPI_KEY": ("sources", "newsapi", "api_key"),
    "REDDIT_CLIENT_ID": ("sources", "reddit", "client_id"),
    "REDDIT_CLIENT_SECRET": ("sources", "reddit", "client_secret"),
}
"""Flat environment variables (the vendors' usual names) mapped to nested settings keys."""


class AliasEnvSource(PydanticBaseSettingsSource):
    """Reads :data:`ENV_ALIASES` (case-insensitive) from a mapping: the environment or .env."""

    def __init__(self, settings_cls: type[BaseSettings], variables: Mapping[str, str | None]):
        super().__init__(settings_cls)
        self.variables = {k.upper(): v for k, v in variables.items() if v}

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ builds the nested dict directly

    def __call__(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for name, path in ENV_ALIASES.items():
            if name in self.variables:
                node = data
                for part in path[:-1]:
                    node = node.setdefault(part, {})
                node[path[-1]] = self.variables[name]
        return data


def _mask(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return "**********"
    if isinstance(value, dict):
        return {k: _mask(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def resolve_config_path(explicit: Path | None = None) -> Path | None:
    """The config file to read: --config, else $TRADEBOT_CONFIG, else ./tradebot.toml if present."""
    if explicit is not None:
        return explicit
    from_env = os.environ.get(CONFIG_ENV_VAR)
    if from_env:
        return Path(from_env)
    default = Path(DEFAULT_CONFIG_FILE)
    return default if default.exists() else None


def load_settings(config_path: Path | None = None, **overrides: Any) -> TradebotSettings:
    """Build the effective settings; raise :class:`ConfigError` naming the bad key."""
    path = resolve_config_path(config_path)
    data: dict[str, Any] = {}
    if path is not None:
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    data.update(overrides)
    try:
        return TradebotSettings(**data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source=path)) from None


def format_validation_error(exc: ValidationError, source: Path | None = None) -> str:
    """One line per bad key, with a 'did you mean' hint for misspelled keys."""
    where = f" in {source}" if source else ""
    lines = [f"invalid configuration{where}:"]
    for err in exc.errors(include_url=False, include_input=False):
        loc = [str(p) for p in err["loc"]]
        key = ".".join(loc) or "<root>"
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = "unknown key"
            hint = _nearest_key(loc)
            if hint:
                message += f"; did you mean '{hint}'?"
        lines.append(f"  {key}: {message}")
    return "\n".join(lines)


def _nearest_key(loc: list[str]) -> str | None:
    model: Any = TradebotSettings
    for part in loc[:-1]:
        field = model.model_fields.get(part)
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    matches = difflib.get_close_matches(loc[-1], list(model.model_fields), n=1, cutoff=0.6)
    return ".".join([*loc[:-1], matches[0]]) if matches else None
