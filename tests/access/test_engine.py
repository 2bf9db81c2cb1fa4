"""The Python API: load once, decide many, reload on change; indexes change nothing."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.access import shapes
from todokede.access import (
    HostsFileResolver,
    Match,
    Option,
    Request,
    Rules,
    expand_percent,
    predict,
)
from todokede.access.compiled import ADDRESS

HOSTS = Path(__file__).parent / "etc-hosts"


def write(d: Path, allow: str, deny: str = "") -> None:
    (d / "hosts.allow").write_text(allow)
    (d / "hosts.deny").write_text(deny)


def test_decide_basic(tmp_path: Path) -> None:
    write(tmp_path, "imapd: 172.16.1.0/24 : spawn echo %a %d\n", "ALL: ALL\n")
    rules = Rules.load(tmp_path)
    ok = rules.decide(Request("imapd", "172.16.1.9"))
    assert (ok.access, ok.matched) == ("granted", Match("hosts.allow", 1))
    assert ok.options == [Option("spawn", "echo 172.16.1.9 imapd", "spawn")]
    no = rules.decide(Request("imapd", "192.0.2.7"))
    assert (no.access, no.matched, no.options, no.warnings) == (
        "denied",
        Match("hosts.deny", 1),
        [],
        [],
    )


def test_missing_files_grant(tmp_path: Path) -> None:
    d = Rules.load(tmp_path).decide(Request("sshd", "10.0.0.1"))
    assert (d.access, d.matched) == ("granted", None)


def test_twist_delegates_and_allow_deny_override(tmp_path: Path) -> None:
    write(tmp_path, "a: ALL: twist echo %d\nb: ALL: deny\n", "c: ALL: allow\n")
    rules = Rules.load(tmp_path)
    assert rules.decide(Request("a", "10.0.0.1")).access == "delegated"
    assert rules.decide(Request("b", "10.0.0.1")).access == "denied"
    assert rules.decide(Request("c", "10.0.0.1")).access == "granted"


def test_option_error_denies_even_in_allow(tmp_path: Path) -> None:
    write(tmp_path, "a: ALL: umask 999\n")
    d = Rules.load(tmp_path).decide(Request("a", "10.0.0.1"))
    assert d.access == "denied"
    assert d.warnings == ['error: hosts.allow, line 1: bad umask value: "999"']


def test_user_option_dry_run(tmp_path: Path) -> None:
    write(tmp_path, "a: ALL: user nobody\n")
    rules = Rules.load(tmp_path)
    assert rules.decide(Request("a", "10.0.0.1"), dry_run=True).access == "denied"
    assert rules.decide(Request("a", "10.0.0.1")).access == "granted"


def test_lazy_name_lookup_and_paranoid(tmp_path: Path) -> None:
    write(tmp_path, "a: .example.com\nb: PARANOID\n", "ALL: ALL\n")
    rules = Rules.load(tmp_path, resolver=HostsFileResolver(HOSTS))
    assert rules.decide(Request("a", "10.1.2.3")).access == "granted"
    d = rules.decide(Request("b", "10.7.7.2"))
    assert d.access == "granted"
    assert d.warnings == [
        "warning: hosts.allow, line 2: host name/name mismatch: "
        "spoofed.example.com != first.example.com"
    ]
    # a name given in the request is not looked up again
    assert rules.decide(Request("a", "10.7.7.2", client_name="x.example.com")).access == "granted"


def test_full_paths_in_warnings(tmp_path: Path) -> None:
    write(tmp_path, "oops\na: ALL\n")
    d = Rules.load(tmp_path, full_paths=True).decide(Request("a", "10.0.0.1"))
    assert d.warnings == [f'warning: {tmp_path}/hosts.allow, line 1: missing ":" separator']
    assert d.matched == Match("hosts.allow", 2)


def test_reload_if_changed(tmp_path: Path) -> None:
    write(tmp_path, "sshd: 10.0.0.1\n", "ALL: ALL\n")
    rules = Rules.load(tmp_path, recheck=3600)
    assert rules.reload_if_changed() is False
    assert rules.decide(Request("sshd", "10.0.0.2")).access == "denied"
    (tmp_path / "hosts.allow").write_text("sshd: 10.0.0.0/24\n")
    os.utime(tmp_path / "hosts.allow", ns=(1, 1))  # a different mtime, even on coarse clocks
    assert rules.decide(Request("sshd", "10.0.0.2")).access == "denied"  # not rechecked yet
    assert rules.reload_if_changed() is True
    assert rules.decide(Request("sshd", "10.0.0.2")).access == "granted"


def test_reload_when_a_file_list_changes(tmp_path: Path) -> None:
    (tmp_path / "list").write_text("10.0.0.1\n")
    write(tmp_path, f"sshd: {tmp_path}/list\n", "ALL: ALL\n")
    rules = Rules.load(tmp_path, recheck=0)
    assert rules.decide(Request("sshd", "10.0.0.2")).access == "denied"
    (tmp_path / "list").write_text("10.0.0.1 10.0.0.2\n")
    assert rules.decide(Request("sshd", "10.0.0.2")).access == "granted"


def test_expand_percent() -> None:
    req = Request("imapd", "192.0.2.7", client_user="bob", server_addr="172.16.1.1", pid=42)
    warnings: list[str] = []
    text = expand_percent("%d %a %c %u %p %A %s %r %z%% $(x)", req, warnings=warnings)
    assert text == "imapd 192.0.2.7 bob@192.0.2.7 bob 42 172.16.1.1 imapd@172.16.1.1 0 % $(x)"
    assert warnings == ["unrecognized %z"]
    hostile = Request("d", "10.0.0.1", client_user="a;rm -rf /`x`")
    assert expand_percent("%u", hostile) == "a_rm_-rf_/_x_"


def test_mapped_ipv4_matches_as_ipv4(tmp_path: Path) -> None:
    write(tmp_path, "a: 10.0.0.0/8\nb: [::ffff:10.0.0.1]\n", "ALL: ALL\n")
    rules = Rules.load(tmp_path)
    assert rules.decide(Request("a", "::ffff:10.0.0.1")).access == "granted"
    assert rules.decide(Request("b", "::ffff:10.0.0.1")).access == "denied"
    shown = expand_percent("%a %h", Request("a", "::ffff:10.0.0.1"))
    assert shown == "::ffff:10.0.0.1 ::ffff:10.0.0.1"


def test_numeric_daemon_pattern_matches_server_port(tmp_path: Path) -> None:
    write(tmp_path, "143: ALL\n", "ALL: ALL\n")
    rules = Rules.load(tmp_path)
    assert rules.decide(
        Request("imapd", "10.0.0.1", server_addr="10.0.0.2", server_port=143)
    ).granted
    assert not rules.decide(Request("imapd", "10.0.0.1", server_port=143)).granted


ADDRS = [
    "10.0.0.1",
    "10.0.0.2",
    "10.0.1.1",
    "192.168.1.50",
    "2001:db8::5",
    "10.1.2.3",
    "10.7.7.2",
    "::ffff:10.0.0.1",
    "010.0.0.1",
    "255.255.255.255",
]
CLIENT_TOKENS = [
    *ADDRS[:4],
    "10.0.0.0/255.255.255.0",
    "10.0.0.0/255.0.255.0",
    "10.0.0.0/8",
    "0.0.0.0/0.0.0.0",
    ".1",
    "good.example.com",
    ".example.net",
    "unknown",
    "PARANOID",
    "10.0.",
    "[2001:db8::]/32",
    "255.255.255.255",
    "255.",
    "[2001:db8::5]",
    "10.0.0.",
    "10.0.0.0/24",
    ".example.com",
    "ALL",
    "KNOWN",
    "EXCEPT",
    "bob@10.0.0.1",
]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    lines=st.lists(
        st.tuples(
            st.sampled_from(["sshd", "imapd", "ALL", "ssh*", "sshd@10.9.9.9"]),
            st.lists(st.sampled_from(CLIENT_TOKENS), min_size=1, max_size=3),
            st.sampled_from(["", " : deny", " : allow", " : spawn %a"]),
        ),
        max_size=40,
    ),
    daemon=st.sampled_from(["sshd", "imapd", "ftpd"]),
    addr=st.sampled_from(ADDRS),
)
def test_indexes_change_no_decision(
    tmp_path: Path, lines: list[tuple[str, list[str], str]], daemon: str, addr: str
) -> None:
    text = "".join(f"{d}: {' '.join(c)}{o}\n" for d, c, o in lines)
    write(tmp_path, text, text)
    fast = Rules.load(tmp_path, resolver=HostsFileResolver(HOSTS))
    slow = Rules.load(tmp_path, resolver=HostsFileResolver(HOSTS), index=False)
    for req in (
        Request(daemon, addr),
        Request(daemon, addr, client_user="bob"),
        Request(daemon, addr, client_name="x.Example.NET"),
        Request(daemon, addr, client_name="paranoid"),
        Request(daemon, None),
    ):
        assert fast.decide(req) == slow.decide(req), req


@pytest.mark.parametrize("n", [10, 1000])
def test_many_exact_rules_are_indexed(tmp_path: Path, n: int) -> None:
    write(tmp_path, "", "".join(f"ALL: 192.0.{i // 250}.{i % 250 + 1}\n" for i in range(n)))
    rules = Rules.load(tmp_path)
    last = f"192.0.{(n - 1) // 250}.{(n - 1) % 250 + 1}"
    assert rules.decide(Request("sshd", last)).matched == Match("hosts.deny", n)
    assert rules.decide(Request("sshd", "198.51.100.1")).access == "granted"
    assert all(rules.tables[1].rule(p).kind == ADDRESS for p in rules.tables[1].positions)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(0, 2**32 - 1), size=st.sampled_from([3, 10, 100, 1000, 3000]))
def test_index_agrees_with_linear_on_real_site_shapes(tmp_path: Path, seed: int, size: int) -> None:
    rng = random.Random(seed)
    allow, deny = shapes.make_tables(size, rng)
    write(tmp_path, allow, deny)
    fast = Rules.load(tmp_path, resolver=HostsFileResolver(HOSTS))
    slow = Rules.load(tmp_path, resolver=HostsFileResolver(HOSTS), index=False)
    for daemon, client in shapes.make_queries(40, rng, (allow, deny)):
        for name in (None, "unknown"):
            req = Request(daemon, client, client_name=name)
            assert fast.decide(req) == slow.decide(req), (seed, size, daemon, client)
        assert [p.to_dict() for p in predict(fast, daemon, client)] == [
            p.to_dict() for p in predict(slow, daemon, client)
        ]
