"""The actions without a guard around them: the host list, the nft script, command tags."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pytest

from tests.conftest import need
from todokede.access.engine import Rules
from todokede.access.evaluation import Request
from todokede.guard.actions import HostsDeny, Nft, expand
from todokede.guard.state import Ban


def test_the_host_list_is_a_hosts_access_file_list(tmp_path: Path) -> None:
    banned = ["192.0.2.1", "2001:db8::7"]
    deny = HostsDeny(tmp_path / "guard.deny", lambda: banned)
    deny.start([], 0.0)
    deny.ban(Ban("j", "198.51.100.3", 0.0, None, 3), 0.0)
    assert (tmp_path / "guard.deny").read_text() == "192.0.2.1\n[2001:db8::7]\n198.51.100.3\n"
    banned.remove("192.0.2.1")
    deny.unban(Ban("j", "192.0.2.1", 0.0, None, 3))
    assert (tmp_path / "guard.deny").read_text() == "[2001:db8::7]\n"
    assert (tmp_path / "guard.deny").stat().st_mode & 0o777 == 0o644


def test_whole_rules_for_a_hosts_deny_guard_owns(tmp_path: Path) -> None:
    deny = HostsDeny(tmp_path / "hosts.deny", lambda: ["192.0.2.1", "2001:db8::7"], "sshd, imapd")
    deny.rewrite()
    deny.ban(Ban("j", "198.51.100.3", 0.0, None, 3), 0.0)
    assert (tmp_path / "hosts.deny").read_text() == (
        "sshd, imapd: 192.0.2.1\nsshd, imapd: [2001:db8::7]\nsshd, imapd: 198.51.100.3\n"
    )
    rules = Rules.load(tmp_path)
    for daemon, client, access in [
        ("sshd", "198.51.100.3", "denied"),
        ("imapd", "2001:db8::7", "denied"),
        ("ftpd", "192.0.2.1", "granted"),
        ("sshd", "192.0.2.2", "granted"),
    ]:
        assert rules.decide(Request(daemon, client, client_name="unknown")).access == access


@pytest.mark.parametrize(
    ("client", "refused"),
    [("192.0.2.1", True), ("2001:db8::7", True), ("192.0.2.2", False)],
)
def test_libwrap_and_the_rule_engine_read_the_host_list(
    tmp_path: Path, client: str, refused: bool
) -> None:
    HostsDeny(tmp_path / "guard.deny", lambda: ["192.0.2.1", "2001:db8::7"]).rewrite()
    (tmp_path / "hosts.allow").write_text("")
    (tmp_path / "hosts.deny").write_text(f"ALL: {tmp_path / 'guard.deny'}\n")
    decision = Rules.load(tmp_path).decide(Request("sshd", client, client_name="unknown"))
    assert (decision.access == "denied") is refused
    need("tcpdmatch")
    oracle = subprocess.run(
        ["tcpdmatch", "-d", "sshd", client], cwd=tmp_path, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert ("access:   denied" in oracle.stdout) is refused, oracle.stdout + oracle.stderr


def test_appends_from_many_threads_keep_whole_lines(tmp_path: Path) -> None:
    deny = HostsDeny(tmp_path / "guard.deny", list)

    def ban_many(base: int) -> None:
        for i in range(200):
            deny.ban(Ban("j", f"10.{base}.{i >> 8}.{i & 255}", 0.0, None, 1), 0.0)

    threads = [threading.Thread(target=ban_many, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = (tmp_path / "guard.deny").read_text().splitlines()
    assert len(lines) == 800 and len(set(lines)) == 800


def test_nft_script() -> None:
    nft = Nft("inet todokede", "guard", chain=True)
    assert nft.setup() == [
        "add table inet todokede",
        "add set inet todokede guard4 { type ipv4_addr; flags timeout; }",
        "add set inet todokede guard6 { type ipv6_addr; flags timeout; }",
        "add chain inet todokede guard_input"
        " { type filter hook input priority -10; policy accept; }",
        "flush chain inet todokede guard_input",
        "add rule inet todokede guard_input ip saddr @guard4 drop",
        "add rule inet todokede guard_input ip6 saddr @guard6 drop",
    ]
    assert Nft("ip t", "g", chain=False).setup() == [
        "add table ip t",
        "add set ip t g4 { type ipv4_addr; flags timeout; }",
    ]
    assert Nft._element(Ban("j", "192.0.2.1", 0.0, 600.5, 1), 0.2) == "192.0.2.1 timeout 601s"
    assert Nft._element(Ban("j", "192.0.2.1", 0.0, None, 1), 0.2) == "192.0.2.1"


@pytest.mark.parametrize(
    ("template", "argv"),
    [
        ("block <ip> <name> <failures> <bantime>", ["block", "192.0.2.1", "sshd", "4", "600"]),
        ("logger 'banned <ip> in <name>'", ["logger", "banned 192.0.2.1 in sshd"]),
        ("sh -c 'echo <ip>;'", ["sh", "-c", "echo 192.0.2.1;"]),
    ],
)
def test_command_tags(template: str, argv: list[str]) -> None:
    assert expand(template, Ban("sshd", "192.0.2.1", 0.0, 600.0, 4), 0.0) == argv


MIXED = "192.0.2.1\n010.0.0.1\n198.51.100.\n[2001:db8::7]\n[2001:db8:1::]/48\n.example.org\n"


@pytest.mark.parametrize(
    "client",
    ["192.0.2.1", "192.0.2.11", "10.0.0.1", "010.0.0.1", "198.51.100.9", "2001:db8::7",
     "2001:db8:1::5", "2001:db8:2::5"],
)  # fmt: skip
def test_a_host_list_with_other_patterns_decides_as_libwrap(tmp_path: Path, client: str) -> None:
    need("tcpdmatch")
    (tmp_path / "guard.deny").write_text(MIXED)
    (tmp_path / "hosts.allow").write_text("")
    (tmp_path / "hosts.deny").write_text(f"ALL: {tmp_path / 'guard.deny'}\n")
    decision = Rules.load(tmp_path).decide(Request("sshd", client, client_name="unknown"))
    oracle = subprocess.run(
        ["tcpdmatch", "-d", "sshd", client], cwd=tmp_path, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert f"access:   {decision.access}" in oracle.stdout, oracle.stdout + oracle.stderr
