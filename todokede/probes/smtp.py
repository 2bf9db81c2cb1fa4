"""Just enough of an SMTP client for relay testing: greeting, EHLO/HELO, STARTTLS, MAIL,
RCPT, RSET, QUIT. It never sends DATA. Every reply is read within ``Limits.reply``."""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass

from todokede.errors import ProbeError
from todokede.probes.wire import MAX_REPLY_LINES, Connection, Limits, printable, within

_REPLY_LINE = re.compile(rb"^([2-5][0-9][0-9])([ -]|$)")
_HOSTNAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?")


@dataclass(frozen=True)
class Reply:
    code: int
    lines: tuple[str, ...]  # text after the code, printable

    @property
    def ok(self) -> bool:
        return 200 <= self.code < 300

    @property
    def text(self) -> str:
        """The reply as one line, e.g. ``554 5.7.1 <x@y>: Relay access denied``."""
        return f"{self.code} " + " / ".join(line for line in self.lines if line)


class SMTPSession:
    """One SMTP connection. Create with :meth:`open`, which reads the greeting."""

    def __init__(self, conn: Connection, greeting: Reply) -> None:
        self.conn = conn
        self.greeting = greeting
        self.extensions: set[str] = set()
        self.ehlo_lines: tuple[str, ...] = ()
        self.closed = False

    @classmethod
    async def open(cls, host: str, port: int, limits: Limits, *, tls: bool = False) -> SMTPSession:
        conn = await Connection.open(host, port, limits, tls=tls)
        try:
            greeting = await read_reply(conn)
        except BaseException:
            await conn.close()
            raise
        session = cls(conn, greeting)
        if greeting.code != 220:
            await session.close()
            raise ProbeError(f"{conn.where}: server refused the session: {greeting.text}")
        return session

    @property
    def banner_host(self) -> str | None:
        """The name the server calls itself: the first word of its greeting, else of its
        EHLO reply (as nmap's smtp-open-relay takes it)."""
        for line in (self.greeting.lines[:1], self.ehlo_lines[:1]):
            words = line[0].split() if line else []
            if words and _HOSTNAME.fullmatch(words[0]):
                return words[0]
        return None

    async def command(self, line: str) -> Reply:
        await self.conn.send(line)
        reply = await read_reply(self.conn)
        if reply.code == 421:
            self.closed = True  # the server is closing the session
        return reply

    async def hello(self, name: str) -> Reply:
        reply = await self.command(f"EHLO {name}")
        if reply.ok:
            self.ehlo_lines = reply.lines
            self.extensions = {line.split()[0].upper() for line in reply.lines[1:] if line}
            return reply
        if self.closed:
            raise ProbeError(f"{self.conn.where}: EHLO refused: {reply.text}")
        reply = await self.command(f"HELO {name}")
        if not reply.ok:
            raise ProbeError(f"{self.conn.where}: HELO refused: {reply.text}")
        return reply

    async def starttls(self, name: str) -> None:
        if "STARTTLS" not in self.extensions:
            raise ProbeError(f"{self.conn.where}: server does not offer STARTTLS")
        reply = await self.command("STARTTLS")
        if reply.code != 220:
            raise ProbeError(f"{self.conn.where}: STARTTLS refused: {reply.text}")
        await self.conn.start_tls()
        await self.hello(name)  # RFC 3207: forget what was said before TLS

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            with contextlib.suppress(ProbeError, TimeoutError):  # QUIT is a courtesy
                await within(self.command("QUIT"), 2.0)
        await self.conn.close()


async def read_reply(conn: Connection) -> Reply:
    """Read one complete (possibly multi-line) reply within the reply time limit."""
    try:
        return await within(_read_reply(conn), conn.limits.reply)
    except TimeoutError:
        raise ProbeError(
            f"{conn.where}: no complete reply within {conn.limits.reply:g} s"
        ) from None


async def _read_reply(conn: Connection) -> Reply:
    code: bytes | None = None
    lines: list[str] = []
    while True:
        raw = await conn.readline()
        m = _REPLY_LINE.match(raw)
        if m is None:
            raise ProbeError(f"{conn.where}: not an SMTP reply: {printable(raw[:200])!r}")
        if code is not None and m.group(1) != code:
            raise ProbeError(
                f"{conn.where}: multi-line reply changes its code: {printable(raw[:200])!r}"
            )
        code = m.group(1)
        lines.append(printable(raw[4:]))
        if m.group(2) != b"-":
            return Reply(int(code), tuple(lines))
        if len(lines) >= MAX_REPLY_LINES:
            raise ProbeError(f"{conn.where}: reply longer than {MAX_REPLY_LINES} lines")
