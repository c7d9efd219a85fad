"""Serving a dashboard with Voila: loopback only, a token by default, a cap on kernels.

A Voila page starts a Python kernel per visit. Without a token any local user, or any web
page open in the user's browser (a cross-site ``<img src=http://127.0.0.1:8866/>`` is
enough), could start kernels; without a cap a reload loop exhausts memory. So:

- :func:`voila_command` binds 127.0.0.1, requires a token (generated with
  :mod:`secrets` unless one is given), hides notebook sources and tracebacks, and renders
  with the ``workbench`` template (``voila_data/``: Voila's lab template without the two
  Font Awesome stylesheets it fetches from a CDN, so the page asks nothing of any other host);
- the token travels to Voila through ``JUPYTER_TOKEN`` in its environment, never on the
  command line (``ps`` shows every user the arguments), and :class:`CappedKernelManager`
  scrubs it from each kernel's environment (the variable itself, and the copies Voila
  puts in ``QUERY_STRING`` and ``VOILA_REQUEST_URL``) so notebook code cannot read it;
- :class:`CappedKernelManager` refuses a kernel beyond ``max_kernels`` with HTTP 503,
  counting kernels still starting (a burst of requests cannot overshoot), and culls
  kernels idle for ``cull_idle_timeout`` seconds, freeing their slots (Voila's pre-heat
  wrapper of this class skips the kernel waiting in its pool).

``preheat=True`` keeps one kernel per dashboard that has already run the notebook, so a
visit gets a rendered page instead of waiting for a kernel start, imports and the first
computation. The waiting kernel holds one of the ``max_kernels`` slots.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from tornado import web
from traitlets import Integer, Unicode

from workbench.errors import ParameterError

__all__ = ["CappedKernelManager", "WarmKernelManager", "VoilaLaunch", "voila_command", "new_token", "check_token", "scrub_secrets",
           "TOKEN_ENV", "RunningServer", "serve", "free_port"]  # fmt: skip

TOKEN_ENV = "JUPYTER_TOKEN"
SECRET_ENVS = (TOKEN_ENV, "WORKBENCH_DASHBOARD_TOKEN")
DEFAULT_MAX_KERNELS = 4
#: a Jupyter data folder holding the ``workbench`` Voila template (the lab template minus its CDN links)
TEMPLATES = Path(__file__).with_name("voila_data")
DEFAULT_IDLE_TIMEOUT_S = 900
#: a dashboard cell taking longer is stopped and the page says "timed out" (Voila's default
#: waits forever: a reply it never gets, which Voila 0.5.13 now and then loses, hangs the page)
CELL_TIMEOUT_S = 60


class CappedKernelManager(AsyncMappingKernelManager):
    """Jupyter's kernel manager with a ceiling on live kernels (one per open dashboard)."""

    max_kernels = Integer(DEFAULT_MAX_KERNELS, config=True, help="most kernels alive at once")
    _starting = 0  # kernels asked for and not yet listed (start_kernel awaits in between)

    async def start_kernel(self, *, kernel_id=None, path=None, **kwargs):  # noqa: ANN001 - jupyter's signature
        if kernel_id is not None:  # a restart of a kernel that already holds a slot
            return await super().start_kernel(kernel_id=kernel_id, path=path, **kwargs)
        if len(self.list_kernel_ids()) + self._starting >= self.max_kernels:
            raise web.HTTPError(
                503, f"dashboard busy: {self.max_kernels} sessions are open (the cap); close one or retry later"
            )
        if "env" in kwargs:
            kwargs["env"] = scrub_secrets(kwargs["env"])
        self._starting += 1  # no await between the check and this line: asyncio cannot interleave
        try:
            return await super().start_kernel(kernel_id=kernel_id, path=path, **kwargs)
        finally:
            self._starting -= 1


#: what a warm kernel imports before any visitor: the dashboards' heavy libraries (about 2-4 s here)
WARM_CODE = ("import numpy, pandas, scipy.stats, plotly.graph_objects, plotly.io, plotly.io._renderers, ipywidgets\n"
             "import workbench, workbench.dashboards, workbench.tearsheets, workbench.risk_report\n"
             "import workbench.dashboards.portfolio, workbench.dashboards.risk, workbench.dashboards.lab")  # fmt: skip


