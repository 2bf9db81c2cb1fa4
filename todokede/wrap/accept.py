"""Listening sockets watched by the event loop, accepting onto plain sockets (see
splice.py for why not asyncio's servers and transports)."""

from __future__ import annotations

import _socket
import asyncio
import contextlib
import errno
import os
import socket
from collections.abc import Callable
from typing import cast

from todokede.wrap.request import unmap

Address = tuple[str, int]
Accepted = Callable[[_socket.socket, tuple[str, int], "Address | None"], None]
_RawAccept = Callable[[], tuple[int, tuple[str, int]]]
ACCEPT_BATCH = 64  # per wake-up, so that one busy socket cannot hold up the loop
_OUT_OF_RESOURCES = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


class Listener:
    """One listening socket; each accepted connection goes to ``on_accept(sock, peer,
    local)``, ``local`` being None when the socket listens on a wildcard address (the
    connection's own address is then asked for)."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, sock: socket.socket, on_accept: Accepted
    ) -> None:
        self.loop = loop
        self.sock = sock
        self.sockets = [sock]
        self.on_accept = on_accept
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            raise OSError(errno.EAFNOSUPPORT, "not a TCP socket (tcpd wraps TCP services)")
        sock.setblocking(False)
        with contextlib.suppress(OSError):
            # Accepted sockets inherit it: no setsockopt per connection, and the relay
            # never waits on Nagle's algorithm.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        name = sock.getsockname()
        host = unmap(str(name[0]))
        self.local: Address | None = None if host in ("0.0.0.0", "::") else (host, int(name[1]))
        self._serving = True
        self._fd = sock.fileno()
        self._family = int(sock.family)
        loop.add_reader(self._fd, self._accept)

    def is_serving(self) -> bool:
        return self._serving

    def close(self) -> None:
        if self._serving:
            self._serving = False
            self.loop.remove_reader(self._fd)
            self.sock.close()

    def _accept(self) -> None:
        # socket.accept() wraps each connection in socket.socket, whose Python-level
        # constructor and enum conversions cost several microseconds a connection; the
        # C type under it has every method the splice uses.
        accept = cast(_RawAccept, self.sock._accept)  # type: ignore[attr-defined]
        family, on_accept, local = self._family, self.on_accept, self.local
        for _ in range(ACCEPT_BATCH):
            try:
                fd, peer = accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _OUT_OF_RESOURCES:
                    # Out of descriptors: pause, as asyncio's servers do, rather than spin.
                    self.loop.remove_reader(self._fd)
                    self.loop.call_later(1.0, self._resume)
                    return
                continue  # e.g. the client gave up (ECONNABORTED)
            try:
                conn = _socket.socket(family, socket.SOCK_STREAM, 0, fd)
            except OSError:
                os.close(fd)
                continue
            on_accept(conn, peer, local)

    def _resume(self) -> None:
        if self._serving:
            self.loop.add_reader(self._fd, self._accept)


def bind(host: str, port: int, backlog: int) -> list[socket.socket]:
    """Listening sockets for ``host`` (every address when empty), as asyncio's
    ``create_server`` binds them: SO_REUSEADDR, IPv6 sockets IPv6-only."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    out: list[socket.socket] = []
    seen = set()
    try:
        for family, kind, proto, _, address in infos:
            if (family, address) in seen:
                continue
            seen.add((family, address))
            sock = socket.socket(family, kind, proto)
            out.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(backlog)
    except OSError:
        for sock in out:
            sock.close()
        raise
    return out
