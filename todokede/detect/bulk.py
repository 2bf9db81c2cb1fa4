"""Whole-block passes over the commonest lines, so that Python touches counts, not lines.

Granted tcpd connections make up nearly all of a busy tcp_wrappers log and each only counts:
one regex split in C over a whole block finds them, and a Counter adds them up per
(program, client). Every line the pass does not take is left for :meth:`State._loop`, the
general path: the results are those of the general path, only sooner.

(Postfix queue lines are not done this way: a regex pass over every line costs as much as
the slicing in :meth:`State._loop`, since ``re`` reads each byte, ``bytes.find`` skips.)
"""

from __future__ import annotations

import operator
import re
from collections import Counter
from typing import TYPE_CHECKING

from todokede.logs.syslog import Framer

if TYPE_CHECKING:
    from todokede.detect.state import State

_TIME = rb"(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d"
_STAMP = rb"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) (?: [1-9]|[12]\d|3[01]) " + _TIME

# A granted tcpd connection on a BSD-stamped line: (line, program, client). The program may
# not contain "/" (Postfix's smtpd logs "connect from" too, and is read as Postfix); a host
# that ends with ":" is a tag to the framer (syslog._tag), unless it starts with "[".
_CONNECT = re.compile(
    rb"\n(" + _STAMP + rb" (?:\[[^ \n]*|[^ \n]*[^ \n:]) ([^ \n\[:/]+)(?:\[\d+\])?: "
    rb"connect from ([^\r\n]*))\r?(?=\n|$)"
)

_DAY = operator.itemgetter(slice(0, 6))


def _days_ok(framer: Framer, days: set[bytes]) -> bool:
    """ "Sep 31" passes the regex, not the calendar."""
    return all(framer.bsd_time(day + b" 00:00:00") is not None for day in days)


def connects(state: State, block: bytes, source: str, framer: Framer) -> bytes | None:
    """Count the granted tcpd connections of a block in C (regex split, Counter, dict);
    return the other lines (None: a date is impossible, read the block line by line)."""
    parts = _CONNECT.split(b"\n" + block)
    lines, progs, clients = parts[1::4], parts[2::4], parts[3::4]
    if not _days_ok(framer, set(map(_DAY, lines))):
        return None
    rest = b"".join(parts[0::4])
    if rest.count(b"connect from ") != rest.count(b"refused connect from "):
        # a line left over may count a connection too ("Sep 01", an odd tag): counted
        # after these, it would change which line is first and last
        return None
    keys = list(zip(progs, clients, strict=True))
    counts = Counter(keys)
    last = dict(zip(keys, lines, strict=True))
    granted = state.granted
    first: dict[tuple[bytes, bytes], bytes] | None = None
    for key, count in counts.items():
        seen = granted.get(key)
        if seen is not None:
            seen[0] += count  # type: ignore[operator]
            seen[3], seen[4] = last[key], source
            continue
        if first is None:  # only while new hosts still turn up
            first = dict(zip(reversed(keys), reversed(lines), strict=True))
        granted[key] = [count, first[key], source, last[key], source]
    return rest
