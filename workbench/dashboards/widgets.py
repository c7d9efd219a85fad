"""Widgets for Voila dashboards that a forged or stale front-end message cannot break.

A Voila page talks to its kernel through widget comm messages, and anything that can
reach the page can send one: ``{"method": "update", "state": {"index": 99}}``. Plain
ipywidgets raise inside the comm handler for an out-of-range index (the front end then
shows a choice the kernel never took), accept ``index=None`` (the value becomes None and
the next callback crashes), clamp an out-of-range number silently, and let a failing
callback escape. Here:

- every ``Guarded*`` widget accepts from the page only the one key a user's action sends
  (``index`` for a choice, ``value`` for a number, a text or a tick box), checks that
  value by the widget's own rule (one of the options, an integer within the bounds, a
  finite number, at most ``max_length`` characters...), and otherwise keeps its value,
  re-sends its state so the page shows the kernel's value again, and counts the refusal
  in ``rejected``; anything else in the message (``_options_labels``, ``disabled``,
  ``description``...) is forged and refused whole;
- :class:`Status` is the one-line status every dashboard shows (busy / ready / error,
  with a generation counter a browser test can wait on);
- :func:`guarded` wraps a callback so an error shows as one line in a status widget and
  the dashboard keeps answering;
- :func:`show_figure` draws a plotly figure into an ``Output`` widget (static output,
  no cloud link, no mode bar logo).
"""

from __future__ import annotations

import functools
import html
import logging
import math
import re
from collections.abc import Callable
from numbers import Integral, Real
from typing import Any

import ipywidgets as widgets
from traitlets import HasTraits, Int, TraitError

__all__ = ["GuardedCheckbox", "GuardedDropdown", "GuardedFloatText", "GuardedIntText", "GuardedSelectMultiple",
           "GuardedTab", "GuardedText", "GuardedToggleButtons", "Status", "guarded", "show_figure", "PLOTLY_CONFIG"]  # fmt: skip

log = logging.getLogger(__name__)

#: plotly's config for every dashboard figure: no "edit in Chart Studio" link, no logo
PLOTLY_CONFIG = {"displaylogo": False,
                 "showSendToCloud": False, "responsive": True}  # plotly.js defaults the cloud links off


class _FrontEndGuard(HasTraits):
    """Mixin: the page may set only ``FRONT_END_KEYS``, and ``refusal`` must find nothing wrong."""

    rejected = Int(0, help="front-end updates refused so far")
    FRONT_END_KEYS: frozenset[str] = frozenset({"value"})

    def refusal(self, sync_data: dict[str, Any]) -> str | None:
        """Why this update is not one a user could make, or None."""
        return None

    def set_state(self, sync_data: dict[str, Any]) -> None:
        extra = set(sync_data) - self.FRONT_END_KEYS
        why = f"the page may not set {sorted(extra)}" if extra else self.refusal(sync_data)
        if why:
            return self._reject(why)
        try:
            super().set_state(sync_data)  # type: ignore[misc]
        except (TraitError, TypeError, ValueError) as exc:
            self._reject(str(exc))

    def _reject(self, why: str) -> None:
        self.rejected += 1
        log.warning("%s %r: refused a front-end update: %s", type(self).__name__,
                    getattr(self, "description", ""), why)  # fmt: skip
        self.send_state()  # type: ignore[attr-defined]  # the page goes back to the kernel's value


def _is_int(x: object) -> bool:
    return isinstance(x, Integral) and not isinstance(x, bool)


def _index_refusal(index: object, n: int) -> str | None:
    if not _is_int(index) or not 0 <= index < n:  # type: ignore[operator]
        return f"index {index!r} is not one of the {n} options"
    return None


class _SingleChoice(_FrontEndGuard):
    FRONT_END_KEYS = frozenset({"index"})

    def refusal(self, sync_data: dict[str, Any]) -> str | None:
        return _index_refusal(sync_data["index"], len(self.options)) if "index" in sync_data else None  # type: ignore[attr-defined]


class GuardedDropdown(_SingleChoice, widgets.Dropdown):
    """A Dropdown whose front-end updates may only pick one of its options (by index)."""


class GuardedToggleButtons(_SingleChoice, widgets.ToggleButtons):
    """ToggleButtons whose front-end updates may only pick one of its options."""


class GuardedSelectMultiple(_FrontEndGuard, widgets.SelectMultiple):
    """A SelectMultiple whose page may pick only distinct options, at most ``max_selected``."""

    FRONT_END_KEYS = frozenset({"index"})
    max_selected = Int(0, help="most options the page may pick at once; 0 means any number")

    def refusal(self, sync_data: dict[str, Any]) -> str | None:
        picked = sync_data.get("index", ())
        if not isinstance(picked, list | tuple):
            return f"index {picked!r} is not a list of option indices"
        for index in picked:
            if why := _index_refusal(index, len(self.options)):
                return why
        if len(set(picked)) != len(picked):
            return f"index {picked!r} repeats an option"
        if self.max_selected and len(picked) > self.max_selected:
            return f"at most {self.max_selected} options may be picked, got {len(picked)}"
        return None


