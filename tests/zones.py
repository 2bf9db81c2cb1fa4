"""The machine's time zone set for a while: ``TZ`` and ``time.tzset()``, put back after."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def machine_zone(name: str) -> Iterator[None]:
    """The machine's zone is ``name`` (a zone name or a POSIX TZ string) inside the block."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = name
    time.tzset()
    try:
        yield
    finally:
        if old is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = old
        time.tzset()