class WarmKernelManager(CappedKernelManager):
    """Keeps ``warm_kernels`` kernels started, with the dashboards' libraries imported, for the
    next visitors; a visit takes one (no kernel start, no imports) and a new one is warmed.

    Unlike Voila's ``preheat_kernel`` it does not pre-render the notebook: each visitor's
    kernel still runs the notebook for that visitor (so the store is read at the visit), it
    only skips the ~1 s kernel start and the imports. Warm kernels hold slots of the cap and
    are never culled while waiting (they have no connection, so Jupyter would cull them).
    """

    warm_kernels = Integer(1, config=True, help="kernels kept started and warmed for the next visitors")
    warm_code = Unicode(WARM_CODE, config=True, help="code each warm kernel runs before it is handed out")

    def __init__(self, **kwargs) -> None:  # noqa: ANN003 - traitlets' signature
        super().__init__(**kwargs)
        self._warm: list[str] = []  # warmed kernel ids, oldest first
        self._warming = 0
        asyncio.get_event_loop().call_soon(self._fill)

    def _fill(self) -> None:
        room = self.max_kernels - len(self.list_kernel_ids()) - self._starting
        for _ in range(min(self.warm_kernels - len(self._warm) - self._warming, room)):
            self._warming += 1
            asyncio.ensure_future(self._warm_one())

    async def _warm_one(self) -> None:
        try:
            kernel_id = await super().start_kernel(path="", env=scrub_secrets(dict(os.environ)))
            client = self.get_kernel(kernel_id).client()
            client.start_channels()
            try:
                await client.wait_for_ready(timeout=60)
                reply = await client.execute_interactive(self.warm_code, store_history=False, timeout=180)
                if reply["content"]["status"] != "ok":
                    self.log.warning("warm kernel %s: warm-up code failed: %s", kernel_id, reply["content"])
            finally:
                client.stop_channels()
            self._warm.append(kernel_id)
            self.log.info("warm kernel %s ready (%d waiting)", kernel_id, len(self._warm))
        except Exception:  # noqa: BLE001 - a failed warm-up must not take the server down; visitors get cold kernels
            self.log.exception("warming a kernel failed")
        finally:
            self._warming -= 1

    async def start_kernel(self, *, kernel_id=None, path=None, **kwargs):  # noqa: ANN001 - jupyter's signature
        self.log.debug("start_kernel path=%r kernel_name=%r (warm: %s)", path, kwargs.get("kernel_name"), self._warm)
        if kernel_id is None and self._warm and kwargs.get("kernel_name", self.default_kernel_name) == self.default_kernel_name:
            taken = self._warm.pop(0)
            self.log.info("visitor gets warm kernel %s", taken)
            asyncio.get_event_loop().call_later(1.0, self._fill)  # after the visitor's page has its kernel
            return taken
        return await super().start_kernel(kernel_id=kernel_id, path=path, **kwargs)

    async def cull_kernel_if_idle(self, kernel_id: str) -> None:
        if kernel_id in self._warm:
            return None
        return await super().cull_kernel_if_idle(kernel_id)

    async def shutdown_kernel(self, kernel_id: str, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        if kernel_id in self._warm:
            self._warm.remove(kernel_id)
        await super().shutdown_kernel(kernel_id, *args, **kwargs)
        asyncio.get_event_loop().call_soon(self._fill)  # a freed slot can hold a warm kernel again


URL_ENVS = ("QUERY_STRING", "VOILA_REQUEST_URL")  # Voila copies the request (and its ?token=) here
_TOKEN_PARAM = re.compile(r"(?<![A-Za-z0-9_])token=[^&#\s]*")
TOKEN_CHARS = re.compile(r"^[A-Za-z0-9_-]{16,}$")


def check_token(token: str) -> str:
    """A token a user chose must be URL-safe (it travels in the URL) and at least 16 characters."""
    if not TOKEN_CHARS.match(token):
        raise ParameterError(
            f"a dashboard token must be at least 16 characters of A-Z a-z 0-9 _ - (got {len(token)} "
            "characters); unset WORKBENCH_DASHBOARD_TOKEN to get a generated one"
        )
    return token


def scrub_secrets(env: dict[str, str] | None, token: str = "") -> dict[str, str]:
    """``env`` without the token variables and with ``token=...`` removed from the request copies.

    Only the variables known to carry the token are touched, so PATH or HOME stay intact
    whatever the token looks like.
    """
    out = {k: v for k, v in (env or {}).items() if k not in SECRET_ENVS}
    for key in URL_ENVS:
        if key in out:
            out[key] = _TOKEN_PARAM.sub("token=<hidden>", out[key])
    return out


def new_token() -> str:
    """A fresh URL-safe token with 256 bits of entropy, as JupyterLab generates."""
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class VoilaLaunch:
    """What to run and with which extra environment; ``url`` is the one to open."""

    argv: list[str]
    env: dict[str, str] = field(repr=False)
    url: str = field(repr=False)


def voila_command(
    notebook: Path,
    port: int,
    *,
    token: str | None,
    max_kernels: int = DEFAULT_MAX_KERNELS,
    idle_timeout_s: int = DEFAULT_IDLE_TIMEOUT_S,
    preheat: bool = False,
    warm: int = 0,
) -> VoilaLaunch:
    """The Voila invocation for ``notebook``; ``token=None`` serves without authentication.

    ``warm`` kernels are kept started with the libraries imported (:class:`WarmKernelManager`);
    ``preheat`` uses Voila's own pool of pre-rendered notebooks instead.
    """
    cls = WarmKernelManager if warm else CappedKernelManager
    manager = f"{cls.__module__}.{cls.__name__}"
    argv = [
        sys.executable, "-m", "voila", str(notebook), "--no-browser", f"--port={port}",
        "--Voila.ip=127.0.0.1", "--strip_sources=True", "--show_tracebacks=False",
        f"--VoilaConfiguration.multi_kernel_manager_class={manager}",
        f"--CappedKernelManager.max_kernels={max_kernels}",
        f"--CappedKernelManager.cull_idle_timeout={idle_timeout_s}",
        "--CappedKernelManager.cull_interval=60", "--template=workbench",
        f"--VoilaExecutor.timeout={CELL_TIMEOUT_S}",
    ]  # fmt: skip
    if warm:
        argv.append(f"--WarmKernelManager.warm_kernels={warm}")
    if preheat:
        argv += ["--preheat_kernel=True", "--VoilaConfiguration.default_pool_size=1"]
    base = f"http://127.0.0.1:{port}/"
    env = {"JUPYTER_PATH": os.pathsep.join(p for p in (str(TEMPLATES), os.environ.get("JUPYTER_PATH", "")) if p)}
    if token is None:
        return VoilaLaunch(argv, env, base)
    return VoilaLaunch([*argv, "--token"], {**env, TOKEN_ENV: token}, f"{base}?token={token}")


def free_port() -> int:
    """A port on 127.0.0.1 nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RunningServer:
    """A Voila process serving one dashboard; ``url`` carries the token, ``base`` does not."""

    url: str = field(repr=False)
    base: str
    proc: subprocess.Popen = field(repr=False)
    log: Path
    started: float  # time.perf_counter() when the process was launched
    up: float  # time.perf_counter() when it first answered HTTP


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=1)  # noqa: S310 - loopback only
        return True
    except urllib.error.HTTPError:
        return True  # it answers (a redirect to the login page counts)
    except Exception:  # noqa: BLE001 - not listening yet
        return False


@contextlib.contextmanager
def serve(notebook: Path, *, log: Path, env: dict[str, str] | None = None, preheat: bool = False, warm: int = 0,
          max_kernels: int = DEFAULT_MAX_KERNELS, timeout_s: float = 90) -> Iterator[RunningServer]:  # fmt: skip
    """Run Voila on ``notebook`` as ``workbench dashboard`` does (loopback, a fresh token) until
    the block ends; for tests and benchmarks, which need the process, not an ``execve``."""
    notebook = Path(notebook).resolve()  # Voila runs in the notebook's folder
    port = free_port()
    launch = voila_command(notebook, port, token=new_token(), max_kernels=max_kernels, preheat=preheat, warm=warm)
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with log.open("wb") as sink:
        proc = subprocess.Popen(launch.argv, env={**os.environ, **(env or {}), **launch.env}, cwd=notebook.parent,
                                stdout=sink, stderr=subprocess.STDOUT)  # fmt: skip
    base = f"http://127.0.0.1:{port}/"
    try:
        while not _answers(base + "api"):
            if proc.poll() is not None or time.perf_counter() - started > timeout_s:
                raise RuntimeError(f"voila did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.05)
        yield RunningServer(launch.url, base, proc, log, started, time.perf_counter())
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
