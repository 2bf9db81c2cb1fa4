"""--since and --until: one time window for files and the journal."""

from __future__ import annotations

import calendar
import time
from collections.abc import Iterator

import pytest

from todokede.errors import InputError
from todokede.logs.window import Window, parse_time

NOW = calendar.timegm((2026, 12, 7, 15, 30, 20, 0, 0, 0))


@pytest.fixture
def fixed_now(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This machine's clock at 2026-12-07 15:30:20 in UTC."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    monkeypatch.setattr(time, "time", lambda: float(NOW))
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("1997-09-01", (1997, 9, 1, 0, 0, 0)),
        ("1997-09-01 10:00", (1997, 9, 1, 10, 0, 0)),
        ("1997-09-01T10:00:59", (1997, 9, 1, 10, 0, 59)),
        ("  1997-09-01 10:00:59 ", (1997, 9, 1, 10, 0, 59)),
        ("now", (2026, 12, 7, 15, 30, 20)),
        ("today", (2026, 12, 7, 0, 0, 0)),
        ("Yesterday", (2026, 12, 6, 0, 0, 0)),
        ("tomorrow", (2026, 12, 8, 0, 0, 0)),
        ("-2h", (2026, 12, 7, 13, 30, 20)),
        ("-30m", (2026, 12, 7, 15, 0, 20)),
        ("-7d", (2026, 11, 30, 15, 30, 20)),
        ("+1w", (2026, 12, 14, 15, 30, 20)),
    ],
)
def test_times(fixed_now: None, text: str, want: tuple[int, ...]) -> None:
    assert parse_time(text) == calendar.timegm((*want, 0, 0, 0))


@pytest.mark.parametrize(
    "text", ["", "1997-13-01", "1997-02-30", "1997-09-01 25:00", "2h", "-2 years", "last week"]
)
def test_not_times(text: str) -> None:
    with pytest.raises(InputError, match="not a time") as err:
        parse_time(text, option="--until")
    assert err.value.field == "--until"


def test_window(fixed_now: None) -> None:
    w = Window.parse("1997-09-01", "1997-09-02")
    assert w is not None
    assert w.journalctl() == ["--since", "1997-09-01 00:00:00", "--until", "1997-09-02 00:00:00"]
    inside = calendar.timegm((1997, 9, 1, 12, 0, 0, 0, 0, 0))
    assert w.since is not None and w.until is not None
    assert inside in w and w.since in w and w.until in w and w.since - 1 not in w
    assert Window.parse(None, None) is None
    assert Window.parse("-1h", None) == Window(NOW - 3600, None)
    with pytest.raises(InputError, match="before --since"):
        Window.parse("1997-09-02", "1997-09-01")
