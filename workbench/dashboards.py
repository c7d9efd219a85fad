"""Widgets for Voila dashboards that a forged or stale front-end message cannot break.

A Voila page talks to its kernel through widget comm messages, and anything that can
reach the page can send one: ``{"method": "update", "state": {"index": 99}}``. Plain
ipywidgets raise inside the comm handler for an out-of-range index (the front end then
shows a choice the kernel never took), accept ``index=None`` (the value becomes None and
the next callback crashes), and let a failing callback escape. Here:

- :class:`GuardedDropdown` refuses any index that is not one of its options, keeps its
  value, re-sends its state so the page shows the kernel's choice again, and counts the
  rejection in ``rejected``;
- :func:`guarded` wraps a callback so an error shows as one line in a status widget and
  the dashboard keeps answering.
"""

from __future__ import annotations

import functools
import html
import logging
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets
from traitlets import Int, TraitError

__all__ = ["GuardedDropdown", "guarded"]

log = logging.getLogger(__name__)


class GuardedDropdown(widgets.Dropdown):
    """A Dropdown whose front-end updates may only pick one of its options (by index).

    The page legitimately sends nothing but ``index``; any other key (``_options_labels``,
    ``disabled``, ``description``...) is a forged message and is refused whole.
    """

    rejected = Int(0, help="front-end updates refused so far")
    FRONT_END_KEYS = frozenset({"index"})

    def set_state(self, sync_data: dict[str, Any]) -> None:
        extra = set(sync_data) - self.FRONT_END_KEYS
        if extra:
            return self._reject(f"the page may not set {sorted(extra)}")
        if "index" in sync_data:
            index = sync_data["index"]
            if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(self.options):
                return self._reject(f"index {index!r} is not one of the {len(self.options)} options")
        try:
            super().set_state(sync_data)
        except TraitError as exc:
            self._reject(str(exc))

    def _reject(self, why: str) -> None:
        self.rejected += 1
        log.warning("%s %r: refused a front-end update: %s", type(self).__name__, self.description, why)
        self.send_state()  # the page goes back to the value the kernel holds


def guarded(status: widgets.HTML) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: run the callback; on an error, show it in ``status`` instead of raising."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - a dashboard must survive any callback error
                log.exception("dashboard callback %s failed", fn.__name__)
                status.value = f"<span style='color:#b00'>{html.escape(type(exc).__name__)}: {html.escape(str(exc))}</span>"
                return None

        return run

    return wrap
