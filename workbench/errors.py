"""The shared exception hierarchy.

Every error the workbench raises on purpose derives from :class:`WorkbenchError`, so a
notebook can catch the whole family with one ``except``. Each error names the rule that
was broken and the offending value (or timestamp), e.g.
``OrderStateError: cannot fill order O-3: status is CANCELLED (fills need ACCEPTED or
PARTIALLY_FILLED)``.
"""

from __future__ import annotations

__all__ = [
    "WorkbenchError",
    "DomainError",
    "InvalidValueError",
    "CurrencyMismatchError",
    "OrderStateError",
    "OverfillError",
    "DuplicateFillError",
    "InsufficientFundsError",
    "DataError",
    "DataValidationError",
    "NoDataError",
    "UnknownSymbolError",
    "CacheMissError",
    "InsufficientHistoryError",
    "ParameterError",
    "CacheCorruptError",
    "CacheAccessError",
    "DataReadError",
    "ReportPathError",
    "SweepTooLargeError",
    "StrategyStateError",
    "LookAheadError",
    "NotebookRunError",
]


def first_line(text: object, default: str = "") -> str:
    """The first non-blank line of a message (errors print as one line at the CLI)."""
    lines = [ln for ln in str(text).strip().splitlines() if ln.strip()]
    return lines[0] if lines else default


class WorkbenchError(Exception):
    """Base class of every error raised on purpose by the workbench."""


class DomainError(WorkbenchError):
    """A rule of the trading/strategy/risk domain was broken."""


class CurrencyMismatchError(DomainError, ValueError):
    """Arithmetic or booking across two currencies without an explicit conversion."""


class OrderStateError(DomainError):
    """An order was asked to make a transition its state machine forbids."""


class OverfillError(OrderStateError):
    """A fill would take an order's filled quantity above its quantity."""


class DuplicateFillError(DomainError):
    """The same fill (same ``fill_id``) was applied twice to an order or a portfolio.

    A broker may redeliver a fill (a reconnect, a replayed stream); booking it again would
    double the position and the cash flow, so the second application is refused.
    """


class InsufficientFundsError(DomainError):
    """An order needs more cash or margin than the account has available."""


class DataError(WorkbenchError):
    """Market data is missing or breaks a rule of the OHLCV schema."""


class DataValidationError(DataError, ValueError):
    """An OHLCV frame breaks a schema rule; the message names the rule and timestamp."""

    def __init__(self, rule: str, message: str, timestamp: object | None = None) -> None:
        self.rule = rule
        self.timestamp = timestamp
        super().__init__(f"[{rule}] {message}")


class NoDataError(DataError, LookupError):
    """A request matched no data (empty range, empty download)."""


class UnknownSymbolError(DataError, KeyError):
    """A symbol is not known to the price source."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class CacheMissError(NoDataError):
    """Offline mode was asked for a range the local cache does not hold."""


class CacheCorruptError(DataError):
    """A cached file fails its integrity check (hash, schema, stored symbol or OHLC rules).

    The cache renames the file aside (never overwritten in place before a good copy exists;
    the reason says where it went); ``load_prices(..., refresh=True)`` fetches a fresh copy.
    """

    def __init__(self, path: object, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(
            f"[cache_corrupt] {path}: {reason}; reload with refresh=True to fetch a fresh copy"
        )


class CacheAccessError(DataError, OSError):
    """The cache directory or one of its files cannot be read or written (permissions, disk full)."""


class DataReadError(DataError, OSError):
    """A price file cannot be read at all (missing, empty, a directory, no permission, not a table)."""


class InsufficientHistoryError(DataError):
    """Fewer bars than the caller asked for (``min_bars``, an indicator's warm-up...)."""


class ParameterError(WorkbenchError, ValueError):
    """A strategy, backtest or notebook parameter is invalid."""


class InvalidValueError(DomainError, ParameterError):
    """A value object or parameter was constructed with an invalid value.

    A :class:`ParameterError` too: a bad value is one kind of error whether the API or a
    domain object (an Order, an Instrument, an account policy) found it, so
    ``except ParameterError`` catches both.
    """


class ReportPathError(ParameterError):
    """A report path would leave the reports directory, or a name component is not safe."""


class SweepTooLargeError(ParameterError):
    """A parameter sweep has more combinations than the configured limit."""


class StrategyStateError(DomainError):
    """An illegal strategy lifecycle transition (e.g. DRAFT → LIVE without testing)."""


class LookAheadError(WorkbenchError):
    """A strategy's decision at time t changed when data after t was removed."""


class NotebookRunError(WorkbenchError):
    """A cell of a headless notebook run raised; names the error, the cell and the kept copy."""

    def __init__(self, ename: str, evalue: str, cell: int | None, failed_copy: object | None) -> None:
        self.ename, self.evalue, self.cell, self.failed_copy = ename, evalue, cell, failed_copy
        where = f" in cell {cell}" if cell is not None else ""
        kept = f"; the partial run is kept in {failed_copy}" if failed_copy else ""
        super().__init__(f"{ename}: {evalue}{where}{kept}")
