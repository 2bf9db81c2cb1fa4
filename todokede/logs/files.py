"""Reading log files: compression, rotated sets, byte ranges, stdin, and ``tail -F``.

Everything is read as bytes in blocks of whole lines; nothing decodes here.
"""

from __future__ import annotations

import bz2
import gzip
import itertools
import lzma
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from todokede.errors import LogError

BLOCK = 1 << 20
_ROTATED = re.compile(
    r"^(?P<base>.+?)(?:\.(?P<num>\d+)|-(?P<date>\d{8,10}))?(?P<ext>\.(?:gz|bz2|xz))?$"
)


def is_stdin(path: Path | str) -> bool:
    return str(path) == "-"


def compression(path: Path) -> str | None:
    """'gz', 'bz2', 'xz' or None, judged by the file's magic bytes (not its name)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(6)
    except OSError:
        return None  # open_log says what is wrong with it
    if head[:2] == b"\x1f\x8b":
        return "gz"
    if head[:3] == b"BZh":
        return "bz2"
    if head[:6] == b"\xfd7zXZ\x00":
        return "xz"
    return None


def open_log(path: Path | str) -> BinaryIO:
    """Open a log for reading bytes, decompressing .gz/.bz2/.xz; '-' is standard input."""
    if is_stdin(path):
        return sys.stdin.buffer
    p = Path(path)
    try:
        kind = compression(p)
        if kind == "gz":
            return gzip.open(p, "rb")  # type: ignore[return-value]
        if kind == "bz2":
            return bz2.open(p, "rb")  # type: ignore[return-value]
        if kind == "xz":
            return lzma.open(p, "rb")  # type: ignore[return-value]
        return open(p, "rb")
    except OSError as exc:
        raise LogError(f"cannot open: {exc.strerror or exc}", source=str(path)) from exc


def blocks(fh: BinaryIO, size: int = BLOCK, limit: int | None = None) -> Iterator[bytes]:
    """Yield blocks that end at a newline (the last may not), reading at most ``limit`` bytes."""
    carry = b""
    left = limit
    while True:
        want = size if left is None else min(size, left)
        if want <= 0:
            break
        try:
            chunk = fh.read(want)
        except (OSError, EOFError, lzma.LZMAError) as exc:
            name = getattr(fh, "name", "log")
            raise LogError(f"read failed: {exc}", source=str(name)) from exc
        if not chunk:
            break
        if left is not None:
            left -= len(chunk)
        cut = chunk.rfind(b"\n")
        if cut < 0:
            carry += chunk
            continue
        yield carry + chunk[: cut + 1]
        carry = chunk[cut + 1 :]
    if carry:
        yield carry


def first_line(path: Path | str) -> bytes:
    if is_stdin(path):
        return b""
    with open_log(path) as fh:
        return fh.readline(4096)


def byte_ranges(path: Path, parts: int) -> list[tuple[int, int]]:
    """Split a plain file into ``parts`` ranges that start right after a newline."""
    size = path.stat().st_size
    if parts <= 1 or size == 0:
        return [(0, size)]
    cuts = [0]
    with open(path, "rb") as fh:
        for i in range(1, parts):
            fh.seek(size * i // parts)
            fh.readline()
            pos = fh.tell()
            if cuts[-1] < pos < size:
                cuts.append(pos)
    cuts.append(size)
    return [(a, b) for a, b in itertools.pairwise(cuts) if b > a]


def read_range(
    path: Path, start: int, end: int, size: int = BLOCK, window: int = 4096
) -> Iterator[bytes]:
    """The blocks :func:`blocks` yields for these bytes of a plain file, each read once
    into its own bytes object: where a block ends is found first, by reading the last
    ``window`` bytes before each ``size`` boundary (all of them when a line is longer),
    instead of reading a whole chunk and copying it twice, to cut it at its last newline
    and to join the line it leaves to the next."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise LogError(f"cannot open: {exc.strerror or exc}", source=str(path)) from exc
    try:
        done = start
        for at in range(start, end, size):
            stop = min(at + size, end)
            low = max(at, stop - window)
            cut = os.pread(fd, stop - low, low).rfind(b"\n")
            if cut < 0 and low > at:
                low = at
                cut = os.pread(fd, stop - low, low).rfind(b"\n")
            if cut >= 0:
                block = os.pread(fd, low + cut + 1 - done, done)
                if block:
                    yield block
                done += len(block)
                if done != low + cut + 1:  # the file shrank
                    return
        if done < end:
            block = os.pread(fd, end - done, done)
            if block:
                yield block
    except OSError as exc:
        raise LogError(f"read failed: {exc}", source=str(path)) from exc
    finally:
        os.close(fd)


