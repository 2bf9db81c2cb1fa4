"""The annotated corpus of real Postfix lines: each sample parses into what expected.tsv says."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from todokede.logs import Framer, YearRule, parse_line

CORPUS = Path(__file__).parent / "corpus"


def _samples() -> dict[str, str]:
    out: dict[str, str] = {}
    heading = None
    for line in (CORPUS / "samples-by-kind.txt").read_text().splitlines():
        if line.startswith("## "):
            heading = line[3:].split("   [")[0].strip()
        elif heading and line.strip() and not line.startswith("#"):
            out.setdefault(heading, line)
    return out


def _expected() -> list[tuple[str, str]]:
    rows = []
    for line in (CORPUS / "expected.tsv").read_text().splitlines():
        if line and not line.startswith("#"):
            heading, _, expect = line.partition("\t")
            rows.append((heading, expect))
    return rows


SAMPLES = _samples()


def test_every_sample_is_annotated() -> None:
    annotated = {h for h, _ in _expected()}
    assert set(SAMPLES) == annotated


@pytest.mark.parametrize(("heading", "expect"), _expected(), ids=[h for h, _ in _expected()])
def test_sample_parses_as_annotated(heading: str, expect: str) -> None:
    framer = Framer(YearRule.newest(date(2026, 12, 31)))
    line = SAMPLES[heading].encode()
    assert framer.frame(line) is not None, "every corpus line is valid syslog"
    ev = parse_line(line, framer)
    if expect == "none":
        assert ev is None
        return
    kind, *pairs = expect.split(" ")
    assert ev is not None
    assert ev.kind == kind
    for pair in pairs:
        name, _, value = pair.partition("=")
        got = getattr(ev, name)
        want: object = value
        if name == "rcpts":
            got = got[0]
        elif name == "size":
            want = int(value)
        assert got == want, name


@pytest.mark.parametrize("name", ["closed.maillog", "open.maillog"])
def test_whole_logs_frame(name: str) -> None:
    framer = Framer(YearRule.newest(date(2026, 12, 31)))
    lines = (CORPUS / name).read_bytes().splitlines()
    assert lines
    assert all(framer.frame(line) is not None for line in lines)
