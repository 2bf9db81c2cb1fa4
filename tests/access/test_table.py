"""Reading hosts.allow/hosts.deny as libwrap does: lines, continuations, limits; and any
bytes at all give warnings with file and line, never an exception (fuzzed)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from todokede.access import Request, Rules, check
from todokede.access.table import RawRule, RawWarning, parse_table, split_at, tokens


def rules_of(data: bytes) -> list[tuple[int, str, str, str | None]]:
    return [
        (e.line, e.daemons.strip(), e.clients.strip(), e.options)
        for e in parse_table(data)
        if isinstance(e, RawRule)
    ]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"a: b\n", [(1, "a", "b", None)]),
        (b"a: b : allow\n", [(1, "a", "b", " allow\n")]),
        (b"# c\na: b\n", [(2, "a", "b", None)]),
        (b" # c: d\n", [(1, "# c", "d", None)]),  # only column 1 starts a comment
        (b"# ends in \\\na: b\n", []),  # the comment swallows the next line
        (b"a: b, \\\n c\n", [(2, "a", "b,  c", None)]),  # matched line = last physical
        (b"a: b \\ \n", [(1, "a", "b \\", None)]),  # backslash-space is no continuation
        (b"\n  \t\r\na: b\n", [(3, "a", "b", None)]),
        (b"[::1]: x\n", [(1, "[::1]", "x", None)]),  # ':' inside brackets does not split
    ],
)
def test_logical_lines(data: bytes, expected: list[tuple[int, str, str, str | None]]) -> None:
    assert rules_of(data) == expected


def test_nul_joins_lines_like_fgets() -> None:
    entries = parse_table(b"a: b\0junk\nc: d\n")
    assert [type(e) for e in entries] == [RawRule]
    assert isinstance(entries[0], RawRule) and entries[0].daemons == "a"
    assert (entries[0].line, entries[0].clients, entries[0].options) == (1, " bc", " d\n")


@pytest.mark.parametrize(
    ("data", "line", "message"),
    [
        (b"a: b\nc: d", 1, "missing newline or line too long"),
        (b"a: " + b"x" * 2044 + b"\n", 0, "missing newline or line too long"),
        (b"no colon here\n", 1, 'missing ":" separator'),
    ],
)
def test_warnings(data: bytes, line: int, message: str) -> None:
    warnings = [e for e in parse_table(data) if isinstance(e, RawWarning)]
    assert [(w.line, w.message) for w in warnings] == [(line, message)]


def test_line_of_2047_bytes_fits() -> None:
    data = b"a: " + b"x" * 2043 + b"\n"  # 2047 bytes with the newline
    assert len(data) == 2047
    assert [type(e) for e in parse_table(data)] == [RawRule]


def test_split_and_tokens() -> None:
    assert split_at("a[:]b:c", ":") == ("a[:]b", "c")
    assert split_at("abc", ":") is None
    assert tokens(" a,b\tc\r\n d ") == ["a", "b", "c", "d"]


WARNING = re.compile(r"^(warning|error): hosts\.(allow|deny), line \d+: \S")


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    allow=st.one_of(st.binary(max_size=600), st.text(max_size=300).map(str.encode)),
    deny=st.binary(max_size=300),
)
def test_any_bytes_warn_with_file_and_line(tmp_path: Path, allow: bytes, deny: bytes) -> None:
    (tmp_path / "hosts.allow").write_bytes(allow)
    (tmp_path / "hosts.deny").write_bytes(deny)
    rules = Rules.load(tmp_path)
    for req in (Request("sshd", "10.0.0.1", "unknown"), Request("x", None, "paranoid", "u")):
        decision = rules.decide(req, dry_run=True)
        assert decision.access in ("granted", "denied", "delegated")
        for w in decision.warnings:
            assert WARNING.match(w), w
    for finding in check(tmp_path):
        assert finding.file in ("hosts.allow", "hosts.deny") and finding.line >= 0
        assert finding.message
