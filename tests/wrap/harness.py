"""Test harness for the wrapper: it runs in its own thread and event loop, logs to a
syslog datagram socket the test binds, and fronts a small asyncio backend; clients are
plain blocking sockets bound to the loopback address a test wants to come from."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from todokede.wrap.listener import WrapConfig, Wrapper
from todokede.wrap.tcpdlog import Sink, SyslogSink, TcpdLog

GREETING = b"* OK test backend ready\r\n"
# The event loop the wrapper runs on in tests; test_listener runs each test on both.
LOOP_FACTORY: list[Callable[[], asyncio.AbstractEventLoop]] = [asyncio.new_event_loop]
TS = re.compile(r"^<(\d+)>[A-Z][a-z]{2} [ 123]\d \d\d:\d\d:\d\d ")


def rules(directory: Path, allow: str = "", deny: str = "") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "hosts.allow").write_text(allow)
    (directory / "hosts.deny").write_text(deny)
    return directory


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


class SyslogCollector:
    """A unix datagram socket standing in for /dev/log; a thread keeps what arrives."""

    def __init__(self) -> None:
        # AF_UNIX paths are limited to 108 bytes: pytest's tmp_path can be longer.
        self.dir = tempfile.mkdtemp(prefix="tw-log-")
        self.path = os.path.join(self.dir, "log")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.1)
        self.lines: list[str] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._done.is_set():
            try:
                self.lines.append(self.sock.recv(65536).decode(errors="replace"))
            except (TimeoutError, BlockingIOError):
                continue
            except OSError:
                return

    def drain(self) -> list[str]:
        return list(self.lines)

    def wait_for(self, pattern: str, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.drain():
                if re.search(pattern, line):
                    return line
            time.sleep(0.01)
        raise AssertionError(f"no log line matching {pattern!r} in {self.lines}")

    def normalised(self) -> list[str]:
        """Lines as the corpus writes them: ``<PRI>TS tag[PID]: message``."""
        out = []
        for line in self.drain():
            line = TS.sub(lambda m: f"<{m.group(1)}>TS ", line)
            out.append(re.sub(r"^(<\d+>TS [^ \[]+)\[\d+\]:", r"\1[PID]:", line))
        return out

    def close(self) -> None:
        self._done.set()
        self._thread.join(5)
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class EchoBackend:
    """Sends GREETING, then echoes; runs in the wrapper's loop."""

    def __init__(self) -> None:
        self.server: asyncio.Server | None = None
        self.port = 0
        self.writers: set[asyncio.StreamWriter] = set()
        self.tasks: set[asyncio.Task[Any]] = set()

    async def start(self, host: str = "127.0.0.1") -> int:
        self.server = await asyncio.start_server(self._handle, host, 0, backlog=4096)
        self.port = int(self.server.sockets[0].getsockname()[1])
        return self.port

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.add(writer)
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        try:
            writer.write(GREETING)
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        except asyncio.CancelledError:
            pass
        finally:
            self.writers.discard(writer)
            self.tasks.discard(task)
            writer.close()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            tasks = list(self.tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.server.wait_closed()


class Running:
    """``with Running(config_factory) as run:`` the wrapper (and an echo backend) serving."""

    def __init__(
        self,
        make_config: Callable[[int], WrapConfig],
        *,
        resolver: Any = None,
        backend: bool = True,
        log: SyslogCollector | None = None,
        sink: Sink | None = None,
    ) -> None:
        self.make_config = make_config
        self.resolver = resolver
        self.with_backend = backend
        self.log = log or SyslogCollector()
        self.own_log = log is None
        self.loop = LOOP_FACTORY[0]()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.wrapper: Wrapper | None = None
        self.backend = EchoBackend()
        self.addresses: list[tuple[str, int]] = []
        self._stop: asyncio.Event | None = None
        self.sink: Sink = sink or SyslogSink(self.log.path, background=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._main())
        except BaseException as exc:  # reported to the test thread
            self.error = exc
            self.ready.set()
        finally:
            self.loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        port = await self.backend.start() if self.with_backend else 0
        config = self.make_config(port)
        self.wrapper = Wrapper(
            config, TcpdLog(self.sink, config.daemon, os.getpid()), resolver=self.resolver
        )
        self.addresses = await self.wrapper.start()
        self.ready.set()
        await self._stop.wait()
        await self.wrapper.shutdown(0)
        await self.backend.stop()

    @property
    def port(self) -> int:
        return self.addresses[0][1]

    def __enter__(self) -> Running:
        self.thread.start()
        self.ready.wait(30)
        if self.error is not None:
            raise self.error
        return self

    def call(self, fn: Callable[[], Any], timeout: float = 30) -> Any:
        """Run ``fn`` (a coroutine factory) in the wrapper's loop and wait for it."""
        return asyncio.run_coroutine_threadsafe(fn(), self.loop).result(timeout)

    def stop(self) -> None:
        if self.thread.is_alive():
            assert self._stop is not None
            self.loop.call_soon_threadsafe(self._stop.set)
            self.thread.join(30)

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self.sink.close()
        if self.own_log:
            self.log.close()
        if self.error is not None:
            raise self.error


def connect(
    port: int, source: str = "127.0.0.1", host: str | None = None, timeout: float = 10
) -> socket.socket:
    host = host or ("::1" if ":" in source else "127.0.0.1")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.bind((source, 0))
        sock.connect((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def read_all(sock: socket.socket) -> bytes:
    data = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            data += chunk
    return data


def read_until(sock: socket.socket, end: bytes) -> bytes:
    data = b""
    while not data.endswith(end):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("condition not reached in time")


@contextlib.contextmanager
def closing_all(socks: list[socket.socket]) -> Iterator[list[socket.socket]]:
    try:
        yield socks
    finally:
        for s in socks:
            s.close()


@contextlib.contextmanager
def backend(handle: Callable[[socket.socket], None]) -> Iterator[int]:
    """A backend on 127.0.0.1 that calls ``handle`` on each connection, then closes it; a
    thread with an accept loop that waits at most 0.2 s at a time. Yields its port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.settimeout(0.2)
    done = threading.Event()

    def serve() -> None:
        while not done.is_set():
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            with conn:
                handle(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield sock.getsockname()[1]
    finally:
        done.set()
        thread.join(10)
        sock.close()


@contextlib.contextmanager
def greeter(greeting: bytes = GREETING) -> Iterator[int]:
    """A backend that sends ``greeting`` and closes at once (reads nothing). Yields its
    port."""
    with backend(lambda conn: conn.sendall(greeting)) as port:
        yield port


@contextlib.contextmanager
def full_backlog() -> Iterator[tuple[socket.socket, list[socket.socket]]]:
    """A listening socket whose accept queue is full (of the connections it yields with
    it): a further connect to it stays in progress, unanswered, until there is room."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers: list[socket.socket] = []
    try:
        for _ in range(4):
            f = socket.socket()
            fillers.append(f)
            f.setblocking(False)
            f.connect_ex(("127.0.0.1", port))
        yield listener, fillers
    finally:
        for f in fillers:
            f.close()
        listener.close()
