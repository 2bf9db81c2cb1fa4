"""The seed's scene today: Dovecot IMAP behind `todokede wrap`. A client from an allowed
loopback address gets Dovecot's greeting (and can log in); one from a denied address is
refused; the log lines are tcpd's, byte for byte (timestamps and pids aside)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.realservers import dovecot
from tests.wrap.harness import Running, connect, read_all, read_until, rules
from todokede.wrap.listener import WrapConfig

pytestmark = pytest.mark.usefixtures("event_loop_kind")


@pytest.mark.peer
def test_dovecot_behind_the_wrapper(tmp_path: Path) -> None:
    rd = rules(tmp_path / "rules", "imapd: 127.0.0.1\n", "ALL: ALL\n")
    with dovecot(tmp_path) as imap:

        def make(_unused: int) -> WrapConfig:
            return WrapConfig(
                backend=(imap.host, imap.port),
                daemon="imapd",
                rules_dir=rd,
                listen=[("127.0.0.1", 0)],
                refuse_delay=0.1,
            )

        with Running(make, backend=False) as run:
            with connect(run.port, "127.0.0.1") as s:
                greeting = read_until(s, b"\r\n")
                assert greeting.startswith(b"* OK ") and b"Dovecot ready." in greeting
                s.sendall(f"a1 LOGIN {imap.user} {imap.password}\r\n".encode())
                assert b"a1 OK" in read_until(s, b"\r\n")
                s.sendall(b"a2 LOGOUT\r\n")
                assert b"a2 OK" in read_all(s)
            with connect(run.port, "127.0.0.2") as s:
                assert read_all(s) == b""
            run.log.wait_for("refused")
            assert run.log.normalised() == [
                "<30>TS imapd[PID]: connect from 127.0.0.1 (127.0.0.1)",
                "<28>TS imapd[PID]: refused connect from 127.0.0.2 (127.0.0.2)",
            ]
