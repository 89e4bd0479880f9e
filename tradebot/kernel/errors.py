"""User-facing errors: each carries a message that says what went wrong and what to do."""


class TradebotError(Exception):
    """Base class for errors the CLI reports as a clear message with a non-zero exit."""

    exit_code = 1


class ConfigError(TradebotError):
    """The configuration file or an override is invalid."""

    exit_code = 2


class DataError(TradebotError):
    """Input data is missing, empty or invalid for the requested window or symbols."""

    exit_code = 3


class NoChampionError(TradebotError):
    """No model holds the champion alias yet."""

    exit_code = 4


class SourceError(DataError):
    """An external data source failed: retries exhausted, an error reply or a malformed body.

    Messages name the source and the failure, never credentials or full request headers."""


class CheckFailed(TradebotError):
    """A data check (lookahead, parity) found mismatches."""

    exit_code = 5


class BrokerError(TradebotError):
    """The broker could not be reached or gave an answer the order state cannot rest on.

    Orders are idempotent by client_order_id, so the cycle that raised this can be re-run:
    reconciliation adopts whatever the broker did accept."""

    exit_code = 6
