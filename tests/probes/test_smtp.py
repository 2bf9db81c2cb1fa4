from __future__ import annotations

import asyncio
import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from todokede.errors import ProbeError
from todokede.probes.imap import _Client
from todokede.probes.smtp import Reply, read_reply
from todokede.probes.wire import MAX_LINE, Connection, Limits


def connection(data: bytes) -> Connection:
    """A connection whose server has already sent ``data`` and hung up."""
    reader = asyncio.StreamReader(limit=MAX_LINE)
    reader.feed_data(data)
    reader.feed_eof()
    return Connection(reader, None, "192.0.2.1", 25, Limits(1, 1))  # type: ignore[arg-type]  # reads only


def reply_of(data: bytes) -> Reply:
    async def run() -> Reply:
        return await read_reply(connection(data))  # the reader must belong to this loop

    return asyncio.run(run())


@pytest.mark.parametrize(
    ("data", "code", "lines"),
    [
        (b"220 mx.example.jp ESMTP\r\n", 220, ("mx.example.jp ESMTP",)),
        (b"250-mx\r\n250-PIPELINING\r\n250 8BITMIME\r\n", 250, ("mx", "PIPELINING", "8BITMIME")),
        (b"554\r\n", 554, ("",)),
        (b"250 ok\n", 250, ("ok",)),  # bare LF, as some old servers send
        (b"550 \xe6\x97\xa5\xe6\x9c\xac\r\n", 550, ("日本",)),
        (b"550 \x1b[31mred\r\n", 550, ("\\x1b[31mred",)),
        (b"550 \xff\xfe\r\n", 550, ("\\xff\\xfe",)),
    ],
)
def test_replies(data: bytes, code: int, lines: tuple[str, ...]) -> None:
    reply = reply_of(data)
    assert (reply.code, reply.lines) == (code, lines)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "closed the connection"),
        (b"220 no line end", "mid-line"),
        (b"hello\r\n", "not an SMTP reply"),
        (b"2200 x\r\n", "not an SMTP reply"),
        (b"150 x\r\n", "not an SMTP reply"),
        (b"220-a\r\n221 b\r\n", "changes its code"),
        (b"220-a\r\n" * 300, "longer than 200 lines"),
        (b"220 " + b"x" * (MAX_LINE + 10) + b"\r\n", "longer than"),
    ],
)
def test_bad_replies(data: bytes, message: str) -> None:
    with pytest.raises(ProbeError, match=message):
        reply_of(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_give_a_reply_or_probe_error(data: bytes) -> None:
    try:
        reply = reply_of(data)
    except ProbeError:
        return
    assert 200 <= reply.code <= 599
    assert all(ch >= " " for line in reply.lines for ch in line)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_give_an_imap_answer_or_probe_error(data: bytes) -> None:
    async def run() -> None:
        client = _Client(connection(data))
        client.n = 1
        response = await client._response("t1")
        assert response.status in ("OK", "NO", "BAD")

    with contextlib.suppress(ProbeError):
        asyncio.run(run())
