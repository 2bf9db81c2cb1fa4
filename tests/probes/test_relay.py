from __future__ import annotations

import asyncio
import json
import re
import subprocess
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import need
from tests.probes.fakes import fake_server, readline, send, smtp_handler
from tests.realservers import PostfixServer, postfix
from todokede.cli import cli
from todokede.errors import InputError, ProbeError
from todokede.probes.relay import battery, classify, parent_domain, probe_relay
from todokede.probes.smtp import Reply
from todokede.probes.wire import Limits

FAST = Limits(connect=2.0, reply=1.0)

# nmap 7.93 smtp-open-relay.nse, with ip=192.0.2.25, srvname=mx.example.net,
# domain=nmap.scanme.org, from=antispam, to=relaytest.
NMAP_PAIRS = [
    ("<>", "<relaytest@nmap.scanme.org>"),
    ("<antispam@nmap.scanme.org>", "<relaytest@nmap.scanme.org>"),
    ("<antispam@mx.example.net>", "<relaytest@nmap.scanme.org>"),
    ("<antispam@[192.0.2.25]>", "<relaytest@nmap.scanme.org>"),
    ("<antispam@[192.0.2.25]>", "<relaytest%nmap.scanme.org@[192.0.2.25]>"),
    ("<antispam@[192.0.2.25]>", "<relaytest%nmap.scanme.org@mx.example.net>"),
    ("<antispam@[192.0.2.25]>", '<"relaytest@nmap.scanme.org">'),
    ("<antispam@[192.0.2.25]>", '<"relaytest%nmap.scanme.org">'),
    ("<antispam@[192.0.2.25]>", "<relaytest@nmap.scanme.org@[192.0.2.25]>"),
    ("<antispam@[192.0.2.25]>", '<"relaytest@nmap.scanme.org"@[192.0.2.25]>'),
    ("<antispam@[192.0.2.25]>", "<relaytest@nmap.scanme.org@mx.example.net>"),
    ("<antispam@[192.0.2.25]>", "<@[192.0.2.25]:relaytest@nmap.scanme.org>"),
    ("<antispam@[192.0.2.25]>", "<@mx.example.net:relaytest@nmap.scanme.org>"),
    ("<antispam@[192.0.2.25]>", "<nmap.scanme.org!relaytest>"),
    ("<antispam@[192.0.2.25]>", "<nmap.scanme.org!relaytest@[192.0.2.25]>"),
    ("<antispam@[192.0.2.25]>", "<nmap.scanme.org!relaytest@mx.example.net>"),
]


def test_battery_starts_with_nmaps_sixteen_pairs() -> None:
    tests = battery("192.0.2.25", "mx.example.net", to_domain="nmap.scanme.org")
    assert [(t.mail_from, t.rcpt_to) for t in tests[:16]] == NMAP_PAIRS
    assert [t.id for t in tests[:16]] == [f"nmap-{i}" for i in range(1, 17)]


def test_battery_adds_the_classic_tricks_without_repeats() -> None:
    tests = battery("192.0.2.25", "mx.example.net", to_domain="example.com")
    classic = tests[16:]
    pairs = [(t.mail_from, t.rcpt_to) for t in tests]
    assert len(pairs) == len(set(pairs))
    assert len(classic) >= 15
    senders = {t.mail_from for t in classic}
    # spoofed sender in the target's own domain, localhost, unqualified
    assert {"<antispam@example.net>", "<spamtest@localhost>", "<antispam>"} <= senders
    rcpts = " ".join(t.rcpt_to for t in classic)
    for trick in (
        "%example.com@example.net",
        '"relaytest@example.com"@',
        "!relaytest@",
        "@example.net:",
    ):
        assert trick in rcpts, trick
    assert not any("DATA" in t.mail_from + t.rcpt_to for t in tests)


def test_battery_from_domain_and_missing_banner_host() -> None:
    tests = battery("2001:db8::25", None, to_domain="to.example", from_domain="from.example")
    assert tests[2].mail_from == "<antispam@[IPv6:2001:db8::25]>"  # no name: the address
    assert any(t.mail_from == "<antispam@from.example>" for t in tests)
    assert all("None" not in t.rcpt_to + t.mail_from for t in tests)


