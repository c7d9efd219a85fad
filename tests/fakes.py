"""Hand-written fakes of the vendors' HTTP APIs, replaying the payloads in tests/payloads.

``FakeYahoo`` is a requests transport adapter: yfinance runs its real code (cookie,
crumb, time-zone lookup, chart request, parsing) against it. ``fake_binance`` swaps the
HTTP layer of a real ``ccxt.binance`` instance, so ccxt's own request building, rate
limiter and kline parsing all run.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import requests
from requests.adapters import BaseAdapter
from requests.models import PreparedRequest, Response

PAYLOADS = Path(__file__).parent / "payloads"
_NOT_FOUND = {
    "chart": {
        "result": None,
        "error": {"code": "Not Found", "description": "No data found, symbol may be delisted"},
    }
}


def payload(name: str) -> Any:
    return json.loads((PAYLOADS / name).read_text())


class FakeYahoo(BaseAdapter):
    """Serves fc.yahoo.com, getcrumb and /v8/finance/chart/<symbol> from recorded charts."""

    def __init__(
        self, charts: dict[str, dict], failures: list[BaseException] | None = None
    ) -> None:
        super().__init__()
        self.charts = charts
        self.failures = list(failures or [])  # raised, in order, by the next chart requests
        self.chart_calls: list[dict[str, list[str]]] = []

    def send(self, request: PreparedRequest, **kwargs: Any) -> Response:
        url = urlparse(request.url)
        m = re.match(r"^/v8/finance/chart/(.+)$", url.path)
        if url.netloc == "fc.yahoo.com":
            return self._response(request, 404, b"")
        if url.path == "/v1/test/getcrumb":
            return self._response(request, 200, b"fakeCrumb0", "text/plain")
        if not m:
            return self._response(request, 404, json.dumps(_NOT_FOUND).encode())
        query = parse_qs(url.query)
        self.chart_calls.append(query)
        if self.failures:
            raise self.failures.pop(0)
        symbol = unquote(m.group(1))
        if symbol not in self.charts:
            return self._response(request, 404, json.dumps(_NOT_FOUND).encode())
        chart = copy.deepcopy(self.charts[symbol])
        result = chart["chart"]["result"][0]
        stamps = result.get("timestamp", [])
        if "range" in query:
            keep = list(range(len(stamps)))[-1:]
        else:
            lo = int(query.get("period1", ["0"])[0])
            hi = int(query.get("period2", [str(2**40)])[0])
            keep = [i for i, t in enumerate(stamps) if lo <= t < hi]
        result["timestamp"] = [stamps[i] for i in keep]
        quote = result["indicators"]["quote"][0]
        for k in quote:
            quote[k] = [quote[k][i] for i in keep]
        adj = result["indicators"].get("adjclose", [{}])[0]
        if "adjclose" in adj:
            adj["adjclose"] = [adj["adjclose"][i] for i in keep]
        if not keep:  # what Yahoo sends for a range without bars
            result.pop("timestamp")
            result["indicators"] = {"quote": [{}]}
        return self._response(request, 200, json.dumps(chart).encode())

    @staticmethod
    def _response(
        request: PreparedRequest, status: int, body: bytes, ctype: str = "application/json"
    ) -> Response:
        r = Response()
        r.status_code = status
        r._content = body
        r.url = request.url
        r.request = request
        r.headers["Content-Type"] = ctype
        r.encoding = "utf-8"
        return r

    def close(self) -> None:
        pass


def yahoo_session(adapter: FakeYahoo) -> requests.Session:
    s = requests.Session()
    s.mount("https://", adapter)
    s.mount("http://", adapter)
    return s


class FakeBinanceHttp:
    """The HTTP layer of a ccxt exchange: exchangeInfo and klines from recorded payloads."""

    def __init__(self, klines: list[list], failures: list[BaseException] | None = None,
                 kill_after_pages: int | None = None) -> None:  # fmt: skip
        self.info = payload("binance_exchangeInfo.json")
        self.klines = klines
        self.failures = list(failures or [])
        self.kline_calls: list[dict[str, str]] = []
        self.kill_after_pages = kill_after_pages

    def __call__(self, url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        parsed = urlparse(url)
        if parsed.path.endswith("/exchangeInfo"):
            return copy.deepcopy(self.info)
        if parsed.path.endswith("/klines"):
            q = {k: v[0] for k, v in parse_qs(parsed.query).items()}
            self.kline_calls.append(q)
            if self.kill_after_pages is not None and len(self.kline_calls) > self.kill_after_pages:
                raise KeyboardInterrupt("injected: process killed mid-download")
            if self.failures:
                raise self.failures.pop(0)
            start = int(q.get("startTime", 0))
            end = int(q.get("endTime", 2**62))
            limit = int(q.get("limit", 500))
            rows = [k for k in self.klines if start <= k[0] <= end][:limit]
            return copy.deepcopy(rows)
        raise AssertionError(f"unexpected request {url}")


class FakeSource:
    """A PriceSource that yields canned frames, for the validation and cache tests."""

    def __init__(self, frames: dict[str, Any], *, name: str = "fake", online: bool = True,
                 adjusted: bool = False, now: Any = None) -> None:  # fmt: skip
        self.frames = frames
        self.name = name
        self.online = online
        self.adjusted = adjusted
        self.cacheable = True
        self.calls: list[tuple[str, Any, Any]] = []
        self._now = now

    def now(self) -> Any:
        import pandas as pd

        return self._now if self._now is not None else pd.Timestamp("2100-01-01", tz="UTC")

    def native_timeframe(self, symbol: str, timeframe: str | None) -> str:
        return timeframe or "1d"

    def metadata(self, symbol: str) -> dict[str, Any]:
        return {"symbol": symbol, "name": symbol, "asset_class": "EQUITY", "currency": "USD",
                "lot_size": 1.0, "tick_size": 0.01}  # fmt: skip

    def fetch(self, symbol: str, timeframe: str, start: Any, end: Any) -> Any:
        from workbench.errors import UnknownSymbolError

        self.calls.append((symbol, start, end))
        if symbol not in self.frames:
            raise UnknownSymbolError(f"[unknown_symbol] fake source has no {symbol!r}")
        frame = self.frames[symbol]
        if frame is None or len(frame) == 0:
            return
        yield frame if start is None else frame.loc[frame.index >= start] if frame.index.tz is not None else frame


def read_only_disk(monkeypatch: Any, root: Any) -> None:
    """Make every write under ``root`` fail with EROFS, as on a read-only mount.

    Tests run as root, and root ignores ``chmod``, so the refusal is injected where Python
    writes: ``open`` for writing, ``os.open`` with a write flag, mkdir, rename, replace,
    unlink. Reads (pyarrow's included) are untouched.
    """
    import builtins
    import errno
    import io
    import os

    base = os.path.realpath(root)

    def inside(path: Any) -> bool:
        if isinstance(path, int):
            return False
        p = os.path.realpath(os.fspath(path))
        return p == base or p.startswith(base + os.sep)

    def refuse(path: Any) -> None:
        raise OSError(errno.EROFS, "Read-only file system", os.fspath(path))

    real_open, real_os_open = builtins.open, os.open

    def fake_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if inside(file) and set(mode) & set("wax+"):
            refuse(file)
        return real_open(file, mode, *args, **kwargs)

    def fake_os_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        writing = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
        if inside(path) and flags & writing:
            refuse(path)
        return real_os_open(path, flags, *args, **kwargs)

    def guarded(real: Any) -> Any:
        def fake(path: Any, *args: Any, **kwargs: Any) -> Any:
            if inside(path):
                refuse(path)
            return real(path, *args, **kwargs)

        return fake

    monkeypatch.setattr(builtins, "open", fake_open)
    monkeypatch.setattr(io, "open", fake_open)
    monkeypatch.setattr(os, "open", fake_os_open)
    for name in ("mkdir", "rename", "replace", "unlink"):
        monkeypatch.setattr(os, name, guarded(getattr(os, name)))


def full_disk(monkeypatch: Any, root: Any) -> None:
    """Make every write to a regular file under ``root`` fail with ENOSPC.

    Log lines fail at ``os.write``; data files at ``os.fsync``, where a full disk shows up
    with delayed allocation (the buffered write itself only fills the page cache).
    """
    import errno
    import os
    import stat

    base = os.path.realpath(root) + os.sep
    real_write, real_fsync = os.write, os.fsync

    def full(fd: int) -> bool:
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            return False
        return target.startswith(base) and stat.S_ISREG(os.fstat(fd).st_mode)

    def fake_write(fd: int, data: Any) -> int:
        if full(fd):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    def fake_fsync(fd: Any) -> None:
        fd = fd if isinstance(fd, int) else fd.fileno()
        if full(fd):
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "write", fake_write)
    monkeypatch.setattr(os, "fsync", fake_fsync)