def rotation_key(path: Path) -> tuple[str, int, str]:
    """Sort key putting a rotated set in time order: maillog.2.gz, maillog.1, maillog."""
    m = _ROTATED.match(path.name)
    assert m is not None  # the pattern matches any name
    base = str(path.parent / m.group("base"))
    if m.group("num"):
        return base, -int(m.group("num")), ""
    if m.group("date"):
        return base, -(10**9), m.group("date")
    return base, 0, ""


def rotated_set(path: Path) -> list[Path]:
    """``path`` and its rotated siblings (path.1, path.2.gz, path-20240301...), oldest first."""
    base = path.name
    siblings = [path] if path.exists() else []
    if path.parent.is_dir():
        for other in path.parent.iterdir():
            m = _ROTATED.match(other.name)
            if (
                other != path
                and m
                and m.group("base") == base
                and (m.group("num") or m.group("date"))
            ):
                siblings.append(other)
    return sorted(siblings, key=rotation_key)


def time_order(paths: list[Path]) -> list[Path]:
    """Order given files so that each rotated set reads oldest first; others keep their place."""
    keyed = [(rotation_key(p), i, p) for i, p in enumerate(paths)]
    first_seen: dict[str, int] = {}
    for (base, _, _), i, _ in keyed:
        first_seen.setdefault(base, i)
    keyed.sort(key=lambda t: (first_seen[t[0][0]], t[0][1], t[0][2], t[1]))
    return [p for _, _, p in keyed]


class Follower:
    """``tail -F`` for one path: reads what is there, then new lines as they come; when the
    file is rotated (a new inode, or the file shrank) it finishes the old one and reopens.

    ``limit``: read at most that many bytes a poll (the rest at the next polls, and a
    rotation once the old file is read to its end), so that a burst is handled a piece at
    a time in bounded memory; -1: everything there is.
    """

    def __init__(self, path: Path, *, from_start: bool = True, limit: int = -1) -> None:
        self.path = path
        self.limit = limit
        self._fh: BinaryIO | None = None
        self._ino: int | None = None
        self._carry = b""
        self._from_start = from_start
        self._more = False  # the last read stopped at the limit

    def _open(self) -> bool:
        try:
            fh = open(self.path, "rb")  # noqa: SIM115 - held open across polls
        except OSError:
            return False
        st = os.fstat(fh.fileno())
        self._fh, self._ino = fh, st.st_ino
        if not self._from_start:
            fh.seek(0, os.SEEK_END)
        self._from_start = True  # files that appear later are read from their start
        return True

    def _drain(self) -> bytes:
        assert self._fh is not None
        data = self._fh.read(self.limit)
        self._more = 0 < self.limit == len(data)
        if not data:
            return b""
        data = self._carry + data
        cut = data.rfind(b"\n")
        if cut < 0:
            self._carry = data
            return b""
        self._carry = data[cut + 1 :]
        return data[: cut + 1]

    @property
    def pending(self) -> bool:
        """Whether the last poll stopped at the limit: more is there to read now."""
        return self._more

    def poll(self) -> bytes:
        """New complete lines since the last poll (b"" when nothing new)."""
        if self._fh is None and not self._open():
            return b""
        out = self._drain()
        if self._more:
            return out
        try:
            st = os.stat(self.path)
        except OSError:
            return out  # rotated away and not yet recreated: keep the old handle
        assert self._fh is not None
        if st.st_ino != self._ino or st.st_size < self._fh.tell():
            out += self._drain()
            if self._more:
                return out  # the rest of the old file first
            if self._carry:
                out += self._carry + b"\n"
                self._carry = b""
            self._fh.close()
            self._fh = None
            if self._open():
                out += self._drain()
        return out

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def follow(
    paths: list[Path],
    on_lines: Callable[[Path, bytes], None],
    stop: Callable[[], bool],
    *,
    interval: float = 0.25,
    on_idle: Callable[[], None] | None = None,
    wait: Callable[[float], bool] | None = None,
) -> None:
    """Call ``on_lines`` with new lines of each path until ``stop()`` is true.

    ``wait(seconds)`` reads another input (a journal) for up to that long instead of the
    pause between polls, and says whether it got something."""
    followers = [Follower(p) for p in paths]
    try:
        while not stop():
            got = False
            for f in followers:
                data = f.poll()
                if data:
                    got = True
                    on_lines(f.path, data)
            if wait is not None and wait(0 if got else interval):
                continue
            if not got:
                if on_idle is not None:
                    on_idle()
                if wait is None:
                    time.sleep(interval)
    finally:
        for f in followers:
            f.close()
