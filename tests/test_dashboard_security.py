"""The Voila server: a token by default, the token never in argv or a kernel, a kernel cap;
the dashboard survives forged widget messages."""

from __future__ import annotations

import os
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import nbformat
import pytest

from workbench.adapters.voila_server import TOKEN_ENV, free_port, voila_command

ROOT = Path(__file__).resolve().parents[1]


def _get(url: str) -> tuple[int, str]:
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(url, timeout=60) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
    except urllib.error.URLError:  # not listening yet
        return 0, ""


@pytest.fixture(scope="module")
def tiny_server(tmp_path_factory):
    """Voila on a one-cell notebook (fast to render), max 1 kernel, with a token."""
    folder = tmp_path_factory.mktemp("dash")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import os\nprint('token in kernel:', os.environ.get('JUPYTER_TOKEN'), os.environ.get('WORKBENCH_DASHBOARD_TOKEN'))\n"
        "print('query:', os.environ.get('QUERY_STRING'), os.environ.get('VOILA_REQUEST_URL'))")])  # fmt: skip
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = folder / "tiny.ipynb"
    nbformat.write(nb, path)
    port, token = free_port(), "t0k3n-for-the-test-0123"
    launch = voila_command(path, port, token=token, max_kernels=1)
    env = {k: v for k, v in os.environ.items() if k != TOKEN_ENV}
    env["WORKBENCH_DASHBOARD_TOKEN"] = token  # as a user fixing the token would have it
    proc = subprocess.Popen(launch.argv, env={**env, **launch.env}, cwd=folder,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    base = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 60
    while _get(base + "api")[0] == 0:  # any HTTP answer (302 without a token) means it is up
        if time.time() > deadline or proc.poll() is not None:
            proc.kill()
            raise RuntimeError(proc.communicate()[0].decode())
        time.sleep(0.3)
    yield base, token, launch
    proc.terminate()
    proc.wait(10)


def test_without_the_token_the_page_is_refused_and_no_kernel_starts(tiny_server):
    base, token, _ = tiny_server
    code, _ = _get(base)
    assert code in (302, 403)  # to the login page, never the dashboard
    assert _get(base + "?token=wrong")[0] in (302, 403)
    assert _get(base + "api/kernels")[0] in (302, 403)


def test_with_the_token_it_renders_and_the_token_is_hidden_from_argv_and_kernel(tiny_server):
    base, token, launch = tiny_server
    code, page = _get(base + f"?token={token}")
    assert code == 200 and "token in kernel: None None" in page
    assert "query: token=&lt;hidden&gt;" in page or "query: token=<hidden>" in page
    assert token not in page.split("query:")[1].split("</")[0]  # nor in the request URL copy
    assert token not in " ".join(launch.argv)


def test_kernels_beyond_the_cap_get_503(tiny_server):
    base, token, _ = tiny_server
    codes = [_get(base + f"?token={token}")[0] for _ in range(2)]  # the first test's kernel is still alive
    assert 503 in codes


def test_voila_command_serves_loopback_and_hides_sources_and_tracebacks():
    launch = voila_command(Path("d.ipynb"), 8866, token=None)
    assert "--Voila.ip=127.0.0.1" in launch.argv and "--strip_sources=True" in launch.argv
    assert "--show_tracebacks=False" in launch.argv and "--token" not in launch.argv and TOKEN_ENV not in launch.env
    assert "--template=workbench" in launch.argv  # the lab template without its CDN stylesheets
    assert "--VoilaExecutor.timeout=60" in launch.argv  # a lost kernel reply ends in "timed out", not a hang


def test_cli_prints_the_url_with_a_fresh_token_once(monkeypatch, capsys):
    from workbench import cli

    seen = {}
    monkeypatch.setattr(cli.os, "execve", lambda exe, argv, env: seen.update(argv=argv, env=env))
    monkeypatch.delenv("WORKBENCH_DASHBOARD_TOKEN", raising=False)
    assert cli.main(["dashboard", "--port", "9999"]) == 0
    out = capsys.readouterr().out
    token = seen["env"][TOKEN_ENV]
    assert len(token) >= 40 and out.count(token) == 1 and f"127.0.0.1:9999/?token={token}" in out
    assert token not in " ".join(seen["argv"])
    assert "--WarmKernelManager.warm_kernels=1" in seen["argv"] and "--preheat_kernel=True" not in seen["argv"]
    assert seen["argv"][seen["argv"].index("-m") + 2].endswith("dashboard_portfolio.ipynb")
    assert cli.main(["dashboard", "risk", "--warm", "0"]) == 0
    assert seen["argv"][seen["argv"].index("-m") + 2].endswith("dashboard_risk.ipynb")
    assert not any("WarmKernelManager" in a for a in seen["argv"])
    assert cli.main(["dashboard", "--no-token"]) == 0
    assert "WITHOUT a token" in capsys.readouterr().err and "--token" not in seen["argv"]


def test_cli_dashboard_refuses_bad_ports_and_missing_notebooks(capsys):
    from workbench import cli

    for port in ("99999", "0", "x"):
        with pytest.raises(SystemExit) as exc:
            cli.main(["dashboard", "--port", port])
        assert exc.value.code == 2
    assert cli.main(["dashboard", "--notebook", "/nonexistent.ipynb"]) == 1
    assert capsys.readouterr().err.endswith("error: ParameterError: notebook not found: /nonexistent.ipynb\n")
    assert cli.main(["dashboard", "--notebook", "/etc/passwd"]) == 1
    assert "is not a readable Jupyter notebook" in capsys.readouterr().err


def test_a_chosen_token_must_be_long_and_url_safe(monkeypatch, capsys):
    from workbench import cli

    monkeypatch.setattr(cli.os, "execve", lambda *a: None)
    for weak in ("x", "short-token", "has spaces in it!!", "plus+and&amp=1234567"):
        monkeypatch.setenv("WORKBENCH_DASHBOARD_TOKEN", weak)
        assert cli.main(["dashboard"]) == 1
        assert "at least 16 characters" in capsys.readouterr().err


def test_scrubbing_touches_only_the_variables_that_carry_the_token():
    from workbench.adapters.voila_server import scrub_secrets

    env = {"PATH": "/usr/local/bin", "HOME": "/root", "JUPYTER_TOKEN": "o" * 20,
           "WORKBENCH_DASHBOARD_TOKEN": "o" * 20, "QUERY_STRING": "a=1&token=" + "o" * 20,
           "VOILA_REQUEST_URL": "http://127.0.0.1:1/?token=" + "o" * 20 + "&x=2"}  # fmt: skip
    assert scrub_secrets(env) == {"PATH": "/usr/local/bin", "HOME": "/root", "QUERY_STRING": "a=1&token=<hidden>",
                                  "VOILA_REQUEST_URL": "http://127.0.0.1:1/?token=<hidden>&x=2"}  # fmt: skip


def test_a_burst_of_requests_cannot_overshoot_the_kernel_cap(tmp_path):
    """Kernels still starting count against the cap (they are not listed until started)."""
    from concurrent.futures import ThreadPoolExecutor

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('up')")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "burst.ipynb")
    port, token = free_port(), "burst-token-0123456789"
    launch = voila_command(tmp_path / "burst.ipynb", port, token=token, max_kernels=2)
    proc = subprocess.Popen(launch.argv, env={**os.environ, **launch.env}, cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}/"
        deadline = time.time() + 60
        while _get(base + "api")[0] == 0 and time.time() < deadline:
            time.sleep(0.3)
        with ThreadPoolExecutor(6) as pool:
            codes = list(pool.map(lambda _: _get(base + f"?token={token}")[0], range(6)))
        assert codes.count(200) <= 2 and codes.count(503) >= 4, codes
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_warm_kernel_has_the_libraries_imported_holds_no_token_and_serves_one_visitor(tmp_path):
    """WarmKernelManager: the visitor's kernel was started and warmed before the visit."""
    import re

    from workbench.adapters.voila_server import serve

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import os, sys\nprint('warm:', 'workbench.dashboards.portfolio' in sys.modules, 'token:',"
        " os.environ.get('JUPYTER_TOKEN'), 'kernel:', os.environ.get('VOILA_KERNEL_ID'))")])  # fmt: skip
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "warm.ipynb")
    log = tmp_path / "voila.log"
    with serve(tmp_path / "warm.ipynb", log=log, warm=1, max_kernels=3) as server:
        kernels = []
        for visit in (1, 2):
            deadline = time.time() + 120
            while len(re.findall(r"warm kernel \S+ ready", log.read_text())) < visit:
                assert time.time() < deadline, log.read_text()[-2000:]
                time.sleep(0.2)
            code, page = _get(server.url)
            assert code == 200 and "warm: True token: None" in page, page[-2000:]
            kernels.append(re.search(r"kernel: ([0-9a-f-]{36})", page).group(1))
        assert kernels[0] != kernels[1]  # a warm kernel is handed out once
        assert log.read_text().count("visitor gets warm kernel") == 2
