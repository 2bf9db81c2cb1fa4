"""The two halves of a wrapped connection: the client, held until it is admitted, and
the backend (the service, or a twist command) it is spliced to, with flow control in both
directions and half-closes passed through.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import TYPE_CHECKING, cast

from todokede.wrap.request import unmap

if TYPE_CHECKING:
    from todokede.wrap.listener import Wrapper

Address = tuple[str, int]
PENDING_LIMIT = 65536  # bytes kept from a client that speaks before it is admitted


class Client(asyncio.Protocol):
    def __init__(self, wrapper: Wrapper) -> None:
        self.wrapper = wrapper
        self.transport: asyncio.Transport | None = None
        self.backend: asyncio.Transport | None = None
        self.addr = ""
        self.port = 0
        self.local: Address = ("", 0)
        self.eof = False
        self.backend_eof = False
        self.closed = False
        self.counted = False
        self.task: asyncio.Task[None] | None = None
        self.last = time.monotonic()
        self.pending: list[bytes] = []
        self.pending_size = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport: no isinstance() here.
        transport = cast(asyncio.Transport, transport)
        self.transport = transport
        transport.pause_reading()
        peer = transport.get_extra_info("peername")
        local = transport.get_extra_info("sockname")
        if not peer or not local:  # the client left before we could ask who it was
            transport.abort()
            return
        self.addr, self.port = unmap(peer[0]), int(peer[1])
        self.local = (unmap(local[0]), int(local[1]))
        self.wrapper._accepted(self)

    def data_received(self, data: bytes) -> None:
        self.last = time.monotonic()
        if self.backend is not None:
            self.backend.write(data)
            return
        # Not admitted yet. Reading is paused, but uvloop may already have read before the
        # pause took effect: keep the bytes for the backend, within reason.
        self.pending.append(data)
        self.pending_size += len(data)
        if self.pending_size > PENDING_LIMIT and self.transport is not None:
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        self.eof = True
        if self.backend is not None:
            if self.backend_eof:
                self.close()
            elif self.backend.can_write_eof():
                self.backend.write_eof()
        return True  # keep our side open: the backend may still answer

    def pause_writing(self) -> None:
        if self.backend is not None:
            self.backend.pause_reading()

    def resume_writing(self) -> None:
        if self.backend is not None and not self.backend.is_closing():
            self.backend.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.backend is not None:
            self.backend.close()
        self.wrapper._finished(self)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
        if self.backend is not None:
            self.backend.close()


class Backend(asyncio.Protocol):
    def __init__(self, client: Client, name: str) -> None:
        self.client = client
        self.name = name  # for the log: host:port, or the twist command
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        client = self.client
        client.last = time.monotonic()
        if client.transport is not None:
            client.transport.write(data)

    def eof_received(self) -> bool:
        client = self.client
        client.backend_eof = True
        if client.eof:
            client.close()
        elif client.transport is not None and client.transport.can_write_eof():
            client.transport.write_eof()
        return True

    def pause_writing(self) -> None:
        if self.client.transport is not None:
            self.client.transport.pause_reading()

    def resume_writing(self) -> None:
        transport = self.client.transport
        if transport is not None and not transport.is_closing():
            transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        client = self.client
        if exc is not None and not client.closed:
            client.wrapper.log.warning(
                f"connection to {self.name} lost: {reason(exc)} (client {client.addr})"
            )
        if client.transport is not None:
            client.transport.close()  # flushes what the backend sent before it went away


def attach(client: Client, backend: asyncio.Transport) -> None:
    """Splice an admitted client to its backend (a service, or a twist command)."""
    transport = client.transport
    if client.closed or transport is None:
        backend.close()
        return
    client.backend = backend
    if client.pending:
        backend.write(b"".join(client.pending))
        client.pending.clear()
    if client.eof and backend.can_write_eof():
        backend.write_eof()
    transport.resume_reading()


def hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno)  # asyncio's own strerror says "Connect call failed"
    return str(exc) or type(exc).__name__
