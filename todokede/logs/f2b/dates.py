"""Finding the date in a log line as fail2ban does: its templates and its detector.

A template is a regex built from a ``datepattern`` (``%``-fields, see :mod:`.strptime`),
word-bounded unless the pattern starts or ends with ``**``, line-anchored with
``{^LN-BEG}``, unbounded with ``{UNB}``; ``EPOCH``/``LEPOCH`` (Unix times, also inside a
pattern as ``{EPOCH}``) and ``TAI64N`` are special. Without a ``datepattern`` the detector
tries fail2ban's default list (each default first anchored at the line start, then
anywhere); ``{^LN-BEG}`` keeps only the anchored ones; ``{DATE}`` inside a pattern stands for
each default; ``{NONE}`` means the lines carry no date. The detector remembers which
template matched last and where, and moves templates that hit to the front: on lines with
two dates this decides which one is taken, so it is done as fail2ban does it.
"""

from __future__ import annotations

import datetime
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from todokede.errors import ConfigError
from todokede.logs.f2b.strptime import FIELD_NAMES, FIELD_RE, FIELDS, to_time

_GROUPED = re.compile(r"(?<!(?:\(\?))(?<!\\)\((?!\?)")
_GROUP = re.compile(r"^((?:\(\?\w+\))?\^?(?:\(\?\w+\))?)(.*?)(\$?)$")
_GLOBAL_FLAGS = re.compile(r"((?:^|(?!<\\))\(\?[a-z]+\))")
_NO_BOUNDS = re.compile(r"^\{UNB\}")
_LINE_BEG = re.compile(r"^\{\^LN-BEG\}")
_START_ANCHOR = re.compile(r"^\((?:\?:)?\^\|\\b\|\\W\)")
_END_ANCHOR = re.compile(r"\(\?=\\b\|\\W\|\$\)$")
_NO_WORD_BEG = re.compile(r"^\(*(?:\(\?\w+\))?(?:\^|\(*\*\*|\((?:\?:)?\^)")
_NO_WORD_END = re.compile(r"(?<!\\)(?:\$\)?|\\b|\\s|\*\*\)*)$")
_DEL_WORD_BOUNDS = re.compile(r"^\(*(?:\(\?\w+\))?\(*\*\*|(?<!\\)\*\*\)*$")
_LINE_BOUND_BEG = re.compile(r"^(?:\(\?\w+\))?(?:\^|\((?:\?:)?\^(?!\|))")
_LINE_BOUND_END = re.compile(r"(?<![\\\|])(?:\$\)?)$")
_ALPHA_FIELD = re.compile(r"(?<!\%)\%[aAbBpc]")
_EPOCH_FIELD = re.compile(r"(?<!\\)\{L?EPOCH\}", re.IGNORECASE)
_DATE_FIELD = re.compile(r"(?<!\\)\{DATE\}", re.IGNORECASE)

LINE_BEGIN, LINE_END, WORD_BEGIN, WORD_END = 8, 4, 2, 1
ANCHORED = LINE_BEGIN | LINE_END

DEFAULT_PATTERNS = (
    r"%ExY(?P<_sep>[-/.])%m(?P=_sep)%d(?:T|  ?)%H:%M:%S(?:[.,]%f)?(?:\s*%z)?",
    r"(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?",
    r"(?:%a )?%b %d %ExY %k:%M:%S(?:\.%f)?",
    r"%d(?P<_sep>[-/])%m(?P=_sep)(?:%ExY|%Exy) %k:%M:%S",
    r"%d(?P<_sep>[-/])%b(?P=_sep)%ExY[ :]?%H:%M:%S(?:\.%f)?(?: %z)?",
    r"%m/%d/%ExY:%H:%M:%S",
    r"%m-%d-%ExY %k:%M:%S(?:\.%f)?",
    r"EPOCH",
    r"{^LN-BEG}%H:%M:%S",
    r"^<%m/%d/%Exy@%H:%M:%S>",
    r"%Exy%Exm%Exd  ?%H:%M:%S",
    r"%b %d, %ExY %I:%M:%S %p",
    r"^%b-%d-%Exy %k:%M:%S",
    r"%ExY%Exm%Exd(?:T|  ?)%ExH%ExM%ExS(?:[.,]%f)?(?:\s*%z)?",
    r"(?:%Z )?(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?",
    r"(?:%z )?(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?",
    r"TAI64N",
)


