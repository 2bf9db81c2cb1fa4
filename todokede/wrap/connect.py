"""The backend connect for admitted clients, on a plain non-blocking socket.

For an address literal (the usual ``--to 127.0.0.1:1143``) the socket is connected right
in the admission, without a task; a name is resolved for each connection, in a task.
"""

from __future__ import annotations

import _socket
import asyncio
import errno
import os
import socket
from collections.abc import Callable

from todokede.wrap.proxy import header
from todokede.wrap.splice import Address, Client, Poller, hostport, reason


class Connector:
    """Connects clients to one backend; ``failed(client, why)`` hears of every failure.
    With ``proxy`` ("v1" or "v2") the backend first gets a PROXY protocol header naming
    the client (:mod:`todokede.wrap.proxy`)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        poller: Poller,
        backend: Address,
        timeout: float,
        failed: Callable[[Client, str], None],
        proxy: str = "",
    ) -> None:
        self.loop = loop
        self.poller = poller
        self.host, self.port = backend
        self.name = hostport(self.host, self.port)
        self.address = numeric(self.host, self.port)  # None: a name
        self.timeout = timeout
        self.failed = failed
        self.proxy = proxy

    def connect(self, client: Client) -> None:
        if self.address is None:
            client.task = self.loop.create_task(self._connect_named(client))
            return
        family, address = self.address
        # The C socket type: see accept.py.
        sock = _socket.socket(family, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            err = sock.connect_ex(address)
            if err == errno.EINPROGRESS:
                # On loopback the handshake is over by the time connect() returns: asking
                # again says so (0, or the error) and saves a round through the poller.
                err = sock.connect_ex(address)
        except OSError as exc:
            sock.close()
            self.failed(client, reason(exc))
            return
        if err in (0, errno.EISCONN):
            client.attach(sock, self.name)
            if self.proxy:
                self._proxy(client)
        elif err in (errno.EALREADY, errno.EINPROGRESS):
            client.connecting = sock
            self.poller.wait_connect(client, sock, self._connected)
            client.timer = self.loop.call_later(self.timeout, self._timed_out, client)
        else:
            sock.close()
            self.failed(client, os.strerror(err))

    def _connected(self, client: Client) -> None:
        """The poller saw the socket writable: connected, or failed."""
        sock = client.connecting
        if sock is None:
            return
        self.poller.stop_connect(sock)
        client.connecting = None
        if client.timer is not None:
            client.timer.cancel()
            client.timer = None
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            sock.close()
            self.failed(client, os.strerror(err))
        else:
            self._attach(client, sock)

    def _timed_out(self, client: Client) -> None:
        client.timer = None
        if client.connecting is not None:
            self.poller.stop_connect(client.connecting)
            client.connecting.close()
            client.connecting = None
        self.failed(client, "timed out")

    async def _connect_named(self, client: Client) -> None:
        try:
            async with asyncio.timeout(self.timeout):
                sock = await connect_named(self.host, self.port)
        except (OSError, TimeoutError) as exc:
            self.failed(client, "timed out" if isinstance(exc, TimeoutError) else reason(exc))
            return
        self._attach(client, sock)

    def _attach(self, client: Client, sock: _socket.socket) -> None:
        client.attach(sock, self.name)
        if self.proxy:
            self._proxy(client)

    def _proxy(self, client: Client) -> None:
        # before the splice reads the client: the header is the backend's first bytes
        client.to_backend(header(self.proxy, (client.addr, client.port), client.local))


def numeric(host: str, port: int) -> tuple[int, tuple[str, int]] | None:
    """(family, address) when ``host`` is an IP address literal, else None (a name, to be
    resolved for each connection)."""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
        except OSError:
            continue
        return family, (host, port)
    return None


async def connect_named(host: str, port: int) -> socket.socket:
    """A connected non-blocking socket to ``host`` (a name): each address in turn."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    error: OSError = OSError(errno.EHOSTUNREACH, f"no address for {host}")
    for family, kind, proto, _, address in infos:
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            await loop.sock_connect(sock, address)
        except OSError as exc:
            sock.close()
            error = exc
            continue
        except BaseException:
            sock.close()
            raise
        return sock
    raise error
