"""Where a jail's lines come from: text logs (``tail -F``, rotation-aware: the scanner's
follower) and the systemd journal.

The journal is read through a small interface, :data:`JournalReader`: a callable that gets
the journalctl arguments (matches, ``--file``) and yields frames ``(ts, host, prog, pid,
message)``. The default runs ``journalctl --follow -o export`` and parses the export format;
any other reader of the journal that yields the same frames can take its place.
"""

from __future__ import annotations

import queue
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from todokede.logs.files import Follower
from todokede.logs.syslog import Frame

JournalReader = Callable[[list[str]], Iterator[Frame]]
_QUEUE_MAX = 100_000  # frames waiting for the guard; the reader blocks beyond this
MAX_FIELD = 1 << 20


class FileSource:
    """New complete lines of one log file, as blocks of bytes."""

    def __init__(self, path: Path) -> None:
        # an existing log is followed from its end; one that appears later from its start
        self.follower = Follower(path, from_start=not path.exists())
        self.path = path
        self.follower.poll()  # opens it and moves to its end now, not at the first poll

    def poll(self) -> bytes:
        """New complete lines (b"": nothing new)."""
        return self.follower.poll()

    def close(self) -> None:
        self.follower.close()


def export_entries(stream: IO[bytes]) -> Iterator[dict[bytes, bytes]]:
    """Entries of journalctl's export format: ``FIELD=value`` lines, or a field name, a
    64-bit little-endian length and that many bytes for values with newlines or binary;
    an empty line ends an entry."""
    entry: dict[bytes, bytes] = {}
    while True:
        line = stream.readline(MAX_FIELD)
        if not line:
            if entry:
                yield entry
            return
        if line == b"\n":
            if entry:
                yield entry
            entry = {}
            continue
        line = line[:-1] if line.endswith(b"\n") else line
        name, eq, value = line.partition(b"=")
        if not eq:
            size_raw = stream.read(8)
            if len(size_raw) < 8:
                return
            (size,) = struct.unpack("<Q", size_raw)
            value = stream.read(min(size, MAX_FIELD))
            if size > MAX_FIELD:  # skip what we do not keep
                left = size - MAX_FIELD
                while left > 0:
                    skipped = stream.read(min(left, 1 << 16))
                    if not skipped:
                        return
                    left -= len(skipped)
            stream.read(1)  # the newline after the data
        entry[name] = value


def frame_of(entry: dict[bytes, bytes]) -> Frame | None:
    msg = entry.get(b"MESSAGE")
    if msg is None:
        return None
    try:
        ts = int(entry.get(b"__REALTIME_TIMESTAMP", b"0")) // 1_000_000
    except ValueError:
        ts = 0
    prog = entry.get(b"SYSLOG_IDENTIFIER") or entry.get(b"_COMM") or b""
    pid = entry.get(b"SYSLOG_PID") or entry.get(b"_PID") or b""
    return ts, entry.get(b"_HOSTNAME", b""), prog, pid, msg.rstrip(b"\n")


class Journalctl:
    """The default journal reader: ``journalctl --follow -o export`` as a subprocess."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None

    def __call__(self, args: list[str]) -> Iterator[Frame]:
        # from this second on: what is written while journalctl starts is not lost
        since = f"--since=@{int(time.time())}"
        self.proc = subprocess.Popen(
            ["journalctl", "--follow", since, "-o", "export", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert self.proc.stdout is not None
        for entry in export_entries(self.proc.stdout):
            f = frame_of(entry)
            if f is not None:
                yield f

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


class JournalSource:
    """Frames of the journal, read in a thread into a bounded queue."""

    def __init__(
        self,
        matches: tuple[str, ...],
        files: tuple[Path, ...],
        reader: JournalReader | None,
        wake: Callable[[], None] | None = None,
    ) -> None:
        self.args = [a for f in files for a in ("--file", str(f))] + list(matches)
        self.reader: JournalReader = reader or Journalctl()
        self.queue: queue.Queue[Frame] = queue.Queue(_QUEUE_MAX)
        self.error: str | None = None
        self.wake = wake
        self._thread = threading.Thread(target=self._read, daemon=True, name="journal")
        self._thread.start()

    def _read(self) -> None:
        try:
            for f in self.reader(self.args):
                self.queue.put(f)
                if self.wake is not None:
                    self.wake()
        except Exception as exc:  # reported by the guard's loop, not lost in the thread
            self.error = f"journal: {exc}"

    def poll(self) -> list[Frame]:
        out: list[Frame] = []
        try:
            while len(out) < 10_000:
                out.append(self.queue.get_nowait())
        except queue.Empty:
            pass
        return out

    def close(self) -> None:
        stop = getattr(self.reader, "stop", None)
        if stop is not None:
            stop()
        self._thread.join(timeout=5)
