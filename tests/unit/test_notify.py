"""Notifier against a real loopback HTTP endpoint speaking apprise's json:// and form:// posts."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest

from tests.kit.fakes.server import FakeServer, Reply, serve, server_error
from tradebot.kernel.errors import ConfigError
from tradebot.kernel.settings import NotificationSettings
from tradebot.pipelines.notify import SENT_LOG_SIZE, Level, Notifier

TOKEN = "s3cr3t-token"


@pytest.fixture
def server() -> Iterator[FakeServer]:
    fake = FakeServer()
    fake.route("POST", r"/[a-z]+(/[a-z0-9-]+)?", lambda _request: Reply(200, {}))
    with serve(fake):
        yield fake


def hook(server: FakeServer, path: str, scheme: str = "json") -> str:
    return server.url.replace("http://", f"{scheme}://") + f"/{path}"


def notifier(timeout: float = 2.0, **lists: list[str]) -> Notifier:
    return Notifier.from_settings(NotificationSettings(timeout_seconds=timeout, **lists))


def test_json_payload_carries_level_title_and_body(server: FakeServer) -> None:
    n = notifier(info=[hook(server, "hook")])
    assert n.enabled
    assert n.send(Level.warning, "Drift", "PSI **0.31** on `rsi_14`") == 1
    (request,) = server.hits("/hook")
    payload = request.json()
    assert payload["title"] == "[WARNING] Drift"
    assert "PSI" in payload["message"] and "0.31" in payload["message"]
    assert payload["type"] == "warning"
    assert list(n.sent) == [(Level.warning, "Drift")]


def test_form_payload(server: FakeServer) -> None:
    n = notifier(critical=[hook(server, "form", scheme="form")])
    assert n.send("critical", "Kill switch", "Trading halted") == 1
    (request,) = server.hits("/form")
    form = request.form()
    assert form["title"] == "[CRITICAL] Kill switch"
    assert form["message"] == "Trading halted"
    assert form["type"] == "failure"


def test_levels_route_to_their_list_and_lower(server: FakeServer) -> None:
    n = notifier(critical=[hook(server, "crit")], warning=[hook(server, "warn")],
                 info=[hook(server, "info")])
    assert n.send(Level.critical, "Kill switch", "halted") == 3
    assert {r.path for r in server.requests} == {"/crit", "/warn", "/info"}

    server.requests.clear()
    assert n.send(Level.warning, "Drift", "psi") == 2
    assert {r.path for r in server.requests} == {"/warn", "/info"}

    server.requests.clear()
    assert n.send(Level.info, "Daily summary", "ok") == 1
    assert [r.path for r in server.requests] == ["/info"]


def test_server_error_returns_zero_and_logs_without_secrets(
    server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    # the token as password, path segment and query parameter ("-key" is sent on as ?key=)
    url = hook(server, f"hook/{TOKEN}?-key={TOKEN}").replace("json://", f"json://user:{TOKEN}@")
    n = notifier(warning=[url])
    server.fail("/hook/.*", server_error(500))
    caplog.set_level(logging.DEBUG)  # apprise and urllib3 debug records too, which name URLs

    assert n.send(Level.critical, "Large loss", "-4.2%") == 0

    (request,) = server.hits(f"/hook/{TOKEN}")  # it did reach the endpoint
    assert request.arg("key") == TOKEN
    assert request.headers["authorization"].startswith("Basic ")
    ours = [r for r in caplog.records if r.name == "tradebot.pipelines.notify"]
    assert len(ours) == 1 and ours[0].levelno == logging.WARNING
    message = ours[0].getMessage()
    assert "critical" in message and "json://" in message and "failed" in message
    assert any(r.name == "apprise" for r in caplog.records)
    assert any(r.name.startswith("urllib3") and "POST" in r.getMessage() for r in caplog.records)
    for record in caplog.records:
        text = record.getMessage() + (record.exc_text or "")
        assert TOKEN not in text, record.name
    assert TOKEN not in caplog.text


def test_unreachable_endpoint_is_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    closed = FakeServer()
    with serve(closed):
        url = hook(closed, "hook")
    n = notifier(timeout=0.5, info=[url])  # nothing listens on that port any more
    assert n.send(Level.info, "Retrain finished", "ok") == 0
    assert "info notification via json://" in caplog.text


def test_unparseable_url_raises_config_error_without_echoing_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bad = f"nosuchservice://{TOKEN}@example.invalid/x"
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ConfigError) as info:
        notifier(critical=["json://127.0.0.1:9/ok"], warning=["json://127.0.0.1:9/ok", bad])
    assert "notifications.warning[1]" in str(info.value)
    assert TOKEN not in str(info.value)
    assert TOKEN not in caplog.text


def test_slow_endpoint_times_out_quickly(server: FakeServer) -> None:
    server.fail("/slow", Reply(200, {}, delay=3.0))
    n = notifier(timeout=0.3, info=[hook(server, "slow")])
    started = time.monotonic()
    assert n.send(Level.info, "Daily summary", "ok") == 0
    assert time.monotonic() - started < 2.0


def test_url_timeout_params_win_over_settings(server: FakeServer) -> None:
    server.fail("/slow", Reply(200, {}, delay=0.5))
    n = notifier(timeout=0.1, info=[hook(server, "slow?rto=2")])
    assert n.send(Level.info, "Daily summary", "ok") == 1


def test_disabled_notifier_sends_nothing_but_keeps_the_log() -> None:
    n = Notifier.disabled()
    assert not n.enabled
    assert not Notifier.from_settings(NotificationSettings()).enabled
    for i in range(SENT_LOG_SIZE + 5):
        assert n.send(Level.info, f"m{i}", "") == 0
    assert len(n.sent) == SENT_LOG_SIZE
    assert n.sent[0] == (Level.info, "m5") and n.sent[-1] == (Level.info, f"m{SENT_LOG_SIZE + 4}")
