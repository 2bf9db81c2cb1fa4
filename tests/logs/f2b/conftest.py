"""fail2ban's test clock for the comparisons with fail2ban: a fixed time zone (Central
European time, as fail2ban's own tests use) set for this process and its children."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.zones import machine_zone

TEST_TZ = "CET-01CEST-02,M3.5.0,M10.5.0"


@pytest.fixture
def fail2ban_clock() -> Iterator[None]:
    with machine_zone(TEST_TZ):
        yield
