"""The journal's export format ("Journal Export Format"): :class:`ExportParser` cuts a stream of
it into entries in bulk, :func:`export` writes entries in it.

One ``NAME=value`` line per field, a blank line after each entry; a field whose value has a
newline or other binary bytes is ``NAME``, a newline, its length as 64-bit little endian,
the bytes and a newline. The common entries can also come out as syslog lines made in C
(``_export.c``), for :class:`todokede.logs.journal.Texts` to take.
"""

from __future__ import annotations

import operator
import re
import struct
from collections.abc import Sequence
from typing import TYPE_CHECKING, overload

from todokede.errors import LogError

if TYPE_CHECKING:
    from todokede.logs.journal import Texts

try:
    from todokede.logs import _export
except ImportError:  # built without a C compiler: Texts.convert makes every line
    _export = None  # type: ignore[assignment]

Fields = dict[bytes, bytes]
# a run of syslog lines of one year made in C: (year, lines, count) (see _text_lines)
Run = tuple[int, bytes, int]

LONG_ENTRY = 1 << 20
_LEN = struct.Struct("<Q")
_FIELD_NAME = re.compile(rb"[A-Z0-9_]+")
_SPLIT = operator.methodcaller("split", b"=", 1)


class ExportParser:
    """Cuts a stream in the export format into entries (``feed`` any pieces, then ``end``).

    Entries of text fields only (nearly all) are split with a few C-level calls; an entry
    with a binary field is read field by field.
    """

    def __init__(self, source: str = "journal") -> None:
        self.source = source
        self.entries = 0  # entries read so far (for error messages)
        self._buf = b""
        self._names: set[bytes] = set()  # field names seen and found valid
        # an entry longer than LONG_ENTRY is parsed again only once its pieces have
        # doubled: reading it stays linear in its length
        self._parts: list[bytes] = []
        self._have = self._wait = 0
        self.cursor: bytes | None = None  # the last entry's __CURSOR (feed_lines)

    def feed(self, data: bytes) -> list[Fields]:
        """The whole entries in what was fed so far, each the dict of its fields."""
        return self._feed(data, None)  # type: ignore[return-value]  # Fields only

    def feed_lines(self, data: bytes, texts: Texts) -> list[Fields | Run]:
        """As :meth:`feed`, but the common entries come as runs of syslog lines made in C
        (``texts`` knows the zone's offsets): :meth:`Texts.take` reads both. Without the C
        extension, every entry comes as its fields."""
        return self._feed(data, texts if _export is not None else None)

    def _feed(self, data: bytes, texts: Texts | None) -> list[Fields | Run]:
        if self._wait:
            self._parts.append(data)
            self._have += len(data)
            if self._have < self._wait:
                return []
            buf = b"".join(self._parts)
            self._parts, self._have, self._wait = [], 0, 0
        else:
            buf = self._buf + data if self._buf else data
        out: list[Fields | Run] = []
        pos, n = 0, len(buf)
        bulk = True
        while pos < n:
            if bulk:
                if texts is None:
                    entries, pos, bulk = self._text_entries(buf, pos)
                    out += entries
                else:
                    items, pos, bulk = self._text_lines(buf, pos, texts)
                    out += items
                if pos >= n:
                    break
            if buf[pos] == 10:  # blank lines between entries
                pos += 1
                continue
            end = buf.find(b"\n\n", pos)
            if end < 0:
                break
            fields: Fields = {}
            for line in buf[pos:end].split(b"\n"):
                name, eq, value = line.partition(b"=")
                if not eq:
                    break  # a binary field: read this entry field by field
                fields[name] = value
            else:
                self._check(fields)
                out.append(fields)
                self.entries += 1
                self.cursor = fields.get(b"__CURSOR")
                pos = end + 2
                continue
            got1 = self._binary(buf, pos)
            if got1 is None:
                break
            fields, pos = got1
            out.append(fields)
            self.entries += 1
            self.cursor = fields.get(b"__CURSOR")
        rest = buf[pos:]
        if len(rest) > LONG_ENTRY:
            self._parts, self._have, self._wait = [rest], len(rest), 2 * len(rest)
            rest = b""
        self._buf = rest
        return out

    def _text_lines(
        self, buf: bytes, pos: int, texts: Texts
    ) -> tuple[list[Fields | Run], int, bool]:
        """As :meth:`_text_entries`, the common entries made into lines in C (one pass, no
        dict per entry: ``_export.c``); where the C pass stops at an entry not as journalctl
        writes it, :meth:`feed` goes on one entry at a time from there."""
        stop = self._text_stop(buf, pos)
        if stop <= pos:
            return [], pos, True
        items, end, count, cursor = _export.text_lines(buf, pos, stop, texts.zones, texts.zone)
        self.entries += count
        if count:
            self.cursor = cursor
        return items, (stop + 2 if end == stop else end), end == stop

    @staticmethod
    def _text_stop(buf: bytes, pos: int) -> int:
        """Where the entries of text fields only from ``pos`` end (before a blank line).

        A binary field's length is 8 bytes, the last a NUL for any length there can be,
        and a text field has no NUL: the entries before the first NUL are all text.
        """
        stop = buf.rfind(b"\n\n", pos)
        if stop > pos:
            nul = buf.find(b"\0", pos, stop)
            if nul >= 0:
                stop = buf.rfind(b"\n\n", pos, nul)
        return stop

    def _text_entries(self, buf: bytes, pos: int) -> tuple[list[Fields], int, bool]:
        """The whole entries from ``pos`` up to the first with a binary field, split by a
        few C-level calls (a split, then per entry a dict of its lines split at "="), and
        where they end; false when something is not as journalctl writes it, which
        :meth:`feed` then reads one field at a time, to say what is wrong.
        """
        stop = self._text_stop(buf, pos)
        if stop <= pos:
            return [], pos, True
        try:
            # a binary field's name line has no "=", nor has a stray blank line: both
            # make an element of one item, which dict() refuses
            out = [dict(map(_SPLIT, r.split(b"\n"))) for r in buf[pos:stop].split(b"\n\n")]
        except ValueError:
            return [], pos, False
        names = self._names
        new = set().union(*out) - names
        if any(_FIELD_NAME.fullmatch(name) is None for name in new):
            return [], pos, False
        if len(names) < 10_000:
            names |= new
        self.entries += len(out)
        return out, stop + 2, True

    @overload
    def end(self, texts: None = None) -> list[Fields]: ...
    @overload
    def end(self, texts: Texts | None) -> list[Fields | Run]: ...
    def end(self, texts: Texts | None = None) -> list[Fields] | list[Fields | Run]:
        """The stream is over: the entries still held (as :meth:`feed_lines` gives them
        when ``texts`` is given); an entry cut short is an error."""
        out: list[Fields | Run] = []
        if self._parts:
            held = b"".join(self._parts)
            self._parts, self._have, self._wait = [], 0, 0
            out = self._feed(held, texts if _export is not None else None)
            if self._parts:  # still cut short
                self._buf = b"".join(self._parts)
        if self._buf.strip(b"\n"):
            raise LogError(
                f"the export stream ends inside entry {self.entries + 1}", source=self.source
            )
        return out

    def _binary(self, buf: bytes, pos: int) -> tuple[Fields, int] | None:
        """One entry from ``pos``, any field binary; None when it is not all there yet."""
        fields: Fields = {}
        n = len(buf)
        while True:
            if pos >= n:
                return None
            if buf[pos] == 10:
                self._check(fields)
                return fields, pos + 1
            nl = buf.find(b"\n", pos)
            if nl < 0:
                return None
            line = buf[pos:nl]
            name, eq, value = line.partition(b"=")
            if eq:
                fields[name] = value
                pos = nl + 1
                continue
            if nl + 9 > n:
                return None
            (size,) = _LEN.unpack_from(buf, nl + 1)
            start = nl + 9
            if size > n - start - 1:
                if size > 1 << 40:
                    self._bad(f"field {_name(name)} claims {size} bytes")
                return None
            if buf[start + size] != 10:
                self._bad(f"binary field {_name(name)} is not followed by a newline")
            fields[name] = buf[start : start + size]
            pos = start + size + 1

    def _check(self, fields: Fields) -> None:
        names = self._names
        for name in fields:
            if name not in names:
                if _FIELD_NAME.fullmatch(name) is None:
                    self._bad(f"bad field name {_name(name)}")
                if len(names) < 10_000:  # the same few dozen names, entry after entry
                    names.add(name)

    def _bad(self, what: str) -> None:
        raise LogError(f"entry {self.entries + 1}: {what}", source=self.source)


def _name(raw: bytes) -> str:
    return repr(raw[:40].decode("ascii", "backslashreplace"))


def export(entries: Sequence[Fields]) -> bytes:
    """Entries in the export format (binary fields where a value is not one line of text)."""
    out = []
    for fields in entries:
        for name, value in fields.items():
            if b"\n" in value or any(c < 32 and c != 9 for c in value):
                out.append(name + b"\n" + _LEN.pack(len(value)) + value + b"\n")
            else:
                out.append(name + b"=" + value + b"\n")
        out.append(b"\n")
    return b"".join(out)
