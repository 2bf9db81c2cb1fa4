"""What a live tcpd does beyond tcpdmatch: the client label it logs (eval_client()),
Debian's aclexec run in the middle of matching, and the RFC 931 user looked up lazily.

The aclexec cases are what Debian's real tcpd (7.6.q) did with these rules; the wrapper's
replays of recorded tcpd runs (tests/wrap/live/L04, L05, L06) cover the same ground end
to end.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from todokede.access import HostsFileResolver, Match, Option, Request, Rules

HOSTS = Path(__file__).parent / "etc-hosts"


def load(d: Path, allow: str, deny: str = "") -> Rules:
    (d / "hosts.allow").write_text(allow)
    (d / "hosts.deny").write_text(deny)
    return Rules.load(d, resolver=HostsFileResolver(HOSTS))


@pytest.mark.parametrize(
    ("allow", "request_", "label"),
    [
        ("a: ALL\n", Request("a", "10.1.2.3"), "10.1.2.3"),  # no rule asked for the name
        ("a: .example.com\n", Request("a", "10.1.2.3"), "good.example.com"),
        ("a: PARANOID\n", Request("a", "10.7.7.2"), "10.7.7.2"),  # name not verified
        ("a: ALL\n", Request("a", "10.1.2.3", client_user="bob"), "bob@10.1.2.3"),
        ("a: ALL\n", Request("a", "10.1.2.3", client_user="unknown"), "10.1.2.3"),
        ("a: KNOWN\n", Request("a", "10.1.2.3", client_user="bob"), "bob@good.example.com"),
        ("a: ALL\n", Request("a", "10.1.2.3", client_name="given.example"), "given.example"),
    ],
)
def test_client_label(tmp_path: Path, allow: str, request_: Request, label: str) -> None:
    assert load(tmp_path, allow).decide(request_).client == label


class Commands:
    """An aclexec callback that records the commands and answers from a table."""

    def __init__(self, ok: dict[str, bool]) -> None:
        self.ok = ok
        self.ran: list[str] = []

    def __call__(self, command: str) -> bool:
        self.ran.append(command)
        return self.ok[command]


ALLOW = """\
d: 10.0.0.1 : aclexec fail
d: 10.0.0.2 : aclexec fail : severity local0.notice
d: 10.0.0.3 : aclexec fail : deny
d: 10.0.0.4 : aclexec fail : allow
d: 10.0.0.6 : aclexec ok %a
d: 10.0.0.6 : aclexec never
"""
DENY = """\
d: 10.0.0.1 : aclexec ok deny
d: 10.0.0.2 : aclexec fail
d: 10.0.0.5 : aclexec fail
d: ALL
"""


@pytest.mark.parametrize(
    ("client", "access", "matched", "info", "ran"),
    [
        # a failed aclexec in hosts.allow: on to hosts.deny, whose aclexec succeeds
        ("10.0.0.1", "denied", Match("hosts.deny", 1), 1, ["fail", "ok deny"]),
        # failed twice: no rule matched, so access is granted (with the first's severity)
        ("10.0.0.2", "granted", None, 2, ["fail", "fail"]),
        # an allow/deny option decides whatever the command says
        ("10.0.0.3", "denied", Match("hosts.allow", 3), 0, ["fail"]),
        ("10.0.0.4", "granted", Match("hosts.allow", 4), 0, ["fail"]),
        # hosts.deny's own failed aclexec
        ("10.0.0.5", "granted", None, 1, ["fail"]),
        # success: the rule matches (expanded command); the rest of hosts.allow is not read
        ("10.0.0.6", "granted", Match("hosts.allow", 5), 0, ["ok 10.0.0.6"]),
    ],
)
def test_aclexec(
    tmp_path: Path, client: str, access: str, matched: Match | None, info: int, ran: list[str]
) -> None:
    rules = load(tmp_path, ALLOW, DENY)
    commands = Commands({"fail": False, "ok deny": True, "ok 10.0.0.6": True})
    d = rules.decide(Request("d", client), aclexec=commands)
    assert (d.access, d.matched, commands.ran) == (access, matched, ran)
    assert [t for k, t in d.trace if k == "info"] == ["aclexec returned 1"] * info
    if client == "10.0.0.2":
        assert Option("severity", "local0.notice", "severity") in d.options


def test_aclexec_sticky_flag(tmp_path: Path) -> None:
    """libwrap's bug, kept: after a failed aclexec, a matched hosts.deny rule that has any
    option is discarded too; one without options still refuses (recorded as L05)."""
    rules = load(
        tmp_path,
        "d: 10.0.0.1 10.0.0.2 : aclexec fail\n",
        "d: 10.0.0.1\nd: 10.0.0.2 : severity daemon.notice\n",
    )
    commands = Commands({"fail": False})
    one = rules.decide(Request("d", "10.0.0.1"), aclexec=commands)
    two = rules.decide(Request("d", "10.0.0.2"), aclexec=commands)
    assert (one.access, one.matched) == ("denied", Match("hosts.deny", 1))
    assert (two.access, two.matched) == ("granted", None)
    assert [k for k, _ in two.trace] == ["matched", "option", "info", "matched", "option", "info"]
    # the k-th option entry of the trace is options[k], across both rules
    assert [str(o) for o in two.options] == ["aclexec fail", "severity daemon.notice"]


def test_aclexec_without_a_runner_or_in_a_dry_run(tmp_path: Path) -> None:
    rules = load(tmp_path, ALLOW, DENY)
    commands = Commands({})
    for d in (
        rules.decide(Request("d", "10.0.0.1")),
        rules.decide(Request("d", "10.0.0.1"), aclexec=commands, dry_run=True),
    ):
        assert (d.access, d.matched) == ("granted", Match("hosts.allow", 1))
    assert commands.ran == []


class Ident:
    def __init__(self, user: str | None) -> None:
        self.user = user
        self.asked: list[float] = []

    def __call__(self, timeout: float) -> str | None:
        self.asked.append(timeout)
        return self.user


@pytest.mark.parametrize(
    ("allow", "client", "asked", "access", "label"),
    [
        ("d: 10.0.0.1\n", "10.0.0.1", [], "granted", "10.0.0.1"),  # nobody needs the user
        ("d: alice@10.0.0.9\n", "10.0.0.1", [], "denied", "10.0.0.1"),  # host first
        ("d: alice@10.0.0.1\n", "10.0.0.1", [10.0], "granted", "alice@10.0.0.1"),
        ("d: bob@10.0.0.1 alice@10.0.0.1\n", "10.0.0.1", [10.0], "granted", "alice@10.0.0.1"),
        ("d: 10.0.0.1 : rfc931 3\n", "10.0.0.1", [3.0], "granted", "alice@10.0.0.1"),
        ("d: 10.0.0.1 : rfc931\n", "10.0.0.1", [10.0], "granted", "alice@10.0.0.1"),
    ],
)
def test_lazy_ident(
    tmp_path: Path, allow: str, client: str, asked: list[float], access: str, label: str
) -> None:
    ident = Ident("alice")
    d = load(tmp_path, allow, "ALL: ALL\n").decide(Request("d", client), ident=ident)
    assert (ident.asked, d.access, d.client) == (asked, access, label)
    assert d.user == ("alice" if asked else None)


def test_ident_in_expansion_order(tmp_path: Path) -> None:
    """%c shows what is known so far; %u asks (recorded as L06)."""
    rules = load(tmp_path, 'd: ALL : spawn logger "c=%c u=%u c=%c"\n')
    ident = Ident("alice")
    d = rules.decide(Request("d", "10.0.0.5"), ident=ident)
    assert d.options[0].value == 'logger "c=10.0.0.5 u=alice c=alice@10.0.0.5"'
    assert ident.asked == [10.0] and d.client == "alice@10.0.0.5"


def test_ident_failure_is_unknown_and_asked_once(tmp_path: Path) -> None:
    rules = load(tmp_path, "d: alice@ALL bob@ALL : spawn %u\n")
    ident = Ident(None)
    d = rules.decide(Request("d", "10.0.0.5"), ident=ident)
    assert (d.access, d.client, d.user, ident.asked) == ("granted", "10.0.0.5", None, [10.0])
    # a user given in the request is never asked for
    d = rules.decide(Request("d", "10.0.0.5", client_user="carol"), ident=ident)
    assert (d.access, d.client, ident.asked) == ("granted", "carol@10.0.0.5", [10.0])