class Template:
    """One way of writing a date; ``kind`` is "pattern", "epoch" or "tai64n"."""

    def __init__(self, kind: str, name: str, pattern: str | None = None) -> None:
        self.kind = kind
        self.name = name
        self.pattern = pattern
        self.regex = ""
        self.flags = 0
        self.weight = 1.0
        self.hits = 0  # shared by every detector using this template, as in fail2ban
        self.group = 1
        self.long_epoch = False
        self._compiled: re.Pattern[str] | None = None
        self._lines: re.Pattern[str] | None = None
        self.default_line_start = False  # one of fail2ban's defaults, anchored by "^"

    def set_regex(self, regex: str, word_begin: bool | str = True, word_end: bool = True) -> None:
        regex = regex.strip()
        flags = _GLOBAL_FLAGS.search(regex)
        if flags:
            regex = _GLOBAL_FLAGS.sub("", regex, count=1)
        bound_begin = word_begin and not _NO_WORD_BEG.search(regex)
        bound_end = word_end and not _NO_WORD_END.search(regex)
        if not _GROUPED.search(regex):
            regex = _GROUP.sub(r"\1(\2)\3", regex)
        self.flags = 0
        if bound_begin:
            if word_begin != "start":
                self.flags |= WORD_BEGIN
                regex = r"(?=^|\b|\W)" + regex
            else:
                self.flags |= LINE_BEGIN
                regex = r"^(?:\W{0,2})?" + regex
                if not self.name.startswith("{^LN-BEG}"):
                    self.name = "{^LN-BEG}" + self.name
        if bound_end:
            self.flags |= WORD_END
            regex += r"(?=\b|\W|$)"
        if not self.flags & LINE_BEGIN and _LINE_BOUND_BEG.search(regex):
            self.flags |= LINE_BEGIN
        if not self.flags & LINE_END and _LINE_BOUND_END.search(regex):
            self.flags |= LINE_END
        regex = _DEL_WORD_BOUNDS.sub(lambda m: m.group().replace("**", ""), regex)
        self.regex = (flags.group(1) + regex) if flags else regex
        self._compiled = None

    def compile(self) -> re.Pattern[str]:
        if self._compiled is None:
            try:
                self._compiled = re.compile(self.regex)
            except (re.error, OverflowError, RecursionError) as exc:
                raise ConfigError(f"datepattern {self.name!r}: {exc}") from exc
        return self._compiled

    def count_lines(self, text: str) -> int:
        """How many lines of ``text`` (lines joined by newlines) this template finds a date
        at the start of, each within its line (a match that runs into the next line takes
        that line's start: the count is then short). Only for templates anchored at the
        line start."""
        if self._lines is None:
            self._lines = re.compile(self.regex, re.MULTILINE)
        return len(self._lines.findall(text))

    def search(self, line: str, pos: int = 0, endpos: int | None = None) -> re.Match[str] | None:
        rx = self._compiled or self.compile()
        m = rx.search(line, pos, len(line) if endpos is None else endpos)
        if m:
            self.hits += 1
        return m

    def date(
        self, m: re.Match[str], now: datetime.datetime, default_tz: int | None
    ) -> tuple[float, datetime.datetime]:
        if self.kind == "pattern":
            return to_time(m.groupdict(), now, default_tz)
        if self.kind == "tai64n":
            t = float(int(m.group(1)[2:17], 16))
        else:
            v = m.group(self.group)
            if self.long_epoch and len(v) >= 13:
                t = float(v) / (1000000 if len(v) >= 16 and "." not in v else 1000)
            else:
                t = float(v)
        wall = datetime.datetime(1970, 1, 1) + datetime.timedelta(seconds=int(t))
        return t, wall


