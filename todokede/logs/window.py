"""``--since`` and ``--until``: a time window over every input, files and the journal alike.

Times are read as the logs' wall clock (seconds counted as if UTC, as the framer counts a
syslog line's time; the journal's entries are shown in the machine's zone, which is the
wall clock there): ``2026-12-01``, ``2026-12-01 10:00``, ``2026-12-01T10:00:00``, or
relative to now on this machine's clock: ``now``, ``today``, ``yesterday``, ``-2h``,
``-30m``, ``-7d`` (journalctl's words for the same times). journalctl is given the absolute
time, so both kinds of input mean the same instant.
"""

from __future__ import annotations

import calendar
import re
import time
from dataclasses import dataclass
from datetime import datetime

from todokede.errors import InputError

_ABSOLUTE = re.compile(r"(\d{4})-(\d\d)-(\d\d)(?:[ t](\d\d):(\d\d)(?::(\d\d))?)?")
_RELATIVE = re.compile(r"([-+])(\d{1,9})\s*([smhdw])")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def wall_now() -> int:
    """This machine's wall clock now, counted as if UTC."""
    now = time.time()
    return int(now) + time.localtime(now).tm_gmtoff


def parse_time(text: str, *, option: str = "--since") -> int:
    """Wall-clock seconds of a ``--since``/``--until`` value (:class:`InputError` if not one)."""
    value = text.strip().lower()
    now = wall_now()
    midnight = now - now % 86400
    if value in ("now", "today", "yesterday", "tomorrow"):
        return {"now": now, "today": midnight, "yesterday": midnight - 86400}.get(
            value, midnight + 86400
        )
    rel = _RELATIVE.fullmatch(value)
    if rel is not None:
        sign = -1 if rel.group(1) == "-" else 1
        return now + sign * int(rel.group(2)) * _UNIT[rel.group(3)]
    m = _ABSOLUTE.fullmatch(value)
    if m is not None:
        try:
            y, mo, d, h, mi, sec = (int(p) if p else 0 for p in m.groups())
            datetime(y, mo, d, h, mi, sec)  # validates each field
            return calendar.timegm((y, mo, d, h, mi, sec, 0, 0, 0))
        except ValueError:
            pass
    raise InputError(
        f"not a time: {text!r} (2026-12-01, '2026-12-01 10:00:00', today, yesterday, -2h)",
        field=option,
    )


@dataclass(frozen=True)
class Window:
    """Wall-clock seconds from ``since`` to ``until``, both included (None: open)."""

    since: int | None = None
    until: int | None = None

    def __contains__(self, ts: int) -> bool:
        return (self.since is None or ts >= self.since) and (self.until is None or ts <= self.until)

    @classmethod
    def parse(cls, since: str | None, until: str | None) -> Window | None:
        """The window of two option values (None when neither is given)."""
        if since is None and until is None:
            return None
        lo = parse_time(since, option="--since") if since is not None else None
        hi = parse_time(until, option="--until") if until is not None else None
        if lo is not None and hi is not None and hi < lo:
            raise InputError(f"--until ({until}) is before --since ({since})", field="--until")
        return cls(lo, hi)

    def journalctl(self) -> list[str]:
        """The same window as journalctl options (journalctl reads them in the machine's
        zone, whose wall clock these are)."""
        out = []
        for flag, ts in (("--since", self.since), ("--until", self.until)):
            if ts is not None:
                out += [flag, time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts))]
        return out
