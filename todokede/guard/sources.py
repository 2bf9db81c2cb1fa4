"""Where a jail's lines come from: text logs (``tail -F``, rotation-aware: the scanner's
follower) and the systemd journal (the scanner's reader, :mod:`todokede.logs.journal`).

The journal is read through a small interface, :data:`JournalReader`: a callable that gets
the jail's journal matches, its journal files (none: this machine's journal) and a
``stop()`` to check, and yields frames ``(ts, host, prog, pid, message)`` until ``stop()``
is true. The default is :func:`journalctl`; any other reader of the journal that yields
the same frames can take its place.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from todokede.logs.files import BLOCK, Follower
from todokede.logs.journal import journal_entries
from todokede.logs.syslog import Frame

JournalReader = Callable[[tuple[str, ...], tuple[Path, ...], Callable[[], bool]], Iterator[Frame]]
_QUEUE_MAX = 100_000  # frames waiting for the guard; the reader blocks beyond this


class FileSource:
    """New complete lines of one log file, as blocks of bytes of at most ``chunk`` (and
    the end of a line that is longer): a burst is counted, and its bans made, a block at a
    time in bounded memory, not after all of it has been read."""

    def __init__(self, path: Path, chunk: int = BLOCK) -> None:
        # an existing log is followed from its end; one that appears later from its start
        self.follower = Follower(path, from_start=not path.exists(), limit=chunk)
        self.path = path
        self.follower.poll()  # opens it and moves to its end now, not at the first poll

    def poll(self) -> bytes:
        """New complete lines (b"": nothing new)."""
        return self.follower.poll()

    @property
    def pending(self) -> bool:
        """More is there to read now (the last poll stopped at ``chunk``)."""
        return self.follower.pending

    def close(self) -> None:
        self.follower.close()


def journalctl(
    matches: tuple[str, ...], files: tuple[Path, ...], stop: Callable[[], bool]
) -> Iterator[Frame]:
    """The default journal reader: the scanner's (:func:`todokede.logs.journal.journal_entries`,
    one ``journalctl --follow -o export``), from this second on: what is written while
    journalctl starts is not lost."""
    entries = journal_entries(
        files, local=not files, since="now", follow=True, matches=matches, stop=stop
    )
    for e in entries:
        yield e.frame()


class JournalSource:
    """Frames of the journal, read in a thread into a bounded queue."""

    def __init__(
        self,
        matches: tuple[str, ...],
        files: tuple[Path, ...],
        reader: JournalReader | None,
        wake: Callable[[], None] | None = None,
    ) -> None:
        self.matches = matches
        self.files = files
        self.reader: JournalReader = reader or journalctl
        self.stopped = False
        self.queue: queue.Queue[Frame] = queue.Queue(_QUEUE_MAX)
        self.error: str | None = None
        self.wake = wake
        self._thread = threading.Thread(target=self._read, daemon=True, name="journal")
        self._thread.start()

    def _read(self) -> None:
        frames = self.reader(self.matches, self.files, lambda: self.stopped)
        try:
            for f in frames:
                while not self.stopped:
                    try:
                        self.queue.put(f, timeout=0.25)
                        break
                    except queue.Full:
                        continue
                if self.stopped:
                    return
                if self.wake is not None:
                    self.wake()
        except Exception as exc:  # reported by the guard's loop, not lost in the thread
            self.error = f"journal: {exc}"
        finally:
            close = getattr(frames, "close", None)
            if close is not None:
                close()  # journalctl ends now, not when the generator is collected

    def poll(self) -> list[Frame]:
        out: list[Frame] = []
        try:
            while len(out) < 10_000:
                out.append(self.queue.get_nowait())
        except queue.Empty:
            pass
        return out

    def close(self) -> None:
        self.stopped = True  # the reader sees it within its poll interval
        self._thread.join(timeout=5)
