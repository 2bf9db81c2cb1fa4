"""Log lines exactly as tcpd writes them, to syslog (/dev/log) or to a file.

tcpd logs through syslog(3) with the daemon's name as ident and its own pid::

    <30>Nov 28 01:35:03 imapd[812]: connect from localhost (127.0.0.1)         daemon.info
    <28>Nov 28 01:35:03 imapd[812]: refused connect from 192.0.2.7 (192.0.2.7)  daemon.warning
    <27>Nov 28 01:35:03 imapd[812]: warning: /etc/hosts.allow, line 3: ...     daemon.err

A file gets what a traditional syslog daemon would have written: the same line without the
priority and with the host name after the timestamp, so fail2ban and logwatch read it as is.
"""

from __future__ import annotations

import contextlib
import os
import queue
import socket
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TextIO

from todokede.errors import ConfigError

if TYPE_CHECKING:
    import asyncio

FACILITIES = {
    "kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6,
    "news": 7, "uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11, "security": 4,
    **{f"local{n}": 16 + n for n in range(8)},
}  # fmt: skip
LEVELS = {
    "emerg": 0, "panic": 0, "alert": 1, "crit": 2, "err": 3, "error": 3,
    "warning": 4, "warn": 4, "notice": 5, "info": 6, "debug": 7,
}  # fmt: skip
DAEMON = FACILITIES["daemon"]
ALLOW_PRIORITY = DAEMON << 3 | LEVELS["info"]  # tcpd's allow_severity
DENY_PRIORITY = DAEMON << 3 | LEVELS["warning"]  # tcpd's deny_severity
DIAG_PRIORITY = DAEMON << 3 | LEVELS["err"]  # libwrap's tcpd_warn()/tcpd_jump()
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def parse_severity(value: str, *, default_facility: int = DAEMON) -> int:
    """``[facility.]level`` as the ``severity`` option takes it -> a syslog priority."""
    text = value.strip().lower()
    facility_name, _, level_name = text.rpartition(".")
    facility = FACILITIES.get(facility_name) if facility_name else default_facility
    level = LEVELS.get(level_name)
    if facility is None or level is None:
        raise ConfigError(f"bad syslog severity: {value!r}")
    return facility << 3 | level


_last_stamp: tuple[int, str] = (-1, "")


def timestamp(now: float | None = None) -> str:
    """The RFC 3164 timestamp syslog(3) writes, in the C locale: ``Nov  8 01:35:03``."""
    global _last_stamp
    second = int(time.time() if now is None else now)
    cached = _last_stamp  # one tuple: safe to read while another thread replaces it
    if cached[0] == second:
        return cached[1]  # a busy wrapper logs many lines a second
    t = time.localtime(second)
    text = f"{_MONTHS[t.tm_mon - 1]} {t.tm_mday:2d} {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
    _last_stamp = (second, text)
    return text


class Sink(Protocol):
    def emit(self, priority: int, tag: str, message: str) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


class SyslogSink:
    """Datagrams to a syslog socket (``/dev/log``), formatted as glibc's syslog(3) does.

    With ``background=True`` (the listener) lines go through a bounded queue to a writer
    thread, so a slow or stuck log daemon never stalls the connections; what cannot be
    queued or sent goes to stderr rather than being lost silently. Without it (inetd mode,
    which execs right after logging) each line is sent before ``emit`` returns.
    """

    def __init__(
        self,
        path: str | Path = "/dev/log",
        *,
        background: bool = False,
        timeout: float = 5.0,
        queue_size: int = 10_000,
    ) -> None:
        self.path = str(path)
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._queue: queue.Queue[bytes | None] | None = None
        self._thread: threading.Thread | None = None
        if background:
            self._queue = queue.Queue(queue_size)
            self._thread = threading.Thread(target=self._drain, name="todokede-syslog", daemon=True)
            self._thread.start()

    def _connect(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.path)
        except OSError:
            sock.close()
            raise
        return sock

    def emit(self, priority: int, tag: str, message: str) -> None:
        data = f"<{priority}>{timestamp()} {tag}: {message}".encode(errors="replace")
        if self._queue is None:
            self._send(data)
            return
        try:
            self._queue.put_nowait(data)
        except queue.Full:
            _stderr(data)

    def _drain(self) -> None:
        q = self._queue
        assert q is not None
        while (data := q.get()) is not None:
            self._send(data)
            q.task_done()

    def flush(self) -> None:
        """Wait (a bounded time) until the queued lines are sent: a command about to be
        started may log too, and libwrap's lines come before its commands' lines."""
        q = self._queue
        if q is None:
            return
        with q.all_tasks_done:
            q.all_tasks_done.wait_for(lambda: q.unfinished_tasks == 0, self.timeout)

    def _send(self, data: bytes) -> None:
        with self._lock:
            for _attempt in range(2):
                try:
                    if self._sock is None:
                        self._sock = self._connect()
                    self._sock.send(data)
                    return
                except OSError:
                    # The log daemon restarted (stale socket) or is gone: reconnect once.
                    if self._sock is not None:
                        self._sock.close()
                        self._sock = None
        _stderr(data)

    def close(self) -> None:
        if self._queue is not None and self._thread is not None:
            self._queue.put(None)  # after every queued line
            self._thread.join(self.timeout * 2)
            self._queue = None
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None