def _pattern_template(pattern: str) -> Template:
    word_begin: bool | str = True
    word_end = True
    rx = pattern
    if _NO_BOUNDS.search(rx):
        rx = _NO_BOUNDS.sub("", rx)
        word_begin = word_end = False
    if word_begin and _LINE_BEG.search(rx):
        rx = _LINE_BEG.sub("", rx)
        word_begin = "start"
    fmt = FIELD_RE.sub(r"%(\1)s", rx)
    try:
        name = fmt % FIELD_NAMES
        regex = fmt % FIELDS
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(
            f"datepattern {pattern!r}: an invalid field or an unescaped percent sign ({exc})"
        ) from exc
    if _ALPHA_FIELD.search(rx):
        regex = r"(?iu)" + regex
    t = Template("pattern", name, pattern)
    t.set_regex(regex, word_begin, word_end)
    return t


def _epoch_template(line_begin: bool, pattern: str | None = None, long: bool = False) -> Template:
    epoch = r"\d{10,11}(?:\d{3}(?:\.\d{1,6}|\d{3})?)?" if long else r"\d{10,11}\b(?:\.\d{3,6})?"
    name = pattern or ("LongEpoch" if long else "Epoch")
    t = Template("epoch", name)
    t.long_epoch = long
    if pattern:
        t.group = 2
        t.set_regex("(" + _EPOCH_FIELD.sub(lambda m: f"({epoch})", pattern) + ")")
    elif not line_begin:
        t.set_regex(
            rf"((?:^|(?P<square>(?<=^\[))|(?P<selinux>(?<=\baudit\()))"
            rf"{epoch})(?:(?(selinux)(?=:\d+\)))|(?(square)(?=\])))",
            word_begin=False,
        )
    else:
        t.set_regex(rf"((?P<square>(?<=^\[))?{epoch})(?(square)(?=\]))", "start", True)
    return t


_CACHE: dict[str, Template] = {}


def template_for(pattern: str, key: str | None = None) -> Template:
    """The (shared) template of a pattern."""
    if key is None:
        key = pattern if "%" in pattern else pattern.upper()
    t = _CACHE.get(key)
    if t is None:
        if "EPOCH" in key:
            if _EPOCH_FIELD.search(pattern):
                t = _epoch_template(False, pattern, "LEPOCH" in key)
            elif key in ("EPOCH", "{^LN-BEG}EPOCH", "^EPOCH"):
                t = _epoch_template(key != "EPOCH")
            elif key in ("LEPOCH", "{^LN-BEG}LEPOCH", "^LEPOCH"):
                t = _epoch_template(key != "LEPOCH", long=True)
        if t is None:
            if key in ("TAI64N", "{^LN-BEG}TAI64N", "^TAI64N"):
                t = Template("tai64n", "TAI64N")
                t.set_regex("@[0-9a-f]{24}", "start" if key != "TAI64N" else False)
            else:
                t = _pattern_template(pattern)
    _CACHE[key] = t
    return t


def _wrapped(t: Template, wrap: Callable[[str], str]) -> Template:
    """The template ``t`` placed inside ``wrap`` (by its pattern when it has one)."""
    name = wrap(t.name)
    found = _CACHE.get(name)
    if found:
        return found
    if t.pattern is None:
        return template_for(name)
    regex = wrap(t.pattern)
    return _CACHE.get(regex) or template_for(regex)


def _unbound(pattern: str) -> str:
    for rx in (_NO_BOUNDS, _LINE_BEG, _START_ANCHOR):
        pattern = rx.sub("", pattern)
    return _END_ANCHOR.sub("", pattern)


def _pre_match(pattern: str) -> Callable[[str], str]:
    def wrap(s: str) -> str:
        return _DATE_FIELD.sub(lambda m: _unbound(s), pattern)

    return wrap