class GuardedTab(_FrontEndGuard, widgets.Tab):
    """A Tab whose page may only pick one of its tabs (``selected_index`` in range)."""

    FRONT_END_KEYS = frozenset({"selected_index"})

    def refusal(self, sync_data: dict[str, Any]) -> str | None:
        index = sync_data.get("selected_index")
        ok = _is_int(index) and 0 <= index < len(self.children)  # type: ignore[operator]
        return None if ok else f"selected_index {index!r} is not one of the {len(self.children)} tabs"


class GuardedIntText(_FrontEndGuard, widgets.BoundedIntText):
    """An integer box: the page's value must be an integer within [min, max] (refused, not clamped)."""

    def refusal(self, sync_data: dict[str, Any]) -> str | None:
        value = sync_data.get("value")
        if not _is_int(value) or not self.min <= value <= self.max:
            return f"{self.description or 'value'} must be an integer in [{self.min}, {self.max}], got {value!r}"
        return None


class GuardedFloatText(_FrontEndGuard, widgets.BoundedFloatText):
    """A number box: the page's value must be a finite number within [min, max] (refused, not clamped)."""

    def refusal(self, sync_data: dict[str, Any]) -> str | None:
        value = sync_data.get("value")
        ok = isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)
        if not ok or not self.min <= value <= self.max:
            return f"{self.description or 'value'} must be a finite number in [{self.min}, {self.max}], got {value!r}"
        return None


class GuardedCheckbox(_FrontEndGuard, widgets.Checkbox):
    """A tick box: the page's value must be True or False."""

    def refusal(self, sync_data: dict[str, Any]) -> str | None:
        value = sync_data.get("value")
        return None if isinstance(value, bool) else f"{self.description or 'value'} must be true or false, got {value!r}"


class GuardedText(_FrontEndGuard, widgets.Text):
    """A text box: at most ``max_length`` characters, matching ``pattern`` when one is given."""

    max_length = Int(200, help="longest text the page may send")

    def __init__(self, *args: Any, pattern: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pattern = re.compile(pattern) if pattern else None

    def refusal(self, sync_data: dict[str, Any]) -> str | None:
        value = sync_data.get("value")
        name = self.description or "value"
        if not isinstance(value, str) or len(value) > self.max_length:
            return f"{name} must be a text of at most {self.max_length} characters, got {str(value)[:40]!r}"
        if self._pattern is not None and not self._pattern.fullmatch(value):
            return f"{name} must match {self._pattern.pattern}, got {value[:40]!r}"
        return None


class Status:
    """The dashboard's one-line status, readable by a person and by a browser test.

    Each finished update (or error) bumps ``generation``; the HTML carries it as
    ``data-gen`` with ``data-state`` = busy / ready / error, so a test waits for "the
    update after the one I saw" instead of sleeping.
    """

    def __init__(self) -> None:
        self.widget = widgets.HTML()
        self.widget.add_class("wb-status")
        self.generation = 0
        self.ready("")

    def _show(self, state: str, text: str, colour: str) -> None:
        self.widget.value = (f"<span data-state='{state}' data-gen='{self.generation}' "
                             f"style='color:{colour}'>{text}</span>")  # fmt: skip

    def busy(self, what: str) -> None:
        self._show("busy", html.escape(what) + "…", "#666")

    def ready(self, text: str) -> None:
        """``text`` is HTML the dashboard composed (numbers, links); escape user data before."""
        self.generation += 1
        self._show("ready", text, "inherit")

    def error(self, exc: BaseException) -> None:
        self.generation += 1
        self._show("error", f"{html.escape(type(exc).__name__)}: {html.escape(str(exc))}", "#b00")


def guarded(status: widgets.HTML | Status) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: run the callback; on an error, show it in ``status`` instead of raising."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - a dashboard must survive any callback error
                log.exception("dashboard callback %s failed", fn.__name__)
                if isinstance(status, Status):
                    status.error(exc)
                else:
                    status.value = (f"<span style='color:#b00'>{html.escape(type(exc).__name__)}: "
                                    f"{html.escape(str(exc))}</span>")  # fmt: skip
                return None

        return run

    return wrap


def show_figure(out: widgets.Output, figure: Any) -> None:
    """Replace what ``out`` shows with the plotly ``figure`` (a static output, no cloud link).

    The mimetype renderer emits the figure as JSON that the page's plotly extension draws;
    the page already holds plotly.js, so nothing is fetched and nothing runs in the kernel
    after this call.
    """
    out.clear_output(wait=True)
    with out:
        figure.show(renderer="plotly_mimetype", config=PLOTLY_CONFIG)