def _stderr(data: bytes) -> None:
    # Drop the <PRI>timestamp part: stderr readers (journald, a terminal) add their own.
    text = data.decode(errors="replace")
    sys.stderr.write(text[text.index(">") + 17 :] + "\n")


class FileSink:
    """Syslog-style lines appended to a file; reopened when log rotation moves it.

    Each line is written out at once, unless :meth:`defer_flush` handed it an event loop:
    then the lines of one loop iteration go out in one write at its end (a busy listener
    logs several connections an iteration), and :meth:`close` writes what is left."""

    def __init__(self, path: str | Path, *, hostname: str | None = None) -> None:
        self.path = Path(path)
        self.hostname = (hostname or socket.gethostname()).split(".")[0]
        self._lock = threading.Lock()
        self._file = self._open()
        self._checked = time.monotonic()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._flush_due = False

    def _open(self) -> TextIO:
        try:
            return open(self.path, "a", encoding="utf-8", errors="replace")
        except OSError as exc:
            raise ConfigError(f"cannot open log file {self.path}: {exc.strerror}") from exc

    def _reopen_if_rotated(self) -> None:
        now = time.monotonic()
        if now - self._checked < 1.0:
            return
        self._checked = now
        try:
            moved = os.stat(self.path).st_ino != os.fstat(self._file.fileno()).st_ino
        except OSError:
            moved = True
        if moved:
            with contextlib.suppress(ConfigError):
                new = self._open()
                self._file.close()
                self._file = new

    def defer_flush(self, loop: asyncio.AbstractEventLoop | None) -> None:
        """Write at the end of each iteration of ``loop``; None: every line at once again
        (what is pending is written now)."""
        with self._lock:
            self._loop = loop
            self._loop_thread = threading.get_ident()
            if loop is None:
                self._file.flush()

    def emit(self, priority: int, tag: str, message: str) -> None:
        line = f"{timestamp()} {self.hostname} {tag}: {message}\n"
        with self._lock:
            self._reopen_if_rotated()
            self._file.write(line)
            loop = self._loop
            if loop is None:
                self._file.flush()
            elif not self._flush_due:
                self._flush_due = True
                # call_soon runs after the callbacks already queued, i.e. after the rest
                # of this iteration's connections; from another thread it must be the
                # threadsafe call (which also wakes the loop).
                try:
                    if threading.get_ident() == self._loop_thread:
                        loop.call_soon(self.flush)
                    else:
                        loop.call_soon_threadsafe(self.flush)
                except RuntimeError:  # the loop is closed: back to a write per line
                    self._loop = None
                    self._flush_due = False
                    self._file.flush()

    def flush(self) -> None:
        with self._lock:
            self._flush_due = False
            if not self._file.closed:
                self._file.flush()

    def close(self) -> None:
        with self._lock:
            self._loop = None
            self._file.close()


class MemorySink:
    """Keeps ``(priority, tag, message)`` tuples; for embedding and tests."""

    def __init__(self) -> None:
        self.records: list[tuple[int, str, str]] = []

    def emit(self, priority: int, tag: str, message: str) -> None:
        self.records.append((priority, tag, message))

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def open_sink(
    target: str | None, *, syslog_socket: str = "/dev/log", background: bool = False
) -> Sink:
    """``None`` or ``"syslog"`` -> the syslog socket; anything else is a file path."""
    if target in (None, "syslog"):
        return SyslogSink(syslog_socket, background=background)
    return FileSink(target)


@dataclass
class TcpdLog:
    """The lines tcpd writes, with the daemon name and pid it writes them under."""

    sink: Sink
    daemon: str
    pid: int

    @property
    def tag(self) -> str:
        return f"{self.daemon}[{self.pid}]"

    def connect(self, client: str, addr: str, priority: int = ALLOW_PRIORITY) -> None:
        self.sink.emit(priority, self.tag, f"connect from {client} ({addr})")

    def refused(self, client: str, addr: str, priority: int = DENY_PRIORITY) -> None:
        self.sink.emit(priority, self.tag, f"refused connect from {client} ({addr})")

    def twist(self, client: str, command: str, priority: int = DENY_PRIORITY) -> None:
        self.sink.emit(priority, self.tag, f"twist {client} to {command}")

    def warning(self, message: str) -> None:
        self.sink.emit(DIAG_PRIORITY, self.tag, _prefixed("warning", message))

    def error(self, message: str) -> None:
        self.sink.emit(DIAG_PRIORITY, self.tag, _prefixed("error", message))

    def info(self, message: str) -> None:
        self.sink.emit(ALLOW_PRIORITY, self.tag, message)

    def raw(self, priority: int, tag: str, message: str) -> None:
        self.sink.emit(priority, tag, message)


def _prefixed(kind: str, message: str) -> str:
    if message.startswith(("warning: ", "error: ")):
        return message
    return f"{kind}: {message}"