_DEFAULTS: list[Template] = []
_DEFAULTS_ANCHORED: list[Template] = []


def default_templates(with_anchored: bool = True) -> list[Template]:
    if not _DEFAULTS:
        anchored: list[Template] = []
        for p in DEFAULT_PATTERNS:
            t = template_for(p)
            _DEFAULTS.append(t)
            if not t.name.startswith(("{^LN-BEG}", "^")):
                a = _wrapped(t, lambda s: "{^LN-BEG}" + s)
                if a.name != t.name:
                    a.weight = 100.0
                    anchored.append(a)
        _DEFAULTS_ANCHORED.extend(anchored + _DEFAULTS)
        for t in _DEFAULTS_ANCHORED:
            t.default_line_start = (
                t.kind == "pattern"
                and bool(t.flags & LINE_BEGIN)
                and t.regex.removeprefix("(?iu)").startswith("^")
            )
    return _DEFAULTS_ANCHORED if with_anchored else _DEFAULTS


@dataclass
class _Slot:
    template: Template
    hits: int = 0
    last_used: float = 0.0
    distance: int = 0x7FFFFFFF

    @property
    def weight(self) -> float:
        return self.hits * self.template.weight / max(1, self.distance)


class DateDetector:
    """Finds the date of each line; keeps fail2ban's state between lines."""

    def __init__(self, default_tz: int | None = None) -> None:
        self.slots: list[_Slot] = []
        self._names: set[str] = set()
        self.default_tz = default_tz
        self._last_pos: tuple[int, str, str] = (1, "", "")
        self._last_end: tuple[int, str, str] = (0x7FFFFFFF, "", "")
        self._last_idx = 0x7FFFFFFF
        self._first_unused = 0

    def settled(self) -> Template | None:
        """The template every line is tried with first and taken from without looking
        further, when there is one: fail2ban's own line-start templates, the last used
        and first in the list. A line it matches then changes nothing but the counts."""
        if self._last_idx != 0 or not self.slots:
            return None
        t = self.slots[0].template
        return t if t.default_line_start else None

    def add_hits(self, count: int) -> None:
        """``count`` more lines found by the :meth:`settled` template."""
        slot = self.slots[0]
        slot.hits += count
        slot.template.hits += count
        slot.last_used = time.time()

    def take_first(self, m: re.Match[str], line: str) -> None:
        """What :meth:`match` does with a line the :meth:`settled` template finds (``m``)."""
        self.slots[0].template.hits += 1
        self._hit(self.slots[0], m, line, 0)

    def _add(self, t: Template, ignore_dup: bool = False) -> None:
        if t.name in self._names:
            if ignore_dup:
                return
            raise ConfigError(f"datepattern: there is already a template named {t.name}")
        self._names.add(t.name)
        self.slots.append(_Slot(t))

    def append(self, pattern: str) -> None:
        """One line of a ``datepattern``."""
        key = pattern if "%" in pattern else pattern.upper()
        t = _CACHE.get(key)
        if not t:
            if key == "{^LN-BEG}":
                self.add_defaults(line_begin=True)
                return
            if key == "{DEFAULT}":
                # fail2ban's filter here keeps none: a detector left empty takes every
                # default at its first line
                return
            if "{DATE}" in key:
                self.add_defaults(pre_match=pattern)
                return
            t = template_for("{UNB}^", key) if key == "{NONE}" else template_for(pattern, key)
        _CACHE[key] = t
        self._add(t)

    def extend(self, patterns: list[str]) -> None:
        """Each line of a ``datepattern``, checked now (ConfigError if one is bad)."""
        for p in patterns:
            self.append(p)
        for slot in self.slots:
            slot.template.compile()

    def add_defaults(self, line_begin: bool = False, pre_match: str | None = None) -> None:
        ignore_dup = bool(self.slots)
        for t in default_templates(with_anchored=pre_match is None):
            if line_begin and not t.flags & LINE_BEGIN:
                continue
            if pre_match is not None:
                t = _wrapped(t, _pre_match(pre_match))
            self._add(t, ignore_dup)

    def match(self, line: str) -> tuple[re.Match[str] | None, Template | None]:
        if not self.slots:
            self.add_defaults()
        slots = self.slots
        m: re.Match[str] | None = None
        found: tuple[re.Match[str] | None, int, int, int] = (None, 0x7FFFFFFF, 0x7FFFFFFF, -1)
        skip = 0x7FFFFFFF
        i = self._last_idx
        slot = slots[0]
        if i < len(slots):
            slot = slots[i]
            t = slot.template
            if t.flags & ANCHORED:
                m = t.search(line)
                skip = i
            else:
                dist, end = self._last_pos[0], self._last_end[0]
                lp, le = self._last_pos, self._last_end
                if (
                    line[dist - 1 : dist] == lp[1]
                    or (line[dist : dist + 1] == lp[2] and not lp[2].isalnum())
                ) and (
                    line[end : end + 1] == le[2]
                    or (line[end - 1 : end] == le[1] and not le[1].isalnum())
                ):
                    m = t.search(line, dist, end)
                else:
                    m = t.search(line)
                    skip = i
            if m and not (
                len(slots) == 1
                or t.flags & ANCHORED
                or (m.start() == self._last_pos[0] and m.end() == self._last_end[0])
            ):
                found, m = (m, m.start(), m.end(), i), None
        if not m:
            m, i, slot = self._search(line, skip, found)
        if not m:
            return None, None
        self._hit(slot, m, line, i)
        return m, slot.template

    def _search(
        self, line: str, skip: int, found: tuple[re.Match[str] | None, int, int, int]
    ) -> tuple[re.Match[str] | None, int, _Slot]:
        slots = self.slots
        m: re.Match[str] | None = None
        i = 0
        slot = slots[0]
        while i < len(slots):
            if i == skip:
                i += 1
                continue
            slot = slots[i]
            t = slot.template
            m = t.search(line)
            if m:
                dist = m.start()
                if i + 1 >= len(slots) or t.flags & ANCHORED:
                    break
                if dist == 0 and slot.hits and not slots[i + 1].template.hits:
                    break
                if dist > slot.distance or dist > self._last_pos[0]:
                    if dist < found[1]:
                        found = (m, dist, m.end(), i)
                    m = None
                    i += 1
                    continue
                break
            i += 1
        if not m and found[0]:
            m, i = found[0], found[3]
            slot = slots[i]
        return m, i, slot

    def _hit(self, slot: _Slot, m: re.Match[str], line: str, i: int) -> None:
        dist, end = m.start(), m.end()
        slot.hits += 1
        slot.last_used = time.time()
        slot.distance = dist
        if self._first_unused == i:
            self._first_unused += 1
        self._last_pos = (dist, line[dist - 1 : dist], line[dist : dist + 1])
        self._last_end = (end, line[end - 1 : end], line[end : end + 1])
        if i and i != self._last_idx:
            i = self._reorder(i)
        self._last_idx = i

    def _reorder(self, num: int) -> int:
        slots = self.slots
        slot = slots[num]
        untime = slot.last_used - 300
        weight = slot.weight
        pos = self._first_unused if self._first_unused < num else num // 2

        def movable() -> bool:
            return weight > slots[pos].weight or untime > slots[pos].last_used

        if not movable():
            if pos == num - 1:
                return num
            pos = num - 1
            if not movable():
                return num
        del slots[num]
        slots[pos:0] = [slot]
        while self._first_unused < len(slots) and slots[self._first_unused].hits:
            self._first_unused += 1
        return pos

    def date(
        self, m: re.Match[str], t: Template, now: datetime.datetime
    ) -> tuple[float, datetime.datetime] | None:
        """The time of a match (None when its fields make no valid date)."""
        try:
            return t.date(m, now, self.default_tz)
        except ValueError:
            return None
