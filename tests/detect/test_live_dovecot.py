"""An over-long IMAP command against a real Dovecot on loopback, found in its log."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from tests.realservers import dovecot
from todokede.detect import scan_paths

pytestmark = [pytest.mark.peer, pytest.mark.slow]


def test_input_buffer_full_is_an_exploit_attempt(tmp_path: Path) -> None:
    with dovecot(tmp_path) as d:
        with socket.create_connection((d.host, d.port), timeout=10) as s:
            assert s.recv(1000).startswith(b"* OK")
            s.sendall(b"a1 LOGIN " + b"A" * 9000 + b" x\r\n")  # CA-97.09's over-long LOGIN
            assert b"Input buffer full" in s.recv(1000)
        with socket.create_connection((d.host, d.port), timeout=10) as s:
            s.recv(1000)
            s.sendall(f"a1 LOGIN {d.user} {d.password}\r\n".encode())
            assert b"a1 OK" in s.recv(2000)
        assert d.log is not None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and "Login: user=" not in d.log.read_text(
            errors="replace"
        ):
            time.sleep(0.2)
    result = scan_paths([d.log])
    assert result.unparsed == 0, result.unparsed_examples
    found = [(f.kind, f.service, f.sources, f.count) for f in result.findings]
    assert found == [("exploit-attempt", "imap-login", ["127.0.0.1"], 1)]
    assert "Input buffer full" in result.findings[0].evidence[0]
