"""A small SMTP listener for reports by e-mail (RFC 5321, the subset a mail client or a
relaying MTA uses: EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, VRFY, HELP, QUIT).

Bounded everywhere: message size (SIZE is announced, and enforced while reading DATA),
line length, recipients per message, commands per connection, and an idle timeout per
read. Each accepted message is handed to ``deliver`` (in a worker thread, as the store is
synchronous) before the 250 reply, so a 250 means the report is stored; if ``deliver``
fails the client gets a 451 and will retry: no mail is lost. It listens on loopback
unless told otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime

from todokede.center.intake.mailin import MAX_MESSAGE

MAX_LINE = 2048  # RFC 5321 says 1000 for text lines; be a little lenient
MAX_RECIPIENTS = 100
MAX_COMMANDS = 1000
MAX_CLIENTS = 64  # connections served at once; more are told to come back later
TIMEOUT = 60.0  # seconds of silence before the connection is closed
SESSION_LIMIT = 600.0  # seconds one connection may last, however busy
_ADDR = re.compile(r"^\s*<(?P<addr>[^<>\s]*)>(?P<params>.*)$")


@dataclass
class Envelope:
    peer: str
    helo: str = ""
    mail_from: str | None = None
    rcpt_to: list[str] = field(default_factory=list)


Deliver = Callable[[bytes, Envelope], str]  # returns a short id for the 250 reply


class _Reject(Exception):
    pass


class SMTPIntake:
    """``await start()`` listens; ``port`` is the bound port (use port 0 for a free one)."""

    def __init__(
        self,
        deliver: Deliver,
        *,
        host: str = "127.0.0.1",
        port: int = 2525,
        hostname: str = "todokede.invalid",
        max_size: int = MAX_MESSAGE,
        timeout: float = TIMEOUT,
        max_clients: int = MAX_CLIENTS,
        session_limit: float = SESSION_LIMIT,
    ) -> None:
        self.deliver = deliver
        self.host = host
        self.port = port
        self.hostname = hostname
        self.max_size = max_size
        self.timeout = timeout
        self.max_clients = max_clients
        self.session_limit = session_limit
        self._server: asyncio.AbstractServer | None = None
        self._clients = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._session, self.host, self.port, limit=MAX_LINE + 2
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def serve_forever(self) -> None:
        if self._server is None:
            await self.start()
        assert self._server is not None
        await self._server.serve_forever()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    # -- one connection ------------------------------------------------------------------

    async def _line(self, reader: asyncio.StreamReader) -> bytes:
        try:
            return await asyncio.wait_for(reader.readuntil(b"\n"), self.timeout)
        except asyncio.LimitOverrunError:
            raise _Reject("500 5.5.2 line too long") from None
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                return exc.partial
            raise ConnectionResetError from None

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._clients >= self.max_clients:
            writer.write(b"421 4.7.0 too many connections, try again later\r\n")
            with contextlib.suppress(ConnectionError):
                await writer.drain()
            writer.close()
            return
        self._clients += 1
        try:
            async with asyncio.timeout(self.session_limit):
                await self._converse(reader, writer)
        except TimeoutError:
            pass  # the session limit: the connection is closed below
        finally:
            self._clients -= 1
            writer.close()
            with contextlib.suppress(ConnectionError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), 5)

    async def _converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        env = Envelope(peer=str(peer[0]) if peer else "unknown")

        async def reply(text: str) -> None:
            writer.write(text.encode("ascii", "replace") + b"\r\n")
            await writer.drain()

        try:
            await reply(f"220 {self.hostname} todokede ESMTP report intake")
            for _ in range(MAX_COMMANDS):
                try:
                    line = await self._line(reader)
                except _Reject as exc:
                    await reply(str(exc))
                    break
                command = line.decode("ascii", "replace").rstrip("\r\n")
                verb, _, arg = command.partition(" ")
                verb = verb.upper()
                if verb == "QUIT":
                    await reply("221 2.0.0 bye")
                    break
                if verb in ("EHLO", "HELO"):
                    env = Envelope(peer=env.peer, helo=arg.strip()[:255])
                    if verb == "HELO":
                        await reply(f"250 {self.hostname}")
                    else:
                        await reply(f"250-{self.hostname}")
                        await reply(f"250-SIZE {self.max_size}")
                        await reply("250-8BITMIME")
                        await reply("250 PIPELINING")
                elif verb == "MAIL":
                    await reply(self._mail(env, arg))
                elif verb == "RCPT":
                    await reply(self._rcpt(env, arg))
                elif verb == "DATA":
                    if env.mail_from is None or not env.rcpt_to:
                        await reply("503 5.5.1 need MAIL and RCPT first")
                        continue
                    await reply("354 end data with <CR><LF>.<CR><LF>")
                    await reply(await self._data(reader, env))
                    env = Envelope(peer=env.peer, helo=env.helo)
                elif verb == "RSET":
                    env = Envelope(peer=env.peer, helo=env.helo)
                    await reply("250 2.0.0 ok")
                elif verb == "NOOP":
                    await reply("250 2.0.0 ok")
                elif verb == "VRFY":
                    await reply("252 2.5.2 cannot verify, send some mail")
                elif verb == "HELP":
                    await reply("214 2.0.0 EHLO HELO MAIL RCPT DATA RSET NOOP VRFY QUIT")
                else:
                    await reply("502 5.5.2 command not recognised")
            else:
                await reply("421 4.7.0 too many commands, closing")
        except (TimeoutError, ConnectionError):
            with contextlib.suppress(ConnectionError, RuntimeError):
                await reply("421 4.4.2 timeout, closing")

    def _mail(self, env: Envelope, arg: str) -> str:
        if env.mail_from is not None:
            return "503 5.5.1 nested MAIL command"
        if not arg.upper().startswith("FROM:"):
            return "501 5.5.4 syntax: MAIL FROM:<address>"
        m = _ADDR.match(arg[5:])
        if not m:
            return "501 5.1.7 bad sender address syntax"
        for param in m.group("params").split():
            name, _, value = param.partition("=")
            if name.upper() == "SIZE" and value.isdigit() and int(value) > self.max_size:
                return f"552 5.3.4 message size exceeds {self.max_size} bytes"
        env.mail_from = m.group("addr")[:300]
        return "250 2.1.0 ok"

    def _rcpt(self, env: Envelope, arg: str) -> str:
        if env.mail_from is None:
            return "503 5.5.1 need MAIL first"
        if not arg.upper().startswith("TO:"):
            return "501 5.5.4 syntax: RCPT TO:<address>"
        m = _ADDR.match(arg[3:])
        if not m or not m.group("addr"):
            return "501 5.1.3 bad recipient address syntax"
        if len(env.rcpt_to) >= MAX_RECIPIENTS:
            return "452 4.5.3 too many recipients"
        env.rcpt_to.append(m.group("addr")[:300])
        return "250 2.1.5 ok"

    async def _data(self, reader: asyncio.StreamReader, env: Envelope) -> str:
        chunks: list[bytes] = []
        size = 0
        too_big = too_long = False
        while True:
            try:
                line = await asyncio.wait_for(reader.readuntil(b"\n"), self.timeout)
            except asyncio.LimitOverrunError as exc:
                # An over-long line: take it in pieces, the message is refused anyway.
                await reader.readexactly(exc.consumed)
                too_long = True
                continue
            except asyncio.IncompleteReadError:
                raise ConnectionResetError from None
            if line in (b".\r\n", b".\n"):
                break
            if line.startswith(b"."):
                line = line[1:]  # dot-stuffing (RFC 5321 section 4.5.2)
            size += len(line)
            if size > self.max_size:
                too_big = True
                chunks.clear()
            elif not too_big:
                chunks.append(line)
        if too_big:
            return f"552 5.3.4 message size exceeds {self.max_size} bytes"
        if too_long:
            return "500 5.5.2 line too long"
        stamp = format_datetime(datetime.now(UTC))
        trace = (
            f"Received: from {env.helo or 'unknown'} ([{env.peer}])\r\n"
            f"\tby {self.hostname} (todokede) for <{env.rcpt_to[0]}>; {stamp}\r\n"
        ).encode("ascii", "replace")
        raw = trace + b"".join(chunks)
        try:
            ident = await asyncio.to_thread(self.deliver, raw, env)
        except Exception as exc:  # the sender must retry: report the failure, keep serving
            return f"451 4.3.0 not stored, try again later ({type(exc).__name__})"
        return f"250 2.0.0 ok: {ident}"


class Running:
    """An SMTPIntake served on its own event loop in a background thread (for the CLI's
    foreground loop and for tests): ``with Running(intake) as r: ... r.port``."""

    def __init__(self, intake: SMTPIntake) -> None:
        self.intake = intake
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def port(self) -> int:
        return self.intake.port

    def __enter__(self) -> Running:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.intake.start(), self._loop).result(timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.intake.close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT``, ``[V6]:PORT``, ``:PORT`` or ``PORT`` (loopback when no host)."""
    host, _, port = value.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"not HOST:PORT: {value!r}")
    return host, int(port)
