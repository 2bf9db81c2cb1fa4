"""Reading hosts.allow / hosts.deny exactly as libwrap's table_match() does.

libwrap reads each file with fgets() into a 2048-byte buffer, joins backslash-newline
continuations (xgets), skips lines whose first byte is ``#`` and blank lines, splits at the
first ``:`` outside ``[...]`` and then at the next. A logical line with no final newline
(or longer than 2047 bytes) ends the scan of that file with a warning. Bytes are decoded
as Latin-1 so any input maps 1:1 to text and nothing can fail to decode.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

BUFLEN = 2048  # libwrap's BUFSIZ-sized line buffer, NUL included
SEPARATORS = ", \t\r\n"  # strtok() separators of daemon and client lists
WHITESPACE = " \t\r\n"


@dataclass(frozen=True, slots=True)
class RawRule:
    """One logical line that has a daemon and a client field."""

    line: int  # number of the LAST physical line, as libwrap reports it
    daemons: str
    clients: str
    options: str | None  # the text after the second ':' (None when absent)
    text: str  # the whole logical line, newline stripped (for `access check`)


@dataclass(frozen=True, slots=True)
class RawWarning:
    """A line libwrap warns about while scanning (then skips, or stops at)."""

    line: int
    message: str
    fatal: bool  # True: "missing newline or line too long", the scan ends here


Entry = RawRule | RawWarning


def split_at(string: str, delimiter: str) -> tuple[str, str] | None:
    """libwrap's split_at(): split at the first delimiter outside square brackets."""
    if delimiter not in string:
        return None
    if "[" not in string and "]" not in string:
        i = string.index(delimiter)
        return string[:i], string[i + 1 :]
    depth = 0
    for i, ch in enumerate(string):
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif depth == 0 and ch == delimiter:
            return string[:i], string[i + 1 :]
    return None


_TOKEN = re.compile(f"[^{re.escape(SEPARATORS)}]+")


def tokens(text: str) -> list[str]:
    """strtok(text, ", \\t\\r\\n")."""
    return _TOKEN.findall(text)


def _logical_lines(data: bytes) -> list[tuple[int, bytes]]:
    """Emulate xgets() over the whole file: (line counter after the read, buffer).

    fgets() stops at a newline or when the buffer is full; strlen() stops at a NUL byte,
    so whatever follows a NUL in the same read is lost, as in C.
    """
    out: list[tuple[int, bytes]] = []
    pos = 0
    line = 0
    end = len(data)
    while True:
        buf = bytearray()
        room = BUFLEN
        while pos < end and room > 1:
            limit = min(end, pos + room - 1)
            nl = data.find(b"\n", pos, limit)
            stop = limit if nl < 0 else nl + 1
            chunk = data[pos:stop]
            pos = stop
            nul = chunk.find(b"\0")
            if nul >= 0:
                chunk = chunk[:nul]
            if chunk.endswith(b"\n"):
                line += 1
                if len(chunk) >= 2 and chunk[-2:-1] == b"\\":
                    buf += chunk[:-2]
                    room -= len(chunk) - 2
                    continue
                buf += chunk
                break
            buf += chunk
            room -= len(chunk)
        if not buf:
            return out  # only at end of file
        out.append((line, bytes(buf)))
        if not buf.endswith(b"\n"):
            return out  # the scan ends at the first unterminated line


def parse_table(data: bytes) -> list[Entry]:
    """Every rule and every scan warning of one file, in file order."""
    entries: list[Entry] = []
    for line, raw in _logical_lines(data):
        text = raw.decode("latin-1")
        if not text.endswith("\n"):
            entries.append(RawWarning(line, "missing newline or line too long", True))
            break
        if text[0] == "#" or not text.strip(WHITESPACE):
            continue
        first = split_at(text, ":")
        if first is None:
            entries.append(RawWarning(line, 'missing ":" separator', False))
            continue
        daemons, rest = first
        second = split_at(rest, ":")
        clients, options = (rest, None) if second is None else second
        entries.append(RawRule(line, daemons, clients, options, text.rstrip("\n")))
    return entries
