"""fail2ban's own annotated sample logs, filter by filter and line by line.

Each sample file under ``fail2ban/tests/files/logs/`` (installed with Debian's fail2ban)
precedes lines with ``# failJSON: {...}`` saying whether the filter of the same name must
match and what (host, user, time...); ``# filterOptions:`` switches the filter's options
(``mode``, ``logtype``...) for the lines that follow, ``# addFILE:`` reads another file
too. The checks are those of fail2ban's ``samplestestcase.py``: every regex may match
(fail2ban's test mode), the clock is fail2ban's test clock (2005-08-14 10:00 UTC, in
Central European time), journal lines come with their time, and the fields compared are
the annotation's own.
"""

from __future__ import annotations

import datetime
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from todokede.logs import f2b

PACKAGE = Path("/usr/lib/python3/dist-packages/fail2ban")
LOGS = PACKAGE / "tests/files/logs"
FILTERS = Path("/etc/fail2ban/filter.d")
TEST_NOW = 1124013600
HEADER = re.compile(r"^#+ ?(failJSON|(?:file|filter)Options|addFILE):(.+)$")
# every filter Debian ships is compared; filters left out, with the reason (see docs/scan.md)
LEFT_OUT: dict[str, str] = {}


def shipped() -> list[str]:
    if not FILTERS.is_dir():
        return []
    return sorted(
        p.stem
        for p in FILTERS.glob("*.conf")
        if not p.name.endswith("common.conf") and not p.name.startswith(".")
    )


def _lines(path: Path) -> Iterator[str]:
    for raw in path.read_bytes().splitlines(keepends=True):
        yield raw.decode("utf-8", "replace").rstrip("\r\n")


def _check(cond: str | None, name: str, opts: dict[str, Any]) -> bool:
    # the annotations' conditions are Python expressions over these two names
    return not cond or bool(eval(cond, {"__builtins__": {}}, {"name": name, "opts": opts}))


class Sample:
    """One sample file's walk, with the matchers of each option set kept across lines."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.matchers: dict[str, f2b.Matcher] = {}
        self.active: list[tuple[f2b.Matcher, dict[str, Any]]] = []
        self.errors: list[str] = []
        self.checked = 0

    def matcher(self, opts: dict[str, Any]) -> f2b.Matcher:
        flt_opts = {k: v for k, v in opts.items() if not k.startswith("test.")}
        key = opts.get("test.filter-name") or (str(flt_opts) if flt_opts else "")
        if key not in self.matchers:
            spec = self.name + (
                "[" + ", ".join(f'{k}="{v}"' for k, v in flt_opts.items()) + "]" if flt_opts else ""
            )
            self.matchers[key] = f2b.Matcher(
                # no logtype set from a backend: fail2ban's sample test sets none either
                f2b.load(spec, [FILTERS], logtype=None),
                now=TEST_NOW,
                check_all=True,
            )
        return self.matchers[key]

    def options(self, data: Any, common: dict[str, Any]) -> bool:
        self.active = []
        skip = False
        for one in data if isinstance(data, list) else [data]:
            opts = {**common, **one}
            skip = not _check(opts.get("test.condition"), self.name, opts)
            if not skip:
                self.active.append((self.matcher(opts), opts))
        return skip

    def run(self) -> None:
        files = [self.name]
        common: dict[str, Any] = {}
        i = 0
        while i < len(files):
            where = files[i]
            i += 1
            lines = _lines(LOGS / where)
            skip = False
            for n, line in enumerate(lines, 1):
                h = HEADER.match(line)
                data: Any = {}
                if h:
                    data = json.loads(h.group(2))
                    kind = h.group(1)
                    if kind == "fileOptions":
                        common = data
                        continue
                    if kind == "filterOptions":
                        skip = self.options(data, common)
                        continue
                    if kind == "addFILE":
                        files.append(data)
                        continue
                    line = next(lines, "")
                    n += 1
                elif skip or line.startswith("#") or not line.strip():
                    continue
                if skip:
                    continue
                if not self.active:
                    self.active = [(self.matcher({}), {})]
                for m, opts in self.active:
                    if not _check(data.get("constraint"), self.name, opts):
                        continue
                    self.line(m, opts, line, data, f"{where}:{n} {opts}")

    def line(
        self, m: f2b.Matcher, opts: dict[str, Any], line: str, want: dict[str, Any], where: str
    ) -> None:
        self.checked += 1
        if opts.get("logtype") == "journal":
            line = opts.get("test.prefix-line", "") + line
            stamp = datetime.datetime.utcfromtimestamp(TEST_NOW).isoformat()
            got = m.process(line, (TEST_NOW, datetime.datetime.fromtimestamp(TEST_NOW)), stamp)
        else:
            got = m.process(line)
        got = [g for g in got if g.host is not None and not g.nofail]
        problem = compare(got, want)
        if problem:
            self.errors.append(f"{where}: {problem}\n    {line}")


def _time(text: str) -> float:
    fmt = "%Y-%m-%dT%H:%M:%S.%f" if "." in text else "%Y-%m-%dT%H:%M:%S"
    local = datetime.datetime.strptime(text, fmt)
    return time.mktime(local.timetuple()) + local.microsecond / 1e6


def _value(hit: f2b.Failure, key: str) -> Any:
    v = hit.fields.get(key)
    if v is None and key == "host":
        return hit.host
    if v is None and key == "attempts":
        return hit.attempts
    return v


def _same(got: Any, want: Any, key: str) -> bool:
    if isinstance(got, (set, list, dict, tuple)):
        return sorted(got) == sorted(want)
    if key == "host" and isinstance(got, str) and isinstance(want, str):
        return got == f2b.canonical_host(want) or got == want
    return bool(got == want)


def compare(got: list[f2b.Failure], want: dict[str, Any]) -> str:
    if not got:
        return "no match, but the annotation says it matches" if want.get("match") else ""
    if not want.get("match"):
        return f"matched (regex {got[0].regex}, host {got[0].host}), but should not"
    if len(got) != 1:
        return f"several regexes matched: {[g.regex for g in got]}"
    hit = got[0]
    for key, v in want.items():
        if key in ("time", "match", "desc", "constraint"):
            continue
        if not _same(_value(hit, key), v, key):
            return f"{key}: got {_value(hit, key)!r}, want {v!r}"
    if want.get("time") is not None and hit.time != _time(want["time"]):
        return f"time: got {hit.time}, want {_time(want['time'])} ({want['time']})"
    return ""


@pytest.mark.peer
@pytest.mark.parametrize("name", shipped() or ["(fail2ban not installed)"])
def test_sample_log(name: str, fail2ban_clock: None) -> None:
    if not LOGS.is_dir() or not FILTERS.is_dir():
        pytest.skip("fail2ban and its sample logs are not installed (run scripts/peers as root)")
    if name in LEFT_OUT:
        pytest.skip(f"{name}: {LEFT_OUT[name]}")
    assert (LOGS / name).is_file(), f"no sample log for the filter {name}"
    sample = Sample(name)
    sample.run()
    assert sample.checked > 0
    assert not sample.errors, f"{len(sample.errors)} lines differ:\n" + "\n".join(
        sample.errors[:15]
    )
