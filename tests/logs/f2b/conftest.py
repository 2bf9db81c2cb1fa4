"""fail2ban's test clock for the comparisons with fail2ban: a fixed time zone (Central
European time, as fail2ban's own tests use) set for this process and its children."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

TEST_TZ = "CET-01CEST-02,M3.5.0,M10.5.0"


@pytest.fixture
def fail2ban_clock() -> Iterator[None]:
    old = os.environ.get("TZ")
    os.environ["TZ"] = TEST_TZ
    time.tzset()
    try:
        yield
    finally:
        if old is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = old
        time.tzset()
