"""Alert delivery through apprise (Telegram, Slack, e-mail, webhooks, ...).

A message of level L goes to every URL configured at L or at a lower level: info URLs get
everything, warning URLs get warning and critical, critical URLs only critical. Delivery never
raises: trading must not stop because a chat service is down. Logs name the level, the service
scheme and the outcome, never a URL or its credentials; apprise's own log records are redacted
of every configured URL's parts for the same reason.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import parse_qsl, unquote, urlsplit

import apprise

from tradebot.kernel.errors import ConfigError
from tradebot.kernel.settings import NotificationSettings

log = logging.getLogger(__name__)

SENT_LOG_SIZE = 100


class Level(StrEnum):
    """Alert level, most severe first."""

    critical = "critical"
    warning = "warning"
    info = "info"


# The lists a message of each level goes to: its own and every lower level's.
_AUDIENCE: dict[Level, tuple[Level, ...]] = {
    Level.critical: (Level.critical, Level.warning, Level.info),
    Level.warning: (Level.warning, Level.info),
    Level.info: (Level.info,),
}
_NOTIFY_TYPE = {
    Level.critical: apprise.NotifyType.FAILURE,
    Level.warning: apprise.NotifyType.WARNING,
    Level.info: apprise.NotifyType.INFO,
}


class _Redactor(logging.Filter):
    """Replaces every registered secret fragment in a log record with ``***``."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()
        self._ordered: list[str] = []
        self._lock = threading.Lock()

    def register(self, url: str) -> None:
        parts = urlsplit(url)
        userinfo, _, hostport = parts.netloc.rpartition("@")
        pieces = {url, parts.netloc, userinfo, hostport, parts.path, parts.query, parts.fragment}
        pieces.update(userinfo.split(":") + hostport.split(":") + parts.path.split("/"))
        pieces.update(v for _, v in parse_qsl(parts.query, keep_blank_values=True))
        pieces |= {unquote(p) for p in pieces}
        with self._lock:
            self._secrets.update(p for p in pieces if len(p) >= 3)
            self._ordered = sorted(self._secrets, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self._ordered:
            text = text.replace(secret, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._ordered:
            return True
        try:
            record.msg, record.args = self.redact(record.getMessage()), None
            if record.exc_info:
                text = logging.Formatter().formatException(record.exc_info)
                record.exc_text, record.exc_info = self.redact(text), None
        except Exception:  # a malformed record: drop it rather than risk leaking a secret
            return False
        return True


_REDACTOR = _Redactor()
# apprise logs target URLs (some at warning level); urllib3 logs request lines at debug.
for _name in ("apprise", "urllib3.connectionpool"):
    logging.getLogger(_name).addFilter(_REDACTOR)


@dataclass(frozen=True)
class _Target:
    level: Level  # the list the URL was configured in
    scheme: str  # the service's scheme, safe to log
    sender: apprise.Apprise  # one per URL, so each delivery result is known


class Notifier:
    """Sends alerts to the apprise URLs of :class:`NotificationSettings`, by level."""

    def __init__(self, targets: list[_Target] | None = None) -> None:
        self._targets = list(targets or [])
        self.sent: deque[tuple[Level, str]] = deque(maxlen=SENT_LOG_SIZE)
        """The last messages passed to :meth:`send`, as ``(level, title)``, delivered or not."""

    @classmethod
    def disabled(cls) -> Notifier:
        """A notifier with no URLs: :meth:`send` delivers nothing and returns 0."""
        return cls()

    @classmethod
    def from_settings(cls, cfg: NotificationSettings) -> Notifier:
        """Build one apprise object per URL, with ``cfg.timeout_seconds`` as its connect and
        read timeout unless the URL sets ``cto``/``rto`` itself.

        Raises ConfigError naming the list and index (never the URL) for a URL apprise cannot
        parse."""
        targets = []
        for level in Level:
            for index, secret in enumerate(getattr(cfg, level.value)):
                url = secret.get_secret_value().strip()
                _REDACTOR.register(url)
                plugin = apprise.Apprise.instantiate(url) if url else None
                if plugin is None:
                    raise ConfigError(
                        f"notifications.{level.value}[{index}] is not a valid apprise URL "
                        "(see https://appriseit.com/services/ for the formats)"
                    )
                query = {k.lower() for k, _ in parse_qsl(urlsplit(url).query)}
                if "cto" not in query:
                    plugin.socket_connect_timeout = cfg.timeout_seconds
                if "rto" not in query:
                    plugin.socket_read_timeout = cfg.timeout_seconds
                obj = apprise.Apprise()
                obj.add(plugin)
                targets.append(_Target(level, _scheme(plugin, url), obj))
        return cls(targets)

    @property
    def enabled(self) -> bool:
        """Whether any URL is configured."""
        return bool(self._targets)

    def send(self, level: Level | str, title: str, body: str) -> int:
        """Deliver a markdown message to every URL at ``level`` or lower; return how many
        accepted it. Failures are logged as warnings, never raised."""
        level = Level(level)
        self.sent.append((level, title))
        audience = _AUDIENCE[level]
        delivered = 0
        for target in self._targets:
            if target.level not in audience:
                continue
            started = time.monotonic()
            try:
                ok = target.sender.notify(
                    body=body,
                    title=f"[{level.value.upper()}] {title}",
                    notify_type=_NOTIFY_TYPE[level],
                    body_format=apprise.NotifyFormat.MARKDOWN,
                )
                outcome = f"rejected or unreachable after {time.monotonic() - started:.1f} s"
            except Exception as exc:  # a plugin bug must not stop trading
                ok, outcome = False, f"raised {type(exc).__name__}"
            if ok:
                delivered += 1
            else:
                log.warning(
                    "%s notification via %s:// (from the %s list) failed: %s",
                    level.value, target.scheme, target.level.value, outcome,
                )
        return delivered


def _scheme(plugin: apprise.NotifyBase, url: str) -> str:
    """The plugin's own scheme (``tgram``, ``json``), also for native ``https://`` URLs."""
    try:
        return str(plugin.url(privacy=True)).split("://", 1)[0]
    except Exception:
        return urlsplit(url).scheme or "unknown"
