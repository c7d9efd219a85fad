"""Retry a vendor call on transient errors only, with exponential backoff."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

log = logging.getLogger("workbench.data")


def retry(
    call: Callable[[], T],
    *,
    transient: tuple[type[BaseException], ...],
    what: str,
    attempts: int = 5,
    base_delay: float = 1.0,
    max_delay: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """``call()``; on a ``transient`` error wait ``base_delay * 2**k`` (capped) and try again.

    Any other error propagates at once; after ``attempts`` transient failures the last one
    propagates. Each retry is logged with the error (never with credentials: vendor
    errors carry URLs, not keys).
    """
    for attempt in range(attempts):
        try:
            return call()
        except transient as exc:
            if attempt == attempts - 1:
                raise
            delay = min(max_delay, base_delay * 2**attempt)
            log.warning("%s: %s: %s; retry %d/%d in %.1f s", what, type(exc).__name__, exc,
                        attempt + 1, attempts - 1, delay)  # fmt: skip
            sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover
