from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.probes.fakes import Handler, fake_server, readline, send
from tests.realservers import dovecot
from todokede.cli import cli
from todokede.errors import ProbeError
from todokede.probes.imap import parse_id, probe_imap
from todokede.probes.wire import Limits, printable

FAST = Limits(connect=2.0, reply=1.0)


def imap_handler(
    greeting: str,
    answer: Callable[[str, str], list[str]],
    seen: list[str] | None = None,
) -> Handler:
    """A scripted IMAP server: ``answer(tag, command)`` gives the lines to send."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        send(writer, greeting)
        await writer.drain()
        while True:
            line = await readline(reader)
            if seen is not None:
                seen.append(line)
            tag, _, command = line.partition(" ")
            send(writer, *answer(tag, command))
            await writer.drain()
            if command.upper() == "LOGOUT":
                return

    return handle


def imap2bis(tag: str, command: str) -> list[str]:
    # IMAP2bis (RFC 1176 era, e.g. UW imapd of 1996) knows no CAPABILITY, ID or STARTTLS.
    if command.upper() == "LOGOUT":
        return ["* BYE Logging out", f"{tag} OK LOGOUT completed"]
    return [f"{tag} BAD Command unrecognized: {command.split()[0]}"]


OLD_GREETING = (
    "* OK hogehoge.example.co.jp IMAP2bis Service 7.8(100) at Tue, 9 Sep 1997 10:12:45 +0900 (JST)"
)


def test_imap2bis_server_fails_the_advice() -> None:
    seen: list[str] = []
    with fake_server(imap_handler(OLD_GREETING, imap2bis, seen)) as port:
        result = probe_imap("127.0.0.1", port, limits=FAST)
        res = CliRunner().invoke(cli, ["probe", "imap", "127.0.0.1", "-p", str(port), "--json"])
        text = CliRunner().invoke(cli, ["probe", "imap", "127.0.0.1", "-p", str(port)])
    assert not result.imap4rev1
    assert result.protocol == "IMAP2bis"
    assert result.capabilities == []
    assert any("JPCERT/CC 97-0004" in f for f in result.findings)
    assert res.exit_code == 1
    doc = json.loads(res.output)
    assert doc["imap4rev1"] is False and doc["greeting"] == OLD_GREETING
    assert text.exit_code == 1 and "OLD: IMAP2bis" in text.output
    # no exploit traffic: nothing but harmless commands, nothing long
    verbs = {line.split()[1].upper() for line in seen}
    assert verbs <= {"CAPABILITY", "ID", "STARTTLS", "LOGOUT"}
    assert max(len(line) for line in seen) < 40


def test_uw_imap4_without_rev1_fails_the_advice() -> None:
    def answer(tag: str, command: str) -> list[str]:
        if command.upper() == "CAPABILITY":
            return ["* CAPABILITY IMAP4 STATUS SCAN", f"{tag} OK done"]
        return imap2bis(tag, command)

    greeting = "* OK old.example.net IMAP4 Service 8.1(103) at Mon, 1 Sep 1997 09:00:00 +0900"
    with fake_server(imap_handler(greeting, answer)) as port:
        result = probe_imap("127.0.0.1", port, limits=FAST)
    assert result.protocol == "IMAP4" and not result.imap4rev1


def test_old_uw_imapd_banner_is_named() -> None:
    def answer(tag: str, command: str) -> list[str]:
        if command.upper() == "CAPABILITY":
            return ["* CAPABILITY IMAP4 IMAP4REV1 SCAN SORT AUTH=LOGIN", f"{tag} OK"]
        return imap2bis(tag, command)

    greeting = "* OK uw.example.ac.jp IMAP4rev1 v10.190 server ready"
    with fake_server(imap_handler(greeting, answer)) as port:
        result = probe_imap("127.0.0.1", port, limits=FAST)
    assert result.imap4rev1  # by protocol it meets the advice ...
    assert any("CA-97.09" in f for f in result.findings)  # ... but the release is named


def test_imap4rev2_counts_as_or_later() -> None:
    def answer(tag: str, command: str) -> list[str]:
        if command.upper() == "CAPABILITY":
            return ["* CAPABILITY IMAP4rev2 LOGINDISABLED AUTH=SCRAM-SHA-256", f"{tag} OK"]
        if command.upper().startswith("ID"):
            return ['* ID ("name" "Fake \\"Mail\\"" "version" "9.0" "vendor" NIL)', f"{tag} OK"]
        return imap2bis(tag, command)

    with fake_server(imap_handler("* OK ready", answer)) as port:
        result = probe_imap("127.0.0.1", port, limits=FAST, tls="none")
    assert result.imap4rev1 and result.imap4rev2 and result.protocol == "IMAP4rev2"
    assert result.id is None  # ID was not offered, so not asked
    assert not any("clear" in f for f in result.findings)  # LOGINDISABLED


def test_id_and_literals() -> None:
    def answer(tag: str, command: str) -> list[str]:
        if command.upper() == "CAPABILITY":
            return ["* CAPABILITY IMAP4rev1 ID", f"{tag} OK"]
        if command.upper().startswith("ID"):
            return ['* ID ("name" {6}', 'Cyrus! "version" "3.0")', f"{tag} OK"]
        return imap2bis(tag, command)

    with fake_server(imap_handler("* OK ready", answer)) as port:
        result = probe_imap("127.0.0.1", port, limits=FAST)
    assert result.id == {"name": "Cyrus!", "version": "3.0"}
    assert result.server == "Cyrus! 3.0"


@pytest.mark.parametrize(
    ("line", "parsed"),
    [
        ('* ID ("name" "Dovecot")', {"name": "Dovecot"}),
        ("* ID NIL", None),
        ('* ID ("name" "X" "os" NIL)', {"name": "X", "os": None}),
        ('* ID ("support-url" "mailto:a@b" "name")', {"support-url": "mailto:a@b"}),
        ("* ID ()", None),
    ],
)
def test_parse_id(line: str, parsed: dict[str, str | None] | None) -> None:
    assert parse_id(line) == parsed


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_printable_never_lets_control_characters_through(raw: bytes) -> None:
    out = printable(raw)
    assert not any(ord(ch) < 0x20 or ord(ch) == 0x7F or 0x80 <= ord(ch) < 0xA0 for ch in out)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=120))
def test_parse_id_takes_anything(line: str) -> None:
    result = parse_id("* ID " + line)
    assert result is None or all(isinstance(k, str) for k in result)


# --- real Dovecot ---------------------------------------------------------------------


@pytest.mark.peer
def test_dovecot_plain(tmp_path: Path) -> None:
    with dovecot(tmp_path) as server:
        result = probe_imap(server.host, server.port)
        res = CliRunner().invoke(cli, ["probe", "imap", server.host, "-p", str(server.port)])
    assert result.imap4rev1 and result.protocol == "IMAP4rev1"
    assert "IMAP4rev1" in result.capabilities and "ID" in result.capabilities
    assert result.id == {"name": "Dovecot"} and result.server == "Dovecot"
    assert result.capabilities_after_starttls is None
    assert any("STARTTLS" in f for f in result.findings)
    assert res.exit_code == 0 and "ok: IMAP4rev1" in res.output


@pytest.mark.peer
def test_dovecot_starttls_and_imaps(tmp_path: Path) -> None:
    with dovecot(tmp_path, tls=True) as server:
        auto = probe_imap(server.host, server.port)
        required = probe_imap(server.host, server.port, tls="starttls")
        assert server.tls_port is not None
        implicit = probe_imap(server.host, server.tls_port, tls="tls")
        res = CliRunner().invoke(
            cli, ["probe", "imap", server.host, "-p", str(server.tls_port), "--tls", "--json"]
        )
    for result in (auto, required):
        assert "STARTTLS" in result.capabilities
        assert result.capabilities_after_starttls is not None
        assert "IMAP4rev1" in result.capabilities_after_starttls
        assert "STARTTLS" not in result.capabilities_after_starttls
        assert result.tls is not None and result.tls["version"].startswith("TLS")
    assert implicit.imap4rev1 and implicit.tls is not None
    assert res.exit_code == 0 and json.loads(res.output)["tls"]["version"].startswith("TLS")


@pytest.mark.peer
def test_starttls_required_but_not_offered(tmp_path: Path) -> None:
    with dovecot(tmp_path) as server:
        with pytest.raises(ProbeError, match="does not offer STARTTLS"):
            probe_imap(server.host, server.port, tls="starttls")
        res = CliRunner().invoke(
            cli, ["probe", "imap", server.host, "-p", str(server.port), "--starttls"]
        )
    assert res.exit_code == 2 and "could not check" in res.stderr


# --- hostile servers -------------------------------------------------------------------


async def _garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"SSH-2.0-OpenSSH_9.2\r\n")
    await writer.drain()
    await asyncio.sleep(5)


async def _silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(30)


async def _dribble(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    for byte in b"* OK slow IMAP4rev1 server\r\n":
        writer.write(bytes([byte]))
        await writer.drain()
        await asyncio.sleep(0.2)


async def _endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    send(writer, "* OK ready")
    await writer.drain()
    await readline(reader)
    while True:
        writer.write(b"* CAPABILITY IMAP4rev1\r\n")
        await writer.drain()


async def _bye(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    send(writer, "* BYE too many connections")
    await writer.drain()


async def _huge_literal(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    send(writer, "* OK ready")
    await writer.drain()
    tag = (await readline(reader)).split()[0]
    send(writer, "* CAPABILITY {999999999}", f"{tag} OK")
    await writer.drain()
    await asyncio.sleep(5)


async def _untagged_garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    send(writer, "* OK ready")
    await writer.drain()
    await readline(reader)
    send(writer, "<html>500 Internal Server Error</html>")
    await writer.drain()
    await asyncio.sleep(5)


HOSTILE = {
    "garbage greeting": (_garbage, "not an IMAP greeting"),
    "never greets": (_silent, "no greeting"),
    "byte by byte": (_dribble, "no greeting"),
    "endless answer": (_endless, "longer than"),
    "bye": (_bye, "refused the session"),
    "huge literal": (_huge_literal, "longer than"),
    "garbage answer": (_untagged_garbage, "not an IMAP response"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_servers_cannot_be_checked(name: str) -> None:
    handler, message = HOSTILE[name]
    with fake_server(handler) as port:
        started = time.monotonic()
        with pytest.raises(ProbeError, match=message):
            probe_imap("127.0.0.1", port, limits=FAST, total=5)
        assert time.monotonic() - started < 30  # a hang guard, not a speed claim
        res = CliRunner().invoke(
            cli, ["probe", "imap", "127.0.0.1", "-p", str(port), "--timeout", "1", "--json"]
        )
    assert res.exit_code == 2
    assert json.loads(res.stdout)["verdict"] == "could not check"
