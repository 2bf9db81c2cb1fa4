"""A line-oriented TCP connection with a bound on everything: connect time, the time to
read a whole reply, line length and reply size. Servers are untrusted: whatever they send
is kept as printable text (control bytes escaped) so it is safe to print and store."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TypeVar

from todokede.errors import ProbeError

MAX_LINE = 8192  # bytes in one reply line
MAX_REPLY_LINES = 200  # lines in one (multi-line) reply

T = TypeVar("T")


async def within(aw: Awaitable[T], seconds: float) -> T:
    """``asyncio.wait_for`` without its Python 3.11 habit of now and then swallowing a
    cancellation, which would let a probe outlive its total time limit."""
    async with asyncio.timeout(seconds):
        return await aw


@dataclass(frozen=True)
class Limits:
    connect: float = 10.0  # seconds to connect (and finish a TLS handshake)
    reply: float = 30.0  # seconds to receive one complete reply, however it trickles in


def printable(raw: bytes) -> str:
    """Decode a server line for display: UTF-8 where valid, every control character (and
    undecodable byte) escaped, so a hostile server cannot drive a terminal or a page."""
    text = raw.decode("utf-8", errors="backslashreplace")
    out = []
    for ch in text:
        if ch < " " or ch == "\x7f" or "\x80" <= ch < "\xa0":
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return "".join(out)


def client_tls_context() -> ssl.SSLContext:
    """A probe looks at servers, it does not trust them: no certificate verification
    (self-signed certificates are the norm on the servers an admin checks)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class Connection:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        host: str,
        port: int,
        limits: Limits,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.host = host
        self.port = port
        self.limits = limits
        self.tls: dict[str, str] | None = None

    @classmethod
    async def open(cls, host: str, port: int, limits: Limits, *, tls: bool = False) -> Connection:
        try:
            reader, writer = await within(
                asyncio.open_connection(
                    host,
                    port,
                    limit=MAX_LINE,
                    ssl=client_tls_context() if tls else None,
                    server_hostname=host if tls else None,
                ),
                limits.connect,
            )
        except TimeoutError:
            raise ProbeError(f"{host}:{port}: no connection within {limits.connect:g} s") from None
        except ssl.SSLError as exc:
            raise ProbeError(f"{host}:{port}: TLS handshake failed: {exc.reason}") from None
        except OSError as exc:
            raise ProbeError(f"{host}:{port}: cannot connect: {exc.strerror or exc}") from None
        conn = cls(reader, writer, host, port, limits)
        if tls:
            conn._note_tls()
        return conn

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    def _note_tls(self) -> None:
        obj = self.writer.get_extra_info("ssl_object")
        if isinstance(obj, ssl.SSLObject):
            cipher = obj.cipher()
            self.tls = {"version": obj.version() or "", "cipher": cipher[0] if cipher else ""}

    async def start_tls(self) -> None:
        try:
            await within(
                self.writer.start_tls(client_tls_context(), server_hostname=self.host),
                self.limits.connect,
            )
        except TimeoutError:
            raise ProbeError(f"{self.where}: TLS handshake timed out") from None
        except ssl.SSLError as exc:
            raise ProbeError(f"{self.where}: TLS handshake failed: {exc.reason}") from None
        except OSError as exc:
            raise ProbeError(f"{self.where}: TLS handshake failed: {exc}") from None
        self._note_tls()

    async def send(self, line: str) -> None:
        if "\r" in line or "\n" in line:  # one command per line, never an injected one
            raise ValueError(f"line break in a command: {line!r}")
        try:
            self.writer.write(line.encode("utf-8") + b"\r\n")
            await within(self.writer.drain(), self.limits.reply)
        except TimeoutError:
            raise ProbeError(f"{self.where}: server does not read what we send") from None
        except OSError as exc:
            raise ProbeError(f"{self.where}: connection lost while sending: {exc}") from None

    async def readline(self) -> bytes:
        """One line without its line ending; ProbeError on EOF, overlong line or error."""
        try:
            raw = await self.reader.readuntil(b"\n")
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                raise ProbeError(
                    f"{self.where}: connection closed mid-line: {printable(exc.partial[:200])!r}"
                ) from None
            raise ProbeError(f"{self.where}: server closed the connection") from None
        except asyncio.LimitOverrunError:
            raise ProbeError(
                f"{self.where}: reply line longer than {MAX_LINE} bytes (garbage?)"
            ) from None
        except OSError as exc:
            raise ProbeError(f"{self.where}: connection lost: {exc}") from None
        return raw.rstrip(b"\r\n")

    async def close(self) -> None:
        self.writer.close()
        # closing a connection to a misbehaving server is best effort
        with contextlib.suppress(TimeoutError, OSError, ssl.SSLError):
            await within(self.writer.wait_closed(), 2.0)
