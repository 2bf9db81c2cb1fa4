"""Failures per address within ``findtime``, in bounded memory.

Each address keeps at most ``maxretry`` timestamps (older ones no longer matter), and the
table holds at most ``cap`` addresses: when it is full, the address whose last failure is
oldest is dropped. A flood of failures from spoofed or ever-new addresses therefore costs
at most ``cap * maxretry`` timestamps; what it can do is push a slow attacker out of the
table, which only delays that attacker's ban.
"""

from __future__ import annotations

from collections import OrderedDict, deque


class Counter:
    def __init__(self, maxretry: int, findtime: float, cap: int = 100_000) -> None:
        self.maxretry = maxretry
        self.findtime = findtime
        self.cap = cap
        self.evicted = 0
        self._seen: OrderedDict[str, deque[float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def add(self, addr: str, now: float, count: int = 1) -> int:
        """Count ``count`` failures of ``addr`` at ``now``; the failures within findtime."""
        seen = self._seen
        times = seen.get(addr)
        new = (now,) * min(count, self.maxretry)
        if times is None:
            if count <= 0:
                return 0  # nothing to hold
            if len(seen) >= self.cap:
                seen.popitem(last=False)
                self.evicted += 1
            times = seen[addr] = deque(new, self.maxretry)
            return len(times)
        seen.move_to_end(addr)
        times.extend(new)
        horizon = now - self.findtime
        while times and times[0] <= horizon:
            times.popleft()
        return len(times)

    def count(self, addr: str) -> int:
        """The failures of ``addr`` held (as of its last :meth:`add`)."""
        times = self._seen.get(addr)
        return 0 if times is None else len(times)

    def addresses(self) -> list[str]:
        return list(self._seen)

    def forget(self, addr: str) -> None:
        self._seen.pop(addr, None)

    def prune(self, now: float) -> None:
        """Drop addresses whose last failure is older than findtime (oldest first)."""
        horizon = now - self.findtime
        while self._seen:
            times = next(iter(self._seen.values()))
            if times and times[-1] > horizon:
                break
            self._seen.popitem(last=False)
