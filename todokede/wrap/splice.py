"""The two halves of a wrapped connection on plain non-blocking sockets: the client, held
unread until it is admitted, and the backend (the service, or a twist command) it is
spliced to, with flow control in both directions and half-closes passed through.

Why not asyncio transports: per connection they cost about twice the CPU of this on the
benchmark (docs/wrap.md), in their own bookkeeping and, on uvloop, in setting up and
tearing down a poll handle per socket (seven system calls or so each time). Here every
spliced socket sits in one epoll set of our own, which the event loop watches as a single
descriptor: a socket costs one ``epoll_ctl`` to add, and closing it removes it.
"""

from __future__ import annotations

import _socket
import asyncio
import contextlib
import os
import select
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from todokede.wrap.listener import Wrapper

Address = tuple[str, int]
CHUNK = 65536  # one recv; a side whose peer cannot take it stops reading (flow control)
# Every recv and send is non-blocking by its flag, so that accepted sockets need no
# O_NONBLOCK (one system call less per connection; aclexec commands get a blocking
# socket, as under tcpd).
_DONTWAIT = socket.MSG_DONTWAIT
_IN = select.EPOLLIN
_OUT = select.EPOLLOUT
_BROKEN = select.EPOLLERR | select.EPOLLHUP
_monotonic = time.monotonic


class Side:
    """One socket of a spliced connection; ``out`` holds what the kernel did not take yet."""

    __slots__ = (
        "client",
        "eof",
        "events",
        "fd",
        "out",
        "reading",
        "shared",
        "shut",
        "sock",
        "writing",
    )

    def __init__(self, client: Client, sock: _socket.socket) -> None:
        self.client = client
        self.sock = sock
        self.fd = sock.fileno()
        self.out = bytearray()
        self.eof = False  # the far end sent its FIN
        self.shut = False  # send our FIN once ``out`` is empty
        self.reading = False
        self.writing = False
        self.events = -1  # as registered in the epoll set; -1: not registered
        self.shared = False  # another process may hold the socket too (aclexec)


