from __future__ import annotations

from todokede.center.web.ratelimit import LoginLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_blocks_after_failures_and_forgets_after_the_window() -> None:
    clock = Clock()
    limiter = LoginLimiter(failures=3, window=60, clock=clock)
    for _ in range(3):
        assert not limiter.blocked("Bob", "127.0.0.1")
        limiter.failed("Bob", "127.0.0.1")
    assert limiter.blocked("bob", "127.0.0.1")  # names compare case-insensitively
    assert not limiter.blocked("bob", "127.0.0.2")  # per address
    assert not limiter.blocked("alice", "127.0.0.1")  # per user
    clock.now += 61
    assert not limiter.blocked("bob", "127.0.0.1")


def test_success_clears() -> None:
    limiter = LoginLimiter(failures=2, window=60, clock=Clock())
    limiter.failed("a", "x")
    limiter.succeeded("a", "x")
    limiter.failed("a", "x")
    assert not limiter.blocked("a", "x")


def test_memory_is_bounded() -> None:
    limiter = LoginLimiter(failures=2, window=60, max_keys=100, clock=Clock())
    for i in range(10_000):
        limiter.failed(f"user{i}", "10.0.0.1")
    assert len(limiter) == 100
    # The most recent failures are the ones kept.
    limiter.failed("user9999", "10.0.0.1")
    assert limiter.blocked("user9999", "10.0.0.1")
    assert not limiter.blocked("user0", "10.0.0.1")
