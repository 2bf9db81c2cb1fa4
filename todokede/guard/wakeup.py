"""Waiting for something to read: inotify on the logs' directories (Linux), and a pipe the
journal reader writes to, instead of sleeping a whole poll interval.

A failing line then reaches the guard within a millisecond of being written, not at its
next poll; the poll interval only bounds the wait where inotify is missing (it is then a
plain sleep) or misses an event (files on network file systems).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import select
from collections.abc import Iterable
from pathlib import Path

IN_MODIFY = 0x002
IN_CLOSE_WRITE = 0x008
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC
_MASK = IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        libc.inotify_init1  # noqa: B018 - present only on Linux
    except (OSError, AttributeError):
        return None
    return libc


class Wakeup:
    def __init__(self, paths: Iterable[Path]) -> None:
        self.pipe_r, self.pipe_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.inotify = -1
        libc = _libc()
        if libc is not None:
            fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
            if fd >= 0:
                self.inotify = fd
                # the directory, not the file: a rotation makes a new file of the same name
                for directory in {Path(p).parent for p in paths}:
                    libc.inotify_add_watch(fd, os.fsencode(directory), _MASK)
        self._poll = select.poll()
        self._poll.register(self.pipe_r, select.POLLIN)
        if self.inotify >= 0:
            self._poll.register(self.inotify, select.POLLIN)

    def wake(self) -> None:
        """Called from another thread (the journal reader): something is waiting."""
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self.pipe_w, b"\0")

    def wait(self, timeout: float) -> None:
        """Until a watched directory changes, :meth:`wake` is called, or ``timeout``."""
        if self._poll.poll(timeout * 1000):
            for fd in (self.pipe_r, self.inotify):
                if fd >= 0:
                    with contextlib.suppress(BlockingIOError, OSError):
                        while os.read(fd, 65536):
                            pass

    def close(self) -> None:
        for fd in (self.pipe_r, self.pipe_w, self.inotify):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.inotify = -1