class Poller:
    """The epoll set of every spliced socket of one wrapper, watched by the event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.epoll = select.epoll()
        self.sides: dict[int, Side] = {}
        # backend connects waiting for EPOLLOUT, and what to call then
        self.connecting: dict[int, tuple[Client, Callable[[Client], None]]] = {}
        loop.add_reader(self.epoll.fileno(), self._ready)

    def update(self, side: Side) -> None:
        events = (_IN if side.reading else 0) | (_OUT if side.writing else 0)
        if events == side.events:
            return
        if side.events < 0:
            self.epoll.register(side.fd, events)
            self.sides[side.fd] = side
        else:
            self.epoll.modify(side.fd, events)
        side.events = events

    def forget(self, side: Side) -> None:
        """Before the socket is closed. Closing it takes it out of the set, unless another
        process still has it open (an aclexec command that left a child behind): then it
        is taken out here, or its events would go on arriving under a reused number."""
        if side.events >= 0:
            if self.sides.get(side.fd) is side:
                del self.sides[side.fd]
            if side.shared:
                with contextlib.suppress(OSError):
                    self.epoll.unregister(side.fd)
        side.events = -1

    def wait_connect(
        self, client: Client, sock: _socket.socket, done: Callable[[Client], None]
    ) -> None:
        self.epoll.register(sock.fileno(), _OUT)
        self.connecting[sock.fileno()] = (client, done)

    def stop_connect(self, sock: _socket.socket) -> None:
        fd = sock.fileno()
        if self.connecting.pop(fd, None) is not None:
            self.epoll.unregister(fd)  # the socket lives on as the backend, or is closed

    def close(self) -> None:
        if not self.epoll.closed:
            self.loop.remove_reader(self.epoll.fileno())
            self.epoll.close()

    def _ready(self) -> None:
        sides = self.sides
        for fd, events in self.epoll.poll(0):
            side = sides.get(fd)
            if side is None:
                waiting = self.connecting.get(fd)
                if waiting is not None:
                    waiting[1](waiting[0])
                continue
            try:
                # An error or hang-up shows in recv/send; both run when both are asked for.
                if side.reading or side.writing:
                    if events & ~_OUT and side.reading:
                        side.client._readable(side)
                    if events & (_OUT | _BROKEN) and side.writing and side.events >= 0:
                        side.client._writable(side)
                elif events & _BROKEN:
                    # Reported even on a socket we do not watch (after its EOF, or held
                    # back by flow control), and again and again until it is handled.
                    side.client._broken(side)
            except Exception as exc:
                # One connection's failure must not stop the others (nor leave a socket
                # that keeps reporting the same event).
                side.client.wrapper.log.error(f"cannot serve {side.client.addr}: {exc!r}")
                side.client.abort()


class Client:
    """A client connection and, once admitted, its backend."""

    __slots__ = (
        "addr",
        "backend",
        "backend_name",
        "closed",
        "closing",
        "connecting",
        "counted",
        "held",
        "last",
        "local",
        "poller",
        "port",
        "side",
        "sock",
        "task",
        "timer",
        "wrapper",
    )

    def __init__(
        self, wrapper: Wrapper, sock: _socket.socket, addr: str, port: int, local: Address
    ) -> None:
        self.wrapper = wrapper
        self.poller: Poller = wrapper.poller
        self.sock = sock
        self.side = Side(self, sock)
        self.addr = addr
        self.port = port
        self.local = local
        self.backend: Side | None = None  # set once spliced
        self.backend_name = ""  # for the log: host:port, or the twist command
        self.connecting: _socket.socket | None = None  # a backend connect in progress
        self.timer: asyncio.TimerHandle | None = None  # connect timeout or refusal hold
        self.task: asyncio.Task[None] | None = None  # the slow admission path, if taken
        self.closed = False
        self.closing = False  # closes once the bytes for the client are sent
        self.counted = False
        self.held = False  # refused, held as tcpd holds it (counted in Wrapper._held)
        self.last = _monotonic()

    # -- before the splice ------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Bytes for the client (a banner, a twist message) before or during the splice."""
        if not self.closed:
            self._send(self.side, data)

    def attach(self, sock: _socket.socket, name: str) -> None:
        """Splice the admitted client to its backend (a service, or a twist command)."""
        if self.closed or self.closing:
            sock.close()
            return
        backend = Side(self, sock)
        self.backend = backend
        self.backend_name = name
        self.last = _monotonic()
        self.side.reading = backend.reading = True
        self.poller.update(self.side)
        self.poller.update(backend)

    def to_backend(self, data: bytes) -> None:
        """Bytes for the backend ahead of the client's (a PROXY protocol header)."""
        if self.backend is not None and not self.closed:
            self._send(self.backend, data)

    # -- closing --------------------------------------------------------------------------

    def close(self) -> None:
        """Close, after the bytes still owed to the client (a banner, the backend's last
        words) are sent; the backend is closed at once."""
        if self.closed:
            return
        if not self.side.out or self.closing:
            self.abort()  # closed twice (idle, shutting down): the client had its chance
            return
        self.closing = True
        self.side.reading = False
        self.poller.update(self.side)
        self._drop_backend()

    def abort(self) -> None:
        """Close both sockets now."""
        if self.closed:
            return
        self.closed = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self._drop_backend()
        self._release(self.side)
        self.wrapper._finished(self)

    def _drop_backend(self) -> None:
        if self.connecting is not None:
            self.poller.stop_connect(self.connecting)
            self.connecting.close()
            self.connecting = None
        if self.backend is not None:
            self._release(self.backend)

    def _release(self, side: Side) -> None:
        self.poller.forget(side)
        side.reading = side.writing = False
        side.out.clear()
        side.sock.close()

    # -- the splice -----------------------------------------------------------------------

    def _readable(self, src: Side) -> None:
        dst = self.backend if src is self.side else self.side
        assert dst is not None
        try:
            data = src.sock.recv(CHUNK, _DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._lost(src, exc)
            return
        self.last = _monotonic()
        if data:
            if self._send(dst, data) and dst.out:
                src.reading = False  # until dst has taken it (_writable)
                self.poller.update(src)
            return
        src.eof = True
        if dst.eof:
            # Both directions are done. Nothing can be waiting for the backend: a side is
            # read only while its peer has nothing queued. close() sends the client the rest.
            self.close()
            return
        src.reading = False
        self.poller.update(src)
        dst.shut = True  # pass the half-close on, after what is still queued
        if not dst.out:
            self._shut(dst)

    def _send(self, dst: Side, data: bytes) -> bool:
        if not dst.out:
            try:
                sent = dst.sock.send(data, _DONTWAIT)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError as exc:
                self._lost(dst, exc)
                return False
            if sent == len(data):
                return True
            data = data[sent:]
            dst.writing = True
            self.poller.update(dst)
        dst.out += data
        return True

    def _writable(self, dst: Side) -> None:
        try:
            sent = dst.sock.send(dst.out, _DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._lost(dst, exc)
            return
        del dst.out[:sent]
        if dst.out:
            return
        if self.closing:
            self.abort()
            return
        dst.writing = False
        src = self.side if dst is self.backend else self.backend
        if src is not None and not src.eof:
            src.reading = True
            self.poller.update(src)
        self.poller.update(dst)
        if dst.shut:
            self._shut(dst)

    def _shut(self, side: Side) -> None:
        try:
            side.sock.shutdown(socket.SHUT_WR)
        except OSError as exc:
            self._lost(side, exc)

    def _broken(self, side: Side) -> None:
        """A reset (or hang-up) on a socket that is neither read nor written just now."""
        err = side.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            self._lost(side, OSError(err, os.strerror(err)))
        elif side is self.side:
            self.abort()
        else:
            self.close()  # nothing more can go either way; the client gets what is queued

    def _lost(self, side: Side, exc: OSError) -> None:
        if side is self.side or self.closed:
            self.abort()  # the client is gone (reset): nothing left to deliver
            return
        self.wrapper.log.warning(
            f"connection to {self.backend_name} lost: {reason(exc)} (client {self.addr})"
        )
        self.close()  # after what the backend had already sent


def hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno)  # asyncio's own strerror says "Connect call failed"
    return str(exc) or type(exc).__name__
