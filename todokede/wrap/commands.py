"""The shell commands of ``spawn`` and ``twist`` options, started and reaped.

Plain fork/exec and polling rather than the event loop's subprocess support: it works the
same on every event loop (asyncio's, uvloop) and in any thread.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Callable


class Commands:
    """Children of one wrapper: reaped in the background, stopped at shutdown."""

    def __init__(self) -> None:
        self.running: set[subprocess.Popen[bytes]] = set()
        self._reaper: asyncio.Task[None] | None = None

    def start(self, command: str, fd: int | None = None) -> subprocess.Popen[bytes]:
        """``/bin/sh -c command`` with ``fd`` (or /dev/null) as its stdin, stdout, stderr."""
        stdio = subprocess.DEVNULL if fd is None else fd
        proc = subprocess.Popen(["/bin/sh", "-c", command], stdin=stdio, stdout=stdio, stderr=stdio)
        self.running.add(proc)
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.get_running_loop().create_task(self._reap())
        return proc

    async def _reap(self) -> None:
        while self.running:
            await asyncio.sleep(0.2)
            self.running = {p for p in self.running if p.poll() is None}

    async def stop(self, deadline: float) -> None:
        """Let the commands run until ``deadline`` (monotonic), then kill them."""
        for proc in list(self.running):
            if not await exited(proc, max(0.0, deadline - time.monotonic())):
                proc.kill()
                await exited(proc, 5.0)
        self.running.clear()
        if self._reaper is not None:
            self._reaper.cancel()
            await asyncio.gather(self._reaper, return_exceptions=True)


async def exited(proc: subprocess.Popen[bytes], timeout: float) -> bool:
    """Wait (without blocking the loop) up to ``timeout`` seconds for ``proc`` to end."""
    deadline = time.monotonic() + timeout
    delay = 0.001
    while proc.poll() is None:
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.05)
    return True


def run_aclexec(
    command: str,
    *,
    fd: int = -1,
    timeout: float = 30.0,
    log: Callable[[str], None] | None = None,
) -> bool:
    """Debian's ``aclexec``: ``/bin/sh -c command``, waited for; True when it exits 0.

    Blocking (the engine calls it while matching, so it runs in a worker thread or in
    inetd mode). As under tcpd the command's stdin, stdout and stderr are the connection
    (``fd``; /dev/null when -1). libwrap waits for ever; a command still running after
    ``timeout`` seconds is killed and counts as failed.
    """
    stdio: int = subprocess.DEVNULL if fd < 0 else fd
    try:
        proc = subprocess.run(
            ["/bin/sh", "-c", command],
            stdin=stdio,
            stdout=stdio,
            stderr=stdio,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        if log is not None:
            log(f"aclexec: killed after {timeout:g}s: {command}")
        return False
    except OSError as exc:
        if log is not None:
            log(f"aclexec: cannot run /bin/sh: {exc.strerror}")
        return False
    return proc.returncode == 0
