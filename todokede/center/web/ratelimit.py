"""Login rate limiting: failed sign-ins per (user name, client address), in bounded memory.

A sliding window of failure times per key; the table keeps at most ``max_keys`` keys and
forgets the least recently failed first, so a flood of made-up names cannot grow memory.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable


class LoginLimiter:
    def __init__(
        self,
        *,
        failures: int = 5,
        window: float = 300.0,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failures = failures
        self.window = window
        self.max_keys = max_keys
        self._clock = clock
        self._table: OrderedDict[tuple[str, str], deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, str], now: float) -> deque[float] | None:
        times = self._table.get(key)
        if times is None:
            return None
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._table[key]
            return None
        return times

    def blocked(self, user: str, addr: str) -> bool:
        key = (user.casefold(), addr)
        with self._lock:
            times = self._recent(key, self._clock())
            return times is not None and len(times) >= self.failures

    def failed(self, user: str, addr: str) -> None:
        key = (user.casefold(), addr)
        now = self._clock()
        with self._lock:
            times = self._recent(key, now)
            if times is None:
                times = deque(maxlen=self.failures)
                self._table[key] = times
            times.append(now)
            self._table.move_to_end(key)
            while len(self._table) > self.max_keys:
                self._table.popitem(last=False)

    def succeeded(self, user: str, addr: str) -> None:
        with self._lock:
            self._table.pop((user.casefold(), addr), None)

    def __len__(self) -> int:
        return len(self._table)
