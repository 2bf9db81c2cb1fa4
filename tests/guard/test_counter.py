"""The failure counter: counts within findtime, and stays bounded under a flood."""

from __future__ import annotations

import tracemalloc

import pytest

from todokede.guard.counter import Counter


@pytest.mark.parametrize(
    ("times", "findtime", "expected"),
    [
        ([0, 1, 2], 10, [1, 2, 3]),
        ([0, 5, 11], 10, [1, 2, 2]),  # the first fell out of the window
        ([0, 20, 40], 10, [1, 1, 1]),
        ([0, 0, 0, 0, 0], 10, [1, 2, 3, 3, 3]),  # never more than maxretry kept
    ],
)
def test_counts_within_findtime(times: list[float], findtime: float, expected: list[int]) -> None:
    c = Counter(maxretry=3, findtime=findtime)
    assert [c.add("192.0.2.1", t) for t in times] == expected


def test_one_line_can_count_several_failures() -> None:
    c = Counter(maxretry=5, findtime=60)
    assert c.add("192.0.2.1", 0, count=3) == 3
    assert c.add("192.0.2.1", 1, count=100) == 5


def test_addresses_are_counted_apart_and_forgotten() -> None:
    c = Counter(maxretry=3, findtime=60)
    c.add("192.0.2.1", 0)
    assert c.add("192.0.2.2", 0) == 1
    c.forget("192.0.2.1")
    assert c.add("192.0.2.1", 1) == 1


def test_the_cap_evicts_the_stalest_address() -> None:
    c = Counter(maxretry=3, findtime=600, cap=3)
    for i, addr in enumerate(["a", "b", "c"]):
        c.add(addr, i)
    c.add("a", 10)  # a is fresh again; b is now the stalest
    c.add("d", 11)
    assert len(c) == 3 and c.evicted == 1
    assert c.add("b", 12) == 1  # b started over
    assert c.add("a", 13) == 3


def test_prune_drops_what_findtime_forgot() -> None:
    c = Counter(maxretry=3, findtime=10, cap=100)
    for i in range(50):
        c.add(f"10.0.0.{i}", float(i))
    c.prune(45.0)
    assert len(c) == 14  # failures at 36..49 are within 10 s of 45


def test_a_spoofed_flood_cannot_grow_memory_without_bound() -> None:
    cap = 20_000
    c = Counter(maxretry=5, findtime=600, cap=cap)
    tracemalloc.start()
    try:
        for i in range(cap):
            c.add(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", 0.0)
        base = tracemalloc.get_traced_memory()[0]
        for i in range(cap, 5 * cap):  # four times as many new addresses again
            c.add(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", 1.0)
        grown = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert len(c) == cap and c.evicted == 4 * cap
    assert grown < 1_000_000  # the table was full; new addresses only replaced old ones
