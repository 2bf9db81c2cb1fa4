"""Running ``todokede guard`` and ``todokede wrap`` as processes, and IMAP clients bound to
the loopback address a test wants to come from."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.realservers import DovecotServer, dovecot

TODOKEDE = [sys.executable, "-m", "todokede"]


def wait_until(predicate: Callable[[], bool], timeout: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")


def terminate(proc: subprocess.Popen[Any]) -> None:
    """SIGTERM, and SIGKILL if it has not ended within 30 seconds."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def banned(deny: Path) -> set[str]:
    """The addresses in guard's host list."""
    return set(deny.read_text().split()) if deny.exists() else set()


IMAP_JAIL = """
[jail.imap]
{source}
filters = ["dovecot"]
maxretry = 3
bantime = "{bantime}"
ignoreip = ["127.0.0.1"]
actions = ["{action}"]
"""


@contextmanager
def watched_dovecot(
    tmp: Path,
    *,
    bantime: str = "1h",
    action: str = "hosts-deny",
    source: str = "",
    haproxy: bool = False,
) -> Iterator[tuple[DovecotServer, Path]]:
    """A real Dovecot and a guard config whose jail ``imap`` bans after three failures
    (read from Dovecot's log, or from ``source``: another logpath or journal). With
    ``haproxy`` Dovecot takes connections from ``wrap --proxy-protocol`` only."""
    with dovecot(tmp, haproxy=haproxy) as imap:
        assert imap.log is not None
        wait_until(imap.log.exists, what="dovecot's log")
        jail = IMAP_JAIL.format(
            source=source or f'logpath = "{imap.log}"', bantime=bantime, action=action
        )
        yield imap, config(tmp, jail)


def config(tmp: Path, jails: str, **guard: str) -> Path:
    """A guard config in ``tmp`` (state, host list and reports there too)."""
    values = {
        "state": str(tmp / "state.db"),
        "hosts_deny": str(tmp / "guard.deny"),
        "report_dir": str(tmp / "reports"),
        "poll": "0.05",
        **guard,
    }
    head = "[guard]\n" + "".join(
        f"{k} = {v}\n" if v.replace(".", "", 1).isdigit() else f'{k} = "{v}"\n'
        for k, v in values.items()
    )
    path = tmp / "guard.toml"
    path.write_text(head + jails)
    return path


@contextmanager
def guard(conf: Path, *args: str) -> Iterator[subprocess.Popen[str]]:
    """``todokede guard --config conf`` until the block ends (SIGTERM, then a clean exit)."""
    errlog = conf.parent / "guard.err"
    before = errlog.stat().st_size if errlog.exists() else 0

    def said() -> str:
        with open(errlog) as fh:
            fh.seek(before)
            return fh.read()

    with open(errlog, "a") as err:
        proc = subprocess.Popen(
            [*TODOKEDE, "guard", "--config", str(conf), *args],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    try:
        wait_until(
            lambda: "started:" in said() or proc.poll() is not None,
            what="guard to start",
        )
        assert proc.poll() is None, said()
        yield proc
    finally:
        if proc.poll() is None:
            terminate(proc)
        assert proc.stdout is not None
        proc.stdout.close()
    assert proc.returncode == 0, said()
    assert "Traceback" not in said()


def run(conf: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*TODOKEDE, "guard", *args, "--config", str(conf)],
        capture_output=True,
        text=True,
        timeout=60,
    )


@contextmanager
def wrap(backend: int, rules_dir: Path, log: Path, *, proxy: str = "") -> Iterator[int]:
    """``todokede wrap`` as a process on a free loopback port in front of ``backend``
    (``proxy``: the PROXY protocol version it sends the backend)."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    argv = [
        *TODOKEDE, "wrap", "--listen", f"127.0.0.1:{port}", "--to", f"127.0.0.1:{backend}",
        "--daemon", "imapd", "--rules-dir", str(rules_dir), "--log", str(log),
        "--refuse-delay", "0", *(["--proxy-protocol", proxy] if proxy else []),
    ]  # fmt: skip
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        ready = proc.stderr.readline()
        assert ready.startswith("todokede wrap:"), ready + proc.stderr.read()
        yield port
    finally:
        terminate(proc)
        if proc.stderr is not None:
            proc.stderr.close()


def connect(port: int, source: str) -> socket.socket:
    sock = socket.socket()
    sock.settimeout(10)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    return sock


def greeting(port: int, source: str) -> bytes:
    """What a client from ``source`` is greeted with (b"" when refused)."""
    try:
        with connect(port, source) as s:
            data = b""
            while not data.endswith(b"\r\n"):
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            return data
    except (ConnectionResetError, TimeoutError):
        return b""


def fail_login(port: int, source: str, user: str = "tester", password: str = "wrong") -> bytes:
    """One IMAP connection from ``source`` that fails to log in, then logs out."""
    with connect(port, source) as s:
        f = s.makefile("rwb")
        assert f.readline().startswith(b"* OK")
        f.write(f"a1 LOGIN {user} {password}\r\n".encode())
        f.flush()
        answer = f.readline()
        f.write(b"a2 LOGOUT\r\n")
        f.flush()
        while f.readline():
            pass
        f.close()
        return answer
