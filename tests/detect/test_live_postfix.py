"""Logs made by driving a real Postfix on loopback, then scanned."""

from __future__ import annotations

import contextlib
import smtplib
import time
from pathlib import Path

import pytest

from tests.realservers import postfix
from todokede.detect import DetectConfig, scan_paths

pytestmark = [pytest.mark.peer, pytest.mark.slow]
SITE = DetectConfig(local_nets=(), local_domains=("sandbox.example",))
RELAY_TRIES = 6


def wait_for(log: Path, needle: str, count: int, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace") if log.exists() else ""
        if text.count(needle) >= count:
            return text
        time.sleep(0.2)
    raise AssertionError(f"{needle!r} x{count} not in maillog after {timeout}s:\n{text[-2000:]}")


def traffic(host: str, port: int) -> None:
    with smtplib.SMTP(host, port, timeout=10) as s:
        s.ehlo("client.example")
        s.sendmail(
            "friend@remote.example", ["root@sandbox.example"], b"Subject: hi\r\n\r\nlocal\r\n"
        )
    with smtplib.SMTP(host, port, timeout=10) as s:
        s.ehlo("client.example")
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            s.sendmail("x@spam.example", ["nosuchuser@sandbox.example"], b"Subject: x\r\n\r\nx\r\n")
    for i in range(RELAY_TRIES):  # reconnect: Postfix slows down sessions with many errors
        with smtplib.SMTP(host, port, timeout=10) as s:
            s.ehlo("spambot.example")
            with contextlib.suppress(smtplib.SMTPRecipientsRefused):  # refused when closed
                s.sendmail(
                    "promo@spam.example",
                    [f"victim{i}@remote.example"],
                    b"Subject: buy\r\n\r\nspam\r\n",
                )


def test_closed_relay_refusals_are_found(tmp_path: Path) -> None:
    with postfix(tmp_path, "closed") as pf:
        traffic(pf.host, pf.port)
        wait_for(pf.maillog, "Relay access denied", RELAY_TRIES)
        wait_for(pf.maillog, "status=sent (delivered to mailbox)", 1)
    result = scan_paths([pf.maillog], config=SITE)
    assert result.unparsed == 0
    found = [(f.kind, f.outcome, f.count, f.sources) for f in result.findings]
    assert found == [("relay-abuse", "refused", RELAY_TRIES, ["localhost", "127.0.0.1"])]
    assert set(result.findings[0].targets) == {"remote.example"}


def test_open_relay_is_found(tmp_path: Path) -> None:
    with postfix(tmp_path, "open") as pf:
        traffic(pf.host, pf.port)
        wait_for(pf.maillog, "relay=none", RELAY_TRIES)  # discard(8) "delivered" the relayed mail
    result = scan_paths([pf.maillog], config=SITE)
    assert result.unparsed == 0
    relayed = [f for f in result.findings if f.kind == "relay-abuse"]
    assert [(f.outcome, f.count) for f in relayed] == [("relayed", RELAY_TRIES)]
    assert relayed[0].details["senders"] == ["promo@spam.example"]
    assert relayed[0].to_dict()["first_seen"][:4].isdigit()
