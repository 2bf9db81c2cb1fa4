"""The nftables action in a network namespace the test creates: a client that keeps failing
to log in to a real Dovecot is dropped by the kernel through guard's named set; another
address still gets in; the kernel ends the ban on time; a restart of guard re-fills the set.
Skipped, with the reason, where namespaces or nftables cannot run."""

from __future__ import annotations

import contextlib
import ctypes
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import need, need_root
from tests.guard.harness import fail_login, guard, wait_until, watched_dovecot

CLONE_NEWNET = 0x40000000


@contextlib.contextmanager
def network_namespace() -> Iterator[None]:
    """Move this thread (and so the processes it starts) into a fresh network namespace."""
    need("ip", "nft")
    need_root()
    name = f"todokede-guard-{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot create a network namespace: {made.stderr.strip()}")
    libc = ctypes.CDLL(None, use_errno=True)
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    try:
        there = os.open(f"/run/netns/{name}", os.O_RDONLY)
        try:
            if libc.setns(there, CLONE_NEWNET) != 0:
                pytest.skip(f"setns: {os.strerror(ctypes.get_errno())}")
        finally:
            os.close(there)
        try:
            subprocess.run(["ip", "link", "set", "lo", "up"], check=True, timeout=30)
            probe = subprocess.run(
                ["nft", "add", "table", "inet", "probe"], capture_output=True, text=True
            )
            if probe.returncode != 0:
                pytest.skip(f"nftables cannot run here: {probe.stderr.strip()}")
            subprocess.run(["nft", "delete", "table", "inet", "probe"], check=True, timeout=30)
            yield
        finally:
            if libc.setns(home, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back to the test's namespace")
    finally:
        os.close(home)
        subprocess.run(["ip", "netns", "delete", name], capture_output=True)


def reaches(port: int, source: str) -> bool:
    """Does a client from ``source`` get Dovecot's greeting? (a dropped SYN times out)"""
    try:
        with socket.socket() as s:
            s.settimeout(1.0)
            s.bind((source, 0))
            s.connect(("127.0.0.1", port))
            return s.recv(64).startswith(b"* OK")
    except OSError:
        return False


def in_set(addr: str) -> bool:
    out = subprocess.run(
        ["nft", "list", "set", "inet", "todokede", "guard4"], capture_output=True, text=True
    )
    return addr in out.stdout


@pytest.mark.peer
@pytest.mark.root
def test_nftables_set_drops_the_attacker(tmp_path: Path) -> None:
    with (
        network_namespace(),
        watched_dovecot(tmp_path, bantime="5s", action="nft") as (imap, conf),
        guard(conf),
    ):
        for _ in range(3):
            assert reaches(imap.port, "127.0.0.10")
            fail_login(imap.port, "127.0.0.10")
        wait_until(lambda: in_set("127.0.0.10"), what="the address in the set")
        assert not reaches(imap.port, "127.0.0.10")
        assert reaches(imap.port, "127.0.0.11")
        # the kernel's own timeout ends it (guard may be stopped meanwhile)
        wait_until(lambda: not in_set("127.0.0.10"), timeout=20, what="the kernel expiry")
        assert reaches(imap.port, "127.0.0.10")


@pytest.mark.peer
@pytest.mark.root
def test_nftables_restart_refills_the_set(tmp_path: Path) -> None:
    with network_namespace(), watched_dovecot(tmp_path, action="nft") as (imap, conf):
        with guard(conf):
            for _ in range(3):
                fail_login(imap.port, "127.0.0.12")
            wait_until(lambda: in_set("127.0.0.12"), what="the address in the set")
        subprocess.run(["nft", "delete", "table", "inet", "todokede"], check=True, timeout=30)
        assert reaches(imap.port, "127.0.0.12")
        with guard(conf):
            assert in_set("127.0.0.12")
            assert not reaches(imap.port, "127.0.0.12")
            assert reaches(imap.port, "127.0.0.13")
