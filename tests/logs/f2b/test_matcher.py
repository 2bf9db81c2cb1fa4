# ruff: noqa: E501 - regexes and log lines read best unbroken
"""The matcher against fail2ban's own Filter, run by the system's Python, on regexes that
use every tag: for each line both must find the same failures with the same fields."""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.logs.f2b.oracle import fail2ban
from todokede.logs import f2b
from todokede.logs.f2b.regex import resolve_tags

NOW = 1124013600

CASES: list[tuple[str, dict[str, Any], list[str]]] = [
    (
        "alt-users-tuples-and-ids",
        {
            "failregex": [
                r"^\s*\S+ login failed: user=<F-USER>\S*</F-USER> alt=<F-ALT_USER1>\S+</F-ALT_USER1> from <HOST>$",
                r"^\s*\S+ pair <F-TUPLE_K1>\S+</F-TUPLE_K1> <F-TUPLE_K2>\S+</F-TUPLE_K2> <F-ID/> <ADDR>$",
                r"^\s*\S+ net <SUBNET>$",
                r"^\s*\S+ cidr <ADDR>/<CIDR> port <F-PORT/>$",
                r"^\s*\S+ v4 <IP4> v6 <IP6>$",
                r"^\s*\S+ dns <DNS>$",
            ]
        },
        [
            "Jan 23 21:59:59 h login failed: user= alt=bob from 192.0.2.1",
            "Jan 23 21:59:59 h login failed: user=eve alt=bob from ::ffff:192.0.2.2",
            "Jan 23 21:59:59 h login failed: user=eve alt=bob from [2001:DB8::0:3]",
            "Jan 23 21:59:59 h login failed: user=eve alt=bob from host.example.org",
            "Jan 23 21:59:59 h pair a b session-7 192.0.2.4",
            "Jan 23 21:59:59 h pair a b 192.0.2.5 192.0.2.5",
            "Jan 23 21:59:59 h net 192.0.2.0/24",
            "Jan 23 21:59:59 h net [2001:db8::]/32",
            "Jan 23 21:59:59 h cidr 192.0.2.77/26 port 22",
            "Jan 23 21:59:59 h v4 192.0.2.9 v6 2001:db8::9",
            "Jan 23 21:59:59 h dns mail.example.net",
            "Jan 23 21:59:59 h nothing 192.0.2.1",
        ],
    ),
    (
        "prefregex-content-ignoreregex",
        {
            "prefregex": r"^\s*\S+ app\[<F-MLFID>\d+</F-MLFID>\]: <F-CONTENT>.+</F-CONTENT>$",
            "failregex": [
                r"^<F-NOFAIL>connect</F-NOFAIL> from <ADDR>$",
                r"^bad password for <F-USER>\S+</F-USER>$",
                r"^<F-MLFGAINED>accepted</F-MLFGAINED> <F-USER>\S+</F-USER>$",
                r"^<F-MLFFORGET>closed</F-MLFFORGET>$",
                r"^<F-NOFAIL>probe</F-NOFAIL> <F-USER>\S+</F-USER>$",
            ],
            "ignoreregex": [r"bad password for trusted$"],
        },
        [
            "Jan 23 21:59:50 h app[1]: connect from 192.0.2.1",
            "Jan 23 21:59:51 h app[1]: bad password for root",
            "Jan 23 21:59:52 h app[1]: bad password for trusted",
            "Jan 23 21:59:53 h app[1]: bad password for admin",
            "Jan 23 21:59:54 h app[1]: closed",
            "Jan 23 21:59:55 h app[2]: connect from 192.0.2.2",
            "Jan 23 21:59:56 h app[2]: probe alice",
            "Jan 23 21:59:57 h app[2]: probe bob",
            "Jan 23 21:59:58 h app[2]: accepted bob",
            "Jan 23 21:59:59 h app[2]: bad password for carol",
            "Jan 23 22:00:00 h app[3]: bad password for dave",
            "Jan 23 22:00:01 h app[3]: connect from 192.0.2.3",
            "Jan 23 22:00:02 h other[3]: connect from 192.0.2.4",
        ],
    ),
    (
        "multi-line",
        {
            "maxlines": 3,
            "failregex": [
                r"^\s*\S+ start (?P<sess>\d+)<SKIPLINES>^\s*\S+ fail (?P=sess) from <HOST>$",
            ],
            "ignoreregex": [r"fail 9 from"],
        },
        [
            "Jan 23 21:59:50 h start 1",
            "Jan 23 21:59:51 h noise",
            "Jan 23 21:59:52 h fail 1 from 192.0.2.1",
            "Jan 23 21:59:53 h start 2",
            "Jan 23 21:59:54 h noise",
            "Jan 23 21:59:55 h noise",
            "Jan 23 21:59:56 h fail 2 from 192.0.2.2",
            "Jan 23 21:59:57 h start 9",
            "Jan 23 21:59:58 h fail 9 from 192.0.2.9",
        ],
    ),
]

ORACLE = """
import json, sys
from fail2ban.server.mytime import MyTime
from fail2ban.server.filter import Filter
from fail2ban.server.ipdns import IPAddr
MyTime.setTime(%d)
case = json.loads(sys.argv[1])
flt = Filter(None)
flt.returnRawHost = True
flt.checkAllRegex = True
flt.checkFindTime = False
flt.active = True
if case.get("prefregex"):
    flt.prefRegex = case["prefregex"]
if case.get("maxlines"):
    flt.setMaxLines(case["maxlines"])
for rx in case["failregex"]:
    flt.addFailRegex(rx)
for rx in case.get("ignoreregex", []):
    flt.addIgnoreRegex(rx)
def plain(v):
    if isinstance(v, (set, tuple, list)):
        return sorted(plain(x) for x in v) if isinstance(v, set) else [plain(x) for x in v]
    return v if v is None or isinstance(v, (int, float)) else str(v)
out = []
for line in json.loads(sys.argv[2]):
    rows = []
    for idx, fid, date, fail in flt.processLine(line):
        fields = {k: plain(v) for k, v in fail.items() if k != "matches"}
        rows.append([idx, None if fid is None else str(fid), date, fields, len(fail.get("matches", []))])
    out.append(rows)
print(json.dumps(out))
"""


