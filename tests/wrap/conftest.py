"""Fixtures of the wrapper's tests."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from tests.wrap import harness


@pytest.fixture(params=["asyncio", "uvloop"])
def event_loop_kind(request: pytest.FixtureRequest) -> Iterator[str]:
    """Every listener test on the standard loop and on uvloop (what the CLI uses)."""
    if request.param == "asyncio":
        yield "asyncio"
        return
    uvloop = pytest.importorskip("uvloop")
    harness.LOOP_FACTORY[0] = uvloop.new_event_loop
    try:
        yield "uvloop"
    finally:
        harness.LOOP_FACTORY[0] = asyncio.new_event_loop
