"""Property tests of the risk limits over random markets, of Kelly sizing and of the day-trade
count.

The market test simulates a small long-only account over a few symbols with geometric random
price paths: at each step (a cycle) it sizes targets from random probabilities (Kelly or
linear), adds protective exits and random extra orders (some priced outside the band, some
selling more than held), runs the risk engine, fills the approved (possibly reduced) orders
at the step's price, sometimes in two partial fills, and checks the limits after every step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import pairwise

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradebot.kernel.domain import (
    Fill,
    KillSwitchState,
    OrderRequest,
    Position,
    RiskDecision,
    Side,
    client_order_id,
    quantity,
)
from tradebot.kernel.settings import RiskSettings, StrategySettings
from tradebot.serving.exits import exit_reasons
from tradebot.serving.pdt import day_trades, opened_today
from tradebot.serving.risk import RiskContext, RiskEngine
from tradebot.serving.sizing import orders_for_targets, payoff_ratio, target_weight

SYMBOLS = ("AAA", "BBB", "CCC")
START = datetime(2026, 6, 1, 14, 0, tzinfo=UTC)
MARKET_EXAMPLES = 300
SIZING_EXAMPLES = 300
DAY_TRADE_EXAMPLES = 300
PROPERTY = settings(deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


def session_of(ts: datetime) -> date:
    return ts.date()


# --- random markets ------------------------------------------------------------------------


@dataclass(frozen=True)
class Extra:
    """A random order beside the sized ones."""

    symbol: int
    side: Side
    qty: str
    ref_offset: float  # reference price = last price * (1 + ref_offset)


@dataclass(frozen=True)
class Step:
    new_session: bool
    gap_seconds: int
    returns: tuple[float, ...]
    probs: tuple[float, ...]
    kill_switch: KillSwitchState
    session_open: bool
    extras: tuple[Extra, ...]
    extras_first: bool
    split_fills: bool


@dataclass(frozen=True)
class Market:
    risk: RiskSettings
    strategy: StrategySettings
    cash: Decimal
    prices: tuple[float, ...]
    steps: tuple[Step, ...]


probabilities = st.floats(0.0, 1.0, allow_nan=False)


@st.composite
def steps(draw: st.DrawFn, n_symbols: int) -> Step:
    per_symbol = st.lists(st.floats(-0.1, 0.08, allow_nan=False), min_size=n_symbols,
                          max_size=n_symbols)
    extra = st.builds(
        Extra,
        symbol=st.integers(0, n_symbols - 1),
        side=st.sampled_from(Side),
        qty=st.sampled_from(["0.5", "1", "3", "10", "40", "250"]),
        ref_offset=st.sampled_from([0.0, 0.0, 0.004, -0.02, 0.03, -0.06, 0.2]),
    )
    round_trip = st.builds(  # a buy then a sell of one symbol in the same cycle
        lambda symbol, qty: (Extra(symbol, Side.BUY, qty, 0.0), Extra(symbol, Side.SELL, qty, 0.0)),
        st.integers(0, n_symbols - 1), st.sampled_from(["1", "5"]))
    extras = st.lists(extra, max_size=4).map(tuple) | round_trip
    return Step(
        new_session=draw(st.booleans() if draw(st.integers(0, 3)) == 0 else st.just(False)),
        gap_seconds=draw(st.sampled_from([5, 20, 45, 60, 61, 300, 900])),
        returns=tuple(draw(per_symbol)),
        probs=tuple(draw(st.lists(probabilities, min_size=n_symbols, max_size=n_symbols))),
        kill_switch=draw(st.sampled_from([KillSwitchState.ACTIVE] * 6
                                         + [KillSwitchState.REDUCING, KillSwitchState.HALTED])),
        session_open=draw(st.integers(0, 15)) > 0,
        extras=draw(extras),
        extras_first=draw(st.booleans()),
        split_fills=draw(st.booleans()),
    )


@st.composite
def markets(draw: st.DrawFn) -> Market:
    n_symbols = draw(st.integers(1, len(SYMBOLS)))
    cash = Decimal(draw(st.sampled_from(["8000", "20000", "26000", "100000"])))
    risk = RiskSettings(
        max_position_pct=draw(st.sampled_from([0.05, 0.1, 0.25, 0.5])),
        daily_loss_pct=draw(st.sampled_from([0.002, 0.005, 0.01, 0.05])),
        max_drawdown_pct=draw(st.sampled_from([0.003, 0.01, 0.03, 0.5])),
        max_orders_per_cycle=draw(st.integers(1, 6)),
        max_orders_per_minute=draw(st.integers(1, 8)),
        max_notional_per_order=draw(st.sampled_from([300.0, 2_000.0, 25_000.0])),
        price_band_pct=draw(st.sampled_from([0.005, 0.01, 0.05])),
        stop_loss_pct=draw(st.sampled_from([0.0, 0.02])),
        trailing_stop_pct=draw(st.sampled_from([0.0, 0.03])),
        take_profit_pct=draw(st.sampled_from([0.0, 0.04])),
        trade_risk_pct=draw(st.sampled_from([0.0, 0.002, 0.01])),
        pdt_equity_threshold=draw(st.sampled_from([0.0, 25_000.0, 1e12])),
        pdt_max_day_trades=draw(st.integers(0, 3)),
        pdt_window_sessions=draw(st.integers(1, 5)),
    )
    strategy = StrategySettings(
        sizing=draw(st.sampled_from(["kelly", "linear"])),
        entry_probability=draw(st.sampled_from([0.51, 0.55, 0.6])),
        exit_probability=draw(st.sampled_from([0.45, 0.5])),
        kelly_fraction=draw(st.sampled_from([0.25, 0.5, 1.0])),
        payoff_window=20,
        min_trades_for_payoff=draw(st.sampled_from([2, 5])),
    )
    prices = tuple(draw(st.lists(st.sampled_from([3.5, 20.0, 99.99, 250.0, 1234.5]),
                                 min_size=n_symbols, max_size=n_symbols)))
    path = tuple(draw(st.lists(steps(n_symbols), min_size=3, max_size=30)))
    return Market(risk, strategy, cash, prices, path)


def signed(side: Side, qty: Decimal) -> Decimal:
    return qty if side is Side.BUY else -qty


def breached(start: Decimal, now: Decimal, limit: float) -> bool:
    return start > 0 and float((start - now) / start) >= limit


@dataclass
class Account:
    """The simulated account: cash, average-cost positions, fills, and the session history."""

    cash: Decimal
    positions: dict[str, Position] = field(default_factory=dict)
    fills: list[Fill] = field(default_factory=list)
    realized: list[Decimal] = field(default_factory=list)
    order_times: list[datetime] = field(default_factory=list)
    sessions: list[date] = field(default_factory=list)
    peak: Decimal = Decimal(0)
    day_start: Decimal = Decimal(0)

    def qty(self, symbol: str) -> Decimal:
        held = self.positions.get(symbol)
        return held.qty if held is not None else Decimal(0)

    def equity(self, prices: dict[str, float]) -> Decimal:
        return self.cash + sum((p.qty * Decimal(str(prices[s])) for s, p in
                                self.positions.items()), Decimal(0))

    def fill(self, request: OrderRequest, qty: Decimal, price: float, ts: datetime,
             split: bool) -> None:
        dec_price = Decimal(str(price))
        first = quantity(qty / 2) if split and qty >= Decimal("0.000002") else qty
        parts = [(first, ts)] + ([(qty - first, ts + timedelta(seconds=1))] if first < qty else [])
        position = self.positions.setdefault(request.symbol, Position(request.symbol))
        for part, when in parts:
            fill = Fill(request.client_order_id, "sim-" + request.client_order_id[-8:],
                        request.symbol, request.side, part, dec_price, Decimal(0), when)
            realized = position.apply(fill)
            if request.side is Side.SELL:
                self.realized.append(realized)
            self.fills.append(fill)
            self.cash -= signed(request.side, part) * dec_price


def requests_for(step: Step, index: int, market: Market, account: Account, ctx: RiskContext,
                 prices: dict[str, float]) -> list[OrderRequest]:
    """Sized orders (protective exits forced flat) and the step's extra orders (after them
    or before them)."""
    risk, strategy, equity = market.risk, market.strategy, ctx.equity
    payoff = payoff_ratio(account.realized, strategy)
    exits = exit_reasons(account.positions, prices, risk, equity)
    targets = {}
    for symbol, prob in zip(prices, step.probs, strict=True):
        value = account.qty(symbol) * Decimal(str(prices[symbol]))
        current = float(value / equity) if equity > 0 else 0.0
        targets[symbol] = target_weight(prob, current, strategy, risk, payoff)
    goals = {**targets, **dict.fromkeys(exits, 0.0)}
    requests = orders_for_targets(goals, ctx.positions, prices, max(equity, Decimal(0)), ctx.ts,
                                  strategy.name, intents=exits)
    extras = []
    for i, extra in enumerate(step.extras):
        symbol = SYMBOLS[extra.symbol]
        intent = f"extra{index}-{i}"
        extras.append(OrderRequest(
            client_order_id=client_order_id(strategy.name, symbol, ctx.ts, intent),
            symbol=symbol, side=extra.side, qty=Decimal(extra.qty), ts_decision=ctx.ts,
            intent=intent, reference_price=prices[symbol] * (1 + extra.ref_offset)))
    return extras + requests if step.extras_first else requests + extras


def check_decisions(decisions: list[RiskDecision], requests: list[OrderRequest],
                    ctx: RiskContext, market: Market) -> list[tuple[OrderRequest, Decimal]]:
    """Assert the per-order limits; return the approved orders with their quantities."""
    risk = market.risk
    assert [d.request for d in decisions] == requests
    positions = dict(ctx.positions)
    approved: list[tuple[OrderRequest, Decimal]] = []
    entries = 0
    loss_limit = (breached(ctx.peak_equity, ctx.equity, risk.max_drawdown_pct)
                  or breached(ctx.day_start_equity, ctx.equity, risk.daily_loss_pct))
    for decision in decisions:
        request, sym = decision.request, decision.request.symbol
        current = positions.get(sym, Decimal(0))
        last = ctx.last_prices[sym]
        out_of_band = abs(request.reference_price / last - 1.0) > risk.price_band_pct
        opens = request.side is Side.BUY or current <= 0  # a sell of a long only reduces it
        if opens and out_of_band:
            assert not decision.approved, f"entry outside the price band approved: {decision}"
        if not decision.approved:
            assert decision.rule and decision.reason, f"denial without rule/reason: {decision}"
            continue
        assert ctx.kill_switch is not KillSwitchState.HALTED, "HALTED approved an order"
        assert ctx.session_open, "order approved while the market is closed"
        qty = decision.adjusted_qty if decision.adjusted_qty is not None else request.qty
        assert 0 < qty <= request.qty
        after = current + signed(request.side, qty)
        assert after >= 0, "long-only account went short"
        if abs(after) > abs(current):  # an entry
            assert ctx.kill_switch is KillSwitchState.ACTIVE, "entry approved while REDUCING"
            assert not loss_limit, "entry approved past the daily loss / drawdown limit"
            assert not out_of_band
            price = Decimal(str(last))
            assert qty * price <= Decimal(str(risk.max_notional_per_order))
            assert after * price <= Decimal(str(risk.max_position_pct)) * ctx.equity
            assert ctx.orders_last_minute + len(approved) < risk.max_orders_per_minute
            assert len(approved) < risk.max_orders_per_cycle
            entries += 1
        else:
            assert after < current, "an approved exit did not reduce the position"
        positions[sym] = after
        approved.append((request, qty))
    assert entries <= risk.max_orders_per_cycle
    assert entries <= max(0, risk.max_orders_per_minute - ctx.orders_last_minute)
    return approved


@settings(PROPERTY, max_examples=MARKET_EXAMPLES)
@given(markets())
def test_risk_limits_hold_over_random_markets(market: Market) -> None:
    engine, risk = RiskEngine(market.risk), market.risk
    symbols = SYMBOLS[: len(market.prices)]
    prices = dict(zip(symbols, market.prices, strict=True))
    account = Account(market.cash, peak=market.cash, day_start=market.cash)
    ts = START
    for index, step in enumerate(market.steps):
        if index and step.new_session:
            ts = datetime.combine(session_of(ts) + timedelta(days=1), START.timetz())
        elif index:
            ts += timedelta(seconds=step.gap_seconds)
        today = session_of(ts)
        prices = {s: max(0.01, round(p * math.exp(r), 4))
                  for (s, p), r in zip(prices.items(), step.returns, strict=True)}
        equity = account.equity(prices)
        if not account.sessions or account.sessions[-1] != today:
            account.sessions.append(today)
            account.day_start = equity
        account.peak = max(account.peak, equity)
        window = account.sessions[-risk.pdt_window_sessions:]
        ctx = RiskContext(
            ts=ts, session_open=step.session_open, equity=equity, peak_equity=account.peak,
            day_start_equity=account.day_start,
            positions={s: p.qty for s, p in account.positions.items() if p.qty != 0},
            last_prices=prices, kill_switch=step.kill_switch,
            orders_last_minute=sum(1 for t in account.order_times if t > ts - timedelta(minutes=1)),
            day_trades=day_trades(account.fills, session_of, window),
            opened_today=opened_today(account.fills, session_of, today),
        )
        requests = requests_for(step, index, market, account, ctx, prices)
        decisions = engine.check_all(requests, ctx)
        for request, qty in check_decisions(decisions, requests, ctx, market):
            account.fill(request, qty, prices[request.symbol], ts, step.split_fills)
            account.order_times.append(ts)
        after = day_trades(account.fills, session_of, window)
        if ctx.equity < Decimal(str(risk.pdt_equity_threshold)):
            assert after <= max(ctx.day_trades, risk.pdt_max_day_trades), (
                f"{after} day trades in {window} under the PDT threshold "
                f"(max {risk.pdt_max_day_trades}, {ctx.day_trades} before this cycle)")
        if risk.pdt_equity_threshold >= 1e12:  # always under the threshold
            assert after <= risk.pdt_max_day_trades


# --- Kelly sizing --------------------------------------------------------------------------


@st.composite
def sizing_cases(draw: st.DrawFn) -> tuple[StrategySettings, RiskSettings, float | None]:
    entry = draw(st.floats(0.501, 0.99))
    strategy = StrategySettings(
        sizing="kelly",
        entry_probability=entry,
        exit_probability=draw(st.floats(0.01, entry)),
        kelly_fraction=draw(st.floats(0.01, 1.0)),
        default_payoff_ratio=draw(st.floats(0.05, 20.0)),
    )
    risk = RiskSettings(max_position_pct=draw(st.floats(0.001, 1.0)))
    payoff = draw(st.none() | st.floats(0.01, 50.0))
    return strategy, risk, payoff


@settings(PROPERTY, max_examples=SIZING_EXAMPLES)
@given(sizing_cases(), probabilities, probabilities, st.floats(-1.0, 2.0))
def test_kelly_target_weight_is_bounded_gated_and_monotone(
    case: tuple[StrategySettings, RiskSettings, float | None], p1: float, p2: float,
    current: float,
) -> None:
    strategy, risk, payoff = case
    cap = risk.max_position_pct
    low, high = sorted((p1, p2))
    w_low = target_weight(low, current, strategy, risk, payoff)
    w_high = target_weight(high, current, strategy, risk, payoff)
    for prob, weight in ((low, w_low), (high, w_high)):
        assert 0.0 <= weight <= cap
        if prob < strategy.exit_probability:
            assert weight == 0.0
        if prob < strategy.entry_probability:
            assert target_weight(prob, 0.0, strategy, risk, payoff) == 0.0  # flat stays flat
    if low >= strategy.entry_probability:
        assert w_low <= w_high  # monotone above the entry threshold
        assert w_low == target_weight(low, 0.0, strategy, risk, payoff)  # current is ignored


# --- day trades against a brute-force count ------------------------------------------------


@st.composite
def fill_histories(draw: st.DrawFn) -> list[Fill]:
    """Orders on 3 days and 2 symbols with distinct start minutes per (day, symbol); each
    order in 1-3 partial fills up to 3 minutes apart (so they interleave with the fills of
    other orders); the fills shuffled."""
    fills = []
    for day in range(3):
        for symbol in ("AAA", "BBB"):
            minutes = draw(st.lists(st.integers(0, 390), max_size=6, unique=True))
            for n, minute in enumerate(minutes):
                side = draw(st.sampled_from(Side))
                start = START + timedelta(days=day, minutes=minute)
                cid, spacing = f"{symbol}-{day}-{n}", draw(st.integers(1, 180))
                for k in range(draw(st.integers(1, 3))):
                    fills.append(Fill(cid, "b" + cid, symbol, side, Decimal(1), Decimal(10),
                                      Decimal(0), start + timedelta(seconds=k * spacing)))
    return draw(st.permutations(fills))


def brute_force_day_trades(fills: list[Fill], window: set[date]) -> int:
    """Collapse each (session, symbol)'s orders, by first fill time, into runs of one side;
    every buy run followed by a sell run is one day trade."""
    first: dict[str, Fill] = {}
    for f in fills:
        if f.client_order_id not in first or f.ts_fill < first[f.client_order_id].ts_fill:
            first[f.client_order_id] = f
    total = 0
    for session in window:
        for symbol in {f.symbol for f in fills}:
            orders = sorted((f for f in first.values()
                             if f.symbol == symbol and session_of(f.ts_fill) == session),
                            key=lambda f: f.ts_fill)
            runs = [o.side for i, o in enumerate(orders) if i == 0 or orders[i - 1].side != o.side]
            total += sum(1 for a, b in pairwise(runs) if (a, b) == (Side.BUY, Side.SELL))
    return total


@settings(PROPERTY, max_examples=DAY_TRADE_EXAMPLES)
@given(fill_histories(), st.sets(st.integers(0, 3)))
def test_day_trades_match_a_brute_force_count(fills: list[Fill], days: set[int]) -> None:
    window = {session_of(START + timedelta(days=d)) for d in days}
    assert day_trades(fills, session_of, sorted(window)) == brute_force_day_trades(fills, window)
    for d in range(3):
        session = session_of(START + timedelta(days=d))
        bought = {f.symbol for f in fills
                  if f.side is Side.BUY and session_of(f.ts_fill) == session}
        assert opened_today(fills, session_of, session) == bought