@pytest.mark.parametrize(
    ("host", "parent"),
    [("mx.example.co.jp", "example.co.jp"), ("mail.example.net", "example.net"),
     ("example.net", None), (None, None), ("[192.0.2.1]", None)],
)  # fmt: skip
def test_parent_domain(host: str | None, parent: str | None) -> None:
    assert parent_domain(host) == parent


@pytest.mark.parametrize(
    ("code", "text", "outcome"),
    [
        (250, "2.1.5 Ok", "accepted"),
        (251, "User not local; will forward", "accepted"),
        (554, "5.7.1 <x@y>: Relay access denied", "refused"),
        (550, "5.7.1 <x@y>... Relaying denied", "refused"),
        (450, "4.1.2 <x@y>: Recipient address rejected: Domain not found", "inconclusive"),
        (556, "5.1.10 <x@y>: Domain y does not accept mail (nullMX)", "inconclusive"),
        (451, "4.7.1 Greylisted", "inconclusive"),
    ],
)
def test_classify(code: int, text: str, outcome: str) -> None:
    assert classify(Reply(code, (text,))) == outcome


# --- real Postfix --------------------------------------------------------------------


@pytest.mark.peer
def test_closed_postfix_is_closed(closed_postfix: PostfixServer) -> None:
    result = probe_relay(closed_postfix.host, closed_postfix.port)
    assert result.verdict == "closed" and not result.open
    assert len(result.tests) > 30
    assert all(t.outcome == "refused" for t in result.tests)
    assert all("Relay access denied" in t.reply for t in result.tests if t.stage == "rcpt")
    assert result.software == "Postfix"
    # kept under Postfix's error limit: no session was slowed down or dropped
    time.sleep(0.3)
    log = closed_postfix.maillog.read_text()
    assert "too many errors" not in log
    assert log.count("Relay access denied") >= len(result.tests)
    assert not re.search(r"data=\d", log), "DATA must never be sent"


@pytest.mark.peer
def test_open_postfix_is_open_and_nothing_is_queued(open_postfix: PostfixServer) -> None:
    result = probe_relay(open_postfix.host, open_postfix.port)
    assert result.verdict == "open"
    assert all(t.accepted for t in result.tests)
    assert result.to_dict()["nmap_accepted"] == 16
    time.sleep(0.3)
    log = open_postfix.maillog.read_text()
    assert "message-id" not in log and not re.search(r"data=\d", log)


@pytest.mark.peer
def test_relay_json_and_exit_status(
    closed_postfix: PostfixServer, open_postfix: PostfixServer
) -> None:
    runner = CliRunner()
    for server, status in ((closed_postfix, 0), (open_postfix, 1)):
        res = runner.invoke(
            cli, ["probe", "relay", server.host, "--port", str(server.port), "--json"]
        )
        assert res.exit_code == status, res.output
        doc = json.loads(res.output)
        assert doc["open"] is bool(status)
        assert {"mail_from", "rcpt_to", "accepted", "reply"} <= set(doc["tests"][0])
        assert doc["tests"][0]["mail_from"] == "<>"


@pytest.mark.peer
def test_relay_text_says_what_to_change(open_postfix: PostfixServer) -> None:
    res = CliRunner().invoke(
        cli, ["probe", "relay", open_postfix.host, "-p", str(open_postfix.port)]
    )
    assert res.exit_code == 1
    assert "OPEN RELAY" in res.output
    assert "Postfix detected" in res.output
    assert "reject_unauth_destination" in res.output  # Postfix
    assert "promiscuous_relay" in res.output  # sendmail
    assert "relay_from_hosts" in res.output  # Exim


@pytest.mark.peer
def test_starttls_battery(tmp_path: Path) -> None:
    with postfix(tmp_path, "open", tls=True) as server:
        result = probe_relay(server.host, server.port, starttls=True)
    assert result.verdict == "open"
    assert result.tls is not None and result.tls["version"].startswith("TLS")


@pytest.mark.peer
def test_starttls_required_but_not_offered(closed_postfix: PostfixServer) -> None:
    with pytest.raises(ProbeError, match="STARTTLS"):
        probe_relay(closed_postfix.host, closed_postfix.port, starttls=True, limits=FAST)


def _nmap_verdict(server: PostfixServer) -> str:
    out = subprocess.run(
        ["nmap", "-n", "-Pn", "-p", str(server.port), "--script", "+smtp-open-relay",
         "--script-args", "smtp-open-relay.domain=example.com", server.host],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    m = re.search(r"smtp-open-relay: (.*)", out)
    assert m, out
    return m.group(1)


@pytest.mark.peer
@pytest.mark.slow
def test_verdicts_agree_with_nmap(
    closed_postfix: PostfixServer, open_postfix: PostfixServer
) -> None:
    need("nmap")
    for server in (closed_postfix, open_postfix):
        ours = probe_relay(server.host, server.port)
        theirs = _nmap_verdict(server)
        assert ours.open == ("is an open relay" in theirs), theirs
        if ours.open:
            assert f"({ours.to_dict()['nmap_accepted']}/16 tests)" in theirs


# --- scripted servers ------------------------------------------------------------------


def test_reconnects_when_the_server_drops_sessions() -> None:
    handler = smtp_handler(lambda f, t: "554 5.7.1 Relay access denied", drop_after=3)
    with fake_server(handler) as port:
        result = probe_relay("127.0.0.1", port, limits=FAST, total=20)
    assert result.verdict == "closed"
    assert all(t.code == 554 for t in result.tests)  # every dropped test was run again
    assert result.connections >= len(result.tests) // 2


def test_gives_up_on_a_server_that_always_drops() -> None:
    handler = smtp_handler(lambda f, t: "554 5.7.1 Relay access denied", drop_after=1)
    with fake_server(handler) as port, pytest.raises(ProbeError, match="keeps closing"):
        probe_relay("127.0.0.1", port, limits=FAST, total=20)


def test_only_one_trick_accepted_is_still_open() -> None:
    def rcpt(mail_from: str, rcpt_to: str) -> str:
        return "250 2.1.5 Ok" if "!" in rcpt_to else "550 5.7.1 Relaying denied"

    with fake_server(smtp_handler(rcpt)) as port:
        result = probe_relay("127.0.0.1", port, limits=FAST)
    assert result.verdict == "open"
    assert {t.test.technique for t in result.tests if t.accepted} >= {"bang path"}
    assert all("!" in t.test.rcpt_to for t in result.tests if t.accepted)


def test_an_open_relay_that_then_misbehaves_is_still_open() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        send(writer, "220 flaky.example.net ESMTP")
        await writer.drain()
        while True:
            line = await readline(reader)
            if line.startswith("RCPT") and "!" in line:
                writer.write(b"\x00garbage\r\n")  # falls over on bang paths
            else:
                send(writer, "221 bye" if line.startswith("QUIT") else "250 ok")
            await writer.drain()

    with fake_server(handler) as port:
        result = probe_relay("127.0.0.1", port, limits=FAST, concurrency=1)
    assert result.verdict == "open"
    assert 0 < len(result.tests) < 36
    assert result.warnings and "not an SMTP reply" in result.warnings[0]


def test_multi_line_replies_are_read_whole() -> None:
    handler = smtp_handler(
        lambda f, t: "550 5.7.1 Relaying denied",
        greeting=("220-fake.example.net ESMTP", "220-no UCE", "220 welcome"),
        ehlo=("250-fake.example.net", *(f"250-X-EXT{i}" for i in range(30)), "250 SIZE"),
    )
    with fake_server(handler) as port:
        result = probe_relay("127.0.0.1", port, limits=FAST)
    assert result.verdict == "closed"
    assert result.banner.startswith("220 fake.example.net ESMTP / no UCE / welcome")
    assert any(t.test.rcpt_to.endswith("@fake.example.net>") for t in result.tests)


def test_temporary_failures_are_inconclusive() -> None:
    handler = smtp_handler(
        lambda f, t: "450 4.1.2 <x>: Recipient address rejected: Domain not found"
    )
    with fake_server(handler) as port:
        result = probe_relay("127.0.0.1", port, limits=FAST)
        res = CliRunner().invoke(
            cli, ["probe", "relay", "127.0.0.1", "-p", str(port), "--timeout", "1"]
        )
    assert result.verdict == "inconclusive" and not result.open
    assert result.warnings and "--to-domain" in result.warnings[0]
    assert res.exit_code == 2, res.output


def test_terminal_escapes_in_replies_are_neutralised() -> None:
    handler = smtp_handler(lambda f, t: "550 \x1b[2J\x1b]0;pwned\x07 denied")
    with fake_server(handler) as port:
        result = probe_relay("127.0.0.1", port, limits=FAST)
        res = CliRunner().invoke(cli, ["probe", "relay", "127.0.0.1", "-p", str(port), "-v"])
    assert "\x1b" not in result.tests[0].reply and "\\x1b[2J" in result.tests[0].reply
    assert "\x1b" not in res.output and "\x07" not in res.output


async def _garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"\x00\xff\xfeHELLO THERE\r\n")
    await writer.drain()
    await asyncio.sleep(5)


async def _garbage_after_ehlo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    send(writer, "220 fake.example.net ESMTP")
    await writer.drain()
    await readline(reader)
    writer.write(b"HTTP/1.0 400 Bad Request\r\n\r\n")
    await writer.drain()
    await asyncio.sleep(5)


async def _silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(30)


async def _endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:  # a multi-line greeting that never ends
        writer.write(b"220-still greeting you\r\n")
        await writer.drain()


async def _dribble(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    for byte in b"220 slow.example.net ESMTP very slowly\r\n":
        writer.write(bytes([byte]))
        await writer.drain()
        await asyncio.sleep(0.2)


async def _hangup(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.close()


async def _refuses(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    send(writer, "554 5.7.1 go away")
    await writer.drain()
    await asyncio.sleep(5)


async def _long_line(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"220 " + b"A" * 100_000)
    await writer.drain()
    await asyncio.sleep(5)


async def _code_change(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    send(writer, "220-fake.example.net", "250 surprise")
    await writer.drain()
    await asyncio.sleep(5)


HOSTILE = {
    "garbage": (_garbage, "not an SMTP reply"),
    "garbage after EHLO": (_garbage_after_ehlo, "not an SMTP reply"),
    "never answers": (_silent, "no complete reply"),
    "endless multi-line": (_endless, "longer than"),
    "byte by byte": (_dribble, "no complete reply"),
    "hangs up": (_hangup, "closed the connection"),
    "refuses": (_refuses, "refused the session"),
    "overlong line": (_long_line, "longer than"),
    "code changes mid-reply": (_code_change, "changes its code"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_servers_cannot_be_checked(name: str) -> None:
    handler, message = HOSTILE[name]
    with fake_server(handler) as port:
        started = time.monotonic()
        with pytest.raises(ProbeError, match=message):
            probe_relay("127.0.0.1", port, limits=FAST, total=5)
        assert time.monotonic() - started < 30  # a hang guard, not a speed claim
        res = CliRunner().invoke(
            cli, ["probe", "relay", "127.0.0.1", "-p", str(port), "--timeout", "1", "--json"]
        )
    assert res.exit_code == 2
    assert json.loads(res.stdout)["verdict"] == "could not check"
    assert "could not check" in res.stderr


def test_total_timeout_bounds_a_slow_but_steady_server() -> None:
    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        send(writer, "220 slow.example.net ESMTP")
        await writer.drain()
        while True:
            line = await readline(reader)
            await asyncio.sleep(0.4)  # each reply in time, the whole battery not
            if line.startswith("RCPT"):
                send(writer, "554 5.7.1 Relay access denied")
            else:
                send(writer, "221 bye" if line.startswith("QUIT") else "250 ok")
            await writer.drain()

    with fake_server(slow) as port:
        started = time.monotonic()
        with pytest.raises(ProbeError, match="did not finish within 2 s"):
            probe_relay("127.0.0.1", port, limits=FAST, total=2)
        assert time.monotonic() - started < 30  # a hang guard, not a speed claim


def test_nothing_listening() -> None:
    with fake_server(_hangup) as port:
        pass  # the port is free again
    with pytest.raises(ProbeError, match="cannot connect"):
        probe_relay("127.0.0.1", port, limits=FAST)


@pytest.mark.parametrize(
    "domain",
    ["x>\r\nDATA", "example.com> NOTIFY=NEVER", "", "-bad.example", "a b.example", "nodot"],
)
def test_test_domains_must_be_domain_names(domain: str) -> None:
    with pytest.raises(InputError, match="not a domain name"):
        battery("192.0.2.1", None, to_domain=domain)
    res = CliRunner().invoke(cli, ["probe", "relay", "127.0.0.1", "--from-domain", domain])
    assert res.exit_code == 2 and "not a domain name" in res.output


def test_cli_needs_host_or_config() -> None:
    res = CliRunner().invoke(cli, ["probe", "relay"])
    assert res.exit_code == 2 and "HOST" in res.output