def _plain(v: Any) -> Any:
    if isinstance(v, set):
        return sorted(_plain(x) for x in v)
    if isinstance(v, tuple | list):
        return [_plain(x) for x in v]
    return v if v is None or isinstance(v, int | float) else str(v)


def _ours(case: dict[str, Any], lines: list[str]) -> list[list[Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        conf = Path(tmp) / "case.conf"
        body = ["[Definition]"]
        for key in ("prefregex", "maxlines"):
            if key in case:
                body.append(f"{key} = {case[key]}")
        for key in ("failregex", "ignoreregex"):
            if key in case:
                body.append(f"{key} = " + "\n    ".join(case[key]))
        conf.write_text("\n".join(body).replace("%", "%%") + "\n")
        m = f2b.Matcher(f2b.load(conf), now=NOW, check_all=True)
    out = []
    for line in lines:
        rows = []
        for hit in m.process(line):
            fields = {k: _plain(v) for k, v in hit.fields.items() if k != "matches"}
            rows.append([hit.regex, hit.host, hit.time, fields, hit.attempts])
        out.append(rows)
    return out


@pytest.mark.peer
@pytest.mark.parametrize(("name", "case", "lines"), CASES, ids=[c[0] for c in CASES])
def test_same_failures_as_fail2ban(
    name: str, case: dict[str, Any], lines: list[str], fail2ban_clock: None
) -> None:
    theirs = fail2ban(ORACLE % NOW, case, lines)
    ours = _ours(case, lines)
    for line, a, b in zip(lines, ours, theirs, strict=True):
        assert a == b, f"{line!r}:\n  ours   {a}\n  theirs {b}"
    assert any(theirs), "fail2ban found nothing: the comparison would prove nothing"


def test_tags_left_alone() -> None:
    # closing tags never opened, unknown tags and lower-case fields stay as written
    assert resolve_tags("a</F-USER><f-user><X>") == "a</F-USER><f-user><X>"


# -- the shortcuts against the straightforward path ---------------------------------------

SAMPLES = Path("/usr/lib/python3/dist-packages/fail2ban/tests/files/logs")
SHORTCUT_FILTERS = [
    "sshd",
    "sshd[mode=aggressive]",
    "sshd[mode=extra]",
    "postfix[mode=aggressive]",
    "dovecot",
]
PIECES = [
    "Failed ",
    "User ",
    "Received disconnect from ",
    "pam_",
    " from ",
    "192.0.2.7",
    " port 22",
    "[preauth]",
    ": ",
    "Connection closed by ",
    "Accepted ",
    "  ",
    "\u00e9",
]


def _sample_lines() -> list[str]:
    out: list[str] = []
    for name in ("sshd", "sshd-journal", "postfix", "dovecot", "exim"):
        path = SAMPLES / name
        if path.exists():
            out += [
                ln for ln in path.read_text("utf-8", "replace").splitlines() if ln and ln[0] != "#"
            ]
    return out


def _mutated(draw: Any, lines: list[str]) -> str:
    line: str = draw(st.sampled_from(lines))
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(line)))
        cut = draw(st.integers(0, 6))
        piece = draw(st.one_of(st.sampled_from(PIECES), st.text(max_size=3)))
        line = line[:at] + piece + line[at + cut :]
    return line


def _reference(flt: f2b.Compiled) -> f2b.Compiled:
    # every failregex tried on every text, as fail2ban does: no literal starts, no candidates
    ref = copy.deepcopy(flt)
    for rx in ref.failregex:
        rx.prefix = ""
    ref.__dict__["_leads"] = ({}, tuple(range(len(ref.failregex))))
    return ref


@pytest.mark.parametrize("spec", SHORTCUT_FILTERS)
def test_shortcuts_find_what_trying_every_failregex_finds(spec: str) -> None:
    # real lines of fail2ban's samples, and the same lines cut and spliced, through one
    # matcher with the shortcuts (literal starts, candidates by first character) and one
    # without: the same failures, fields and all, in the same order
    lines = _sample_lines()
    if not lines or not (f2b.FILTER_DIR / "sshd.conf").exists():
        pytest.skip("fail2ban's filters and sample logs are not installed")
    flt = f2b.load(spec)
    assert any(rx.prefix for rx in flt.failregex)

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.data())
    def check(data: st.DataObject) -> None:
        batch = [_mutated(data.draw, lines) for _ in range(data.draw(st.integers(1, 12)))]
        fast = f2b.Matcher(flt, now=NOW + 86400 * 365 * 20)
        slow = f2b.Matcher(_reference(flt), now=NOW + 86400 * 365 * 20)
        for line in batch:
            assert fast.process(line) == slow.process(line), line

    check()
    # and every real line in order, as a log
    fast = f2b.Matcher(flt, now=NOW)
    slow = f2b.Matcher(_reference(flt), now=NOW)
    found = 0
    for line in lines:
        got = fast.process(line)
        assert got == slow.process(line), line
        found += len(got)
    assert found
