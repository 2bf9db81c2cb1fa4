"""`access check`: tcpdchk's findings and more, each with file and line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.access.corpus import cases
from todokede.access import check
from todokede.access.check import Finding

SAMPLES = Path(__file__).parents[2] / "todokede" / "samples" / "access"


def findings(tmp_path: Path, allow: str, deny: str = "") -> list[tuple[str, int, str, str]]:
    (tmp_path / "hosts.allow").write_text(allow)
    (tmp_path / "hosts.deny").write_text(deny)
    return [(f.file, f.line, f.severity, f.message) for f in check(tmp_path)]


def test_bundled_sample_is_clean() -> None:
    assert check(SAMPLES) == []


@pytest.mark.parametrize(
    ("allow", "line", "severity", "fragment"),
    [
        ("sshd: 10.0.5.7/24\n", 1, "error", "host bits set"),
        ("sshd: 10.0.0.0/33\n", 1, "error", "bad mask or prefix length"),
        ("sshd: 10.0.0.0/0\n", 1, "error", "bad mask or prefix length"),
        ("sshd: ::1\n", 1, "error", "bare IPv6 address ::1"),
        ("sshd: [2001:db8::]/129\n", 1, "error", "prefix length out of range"),
        ("sshd: /nonexistent/list\n", 1, "error", "no such file"),
        ("sshd: @trusted\n", 1, "warning", "netgroups need NIS"),
        ("sshd 10.0.0.1\n", 1, "error", 'missing ":" separator'),
        ("sshd: ALL\nftpd: ALL", 2, "error", "missing newline or line too long"),
        ("sshd: ALL: bogus\n", 1, "error", 'bad option name: "bogus"'),
        ("sshd: ALL: allow : spawn x\n", 1, "error", 'option "allow" must be at end'),
        ("sshd: ALL: severity foo.bar\n", 1, "error", "bad syslog facility"),
        ("sshd: ALL: spawn echo %z\n", 1, "warning", "unrecognized %z"),
        ("sshd: EXCEPT 10.0.0.1\n", 1, "error", "starts with EXCEPT"),
        ("sshd:\n", 1, "error", "empty client list"),
        ("nosuchdaemon-xyz: ALL\n", 1, "warning", "unknown daemon name"),
        ("known: ALL\n", 1, "warning", "reserved word"),
        (" # old: ALL\n", 1, "warning", "column 1"),
        ("sshd: 10.0.0.1 # note\n", 1, "warning", "starts no comment"),
    ],
)
def test_finding(tmp_path: Path, allow: str, line: int, severity: str, fragment: str) -> None:
    got = findings(tmp_path, allow)
    assert any(
        (f, ln, sev) == ("hosts.allow", line, severity) and fragment in msg
        for f, ln, sev, msg in got
    ), got


@pytest.mark.parametrize(
    ("allow", "deny", "shadowed"),
    [
        ("sshd: ALL\nsshd: 10.0.0.1\n", "", ("hosts.allow", 2)),
        ("ALL: 10.0.0.0/8\n", "sshd: 10.1.2.3, 10.0.0.0/16\n", ("hosts.deny", 1)),
        ("sshd, ftpd: .example.com\n", "sshd: good.example.com\n", ("hosts.deny", 1)),
        ("ALL: 192.168.\n", "ALL: 192.168.1.\n", ("hosts.deny", 1)),
        ("ALL: [2001:db8::]/32\n", "ALL: [2001:db8::5]\n", ("hosts.deny", 1)),
    ],
)
def test_shadowed(tmp_path: Path, allow: str, deny: str, shadowed: tuple[str, int]) -> None:
    got = findings(tmp_path, allow, deny)
    assert [(f, ln) for f, ln, _, msg in got if "shadowed" in msg] == [shadowed]


@pytest.mark.parametrize(
    ("allow", "deny"),
    [
        ("sshd: ALL EXCEPT 10.0.0.1\n", "sshd: 10.0.0.1\n"),  # EXCEPT: not a superset
        ("sshd: 10.0.0.0/24\n", "sshd: 10.0.1.1\n"),
        ("sshd: ALL: aclexec /bin/false\n", "sshd: ALL\n"),  # a failed aclexec falls through
        ("ftpd: ALL\n", "sshd: 10.0.0.1\n"),
    ],
)
def test_not_shadowed(tmp_path: Path, allow: str, deny: str) -> None:
    assert not [m for *_, m in findings(tmp_path, allow, deny) if "shadowed" in m]


def test_finding_text() -> None:
    f = Finding("hosts.deny", 3, "error", "x")
    assert str(f) == "error: hosts.deny, line 3: x"
    assert f.to_dict() == {"file": "hosts.deny", "line": 3, "severity": "error", "message": "x"}


def _tcpdchk_errors(case: Path) -> list[tuple[str, int, str]]:
    """The errors and the skipped-line warnings tcpdchk -a printed for a corpus case."""
    text = (case / "tcpdchk.txt").read_text("latin-1")
    part = text.split("$ tcpdchk -d -a", 1)[1]
    out = []
    stopped: set[str] = set()  # tcpdchk reads on after a broken line; libwrap does not
    for line in part.splitlines():
        m = re.match(r"(error|warning): (hosts\.\w+), line (\d+): (.*)", line)
        if not m or m.group(2) in stopped:
            continue
        kind, file, n, message = m.groups()
        if kind == "error" and "setgid(" in message:
            continue  # Debian's dry-run bug with the user option (docs/access.md)
        if kind == "warning" and "missing" not in message:
            continue
        if message.startswith("missing newline"):
            n = str(int(n) + 1)  # access check reports the broken line itself
            stopped.add(file)
        out.append((file, int(n), message))
    return out


CORPUS = [p for p in cases() if _tcpdchk_errors(p)]


@pytest.mark.parametrize("case", CORPUS, ids=[p.name for p in CORPUS])
def test_reports_every_tcpdchk_error(case: Path) -> None:
    got = check(case)
    for file, line, message in _tcpdchk_errors(case):
        assert any(
            f.file == file and f.line == line and f.severity == "error" and message in f.message
            for f in got
        ), (file, line, message, [str(f) for f in got])
