"""Decisions per second: todokede's engine against libwrap's own hosts_ctl().

    .venv/bin/python bench/access.py [--seconds 1.0]

libwrap (Debian package libwrap0, loaded with ctypes from libwrap.so.0) re-reads
hosts.allow and hosts.deny on every call; todokede compiles them once. Both decide the
same requests on the same rule files of 10, 100 and 1,000 rules (hosts.allow: service
rules with networks and address lists; hosts.deny: fail2ban-style single-address bans,
then ``ALL: ALL``), with the client name unknown so neither side resolves names. Every
answer is compared before timing. Goal: at least libwrap's rate at 10 rules, ten times
it at 1,000.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from todokede.access import Request, Rules

DAEMONS = ["sshd", "imapd", "in.ftpd", "ipop3d", "in.telnetd"]


def make_rules(n: int, rng: random.Random) -> tuple[str, str]:
    allow_n = max(2, n // 10)
    allow = ["# service rules"]
    for i in range(allow_n - 1):
        daemon = DAEMONS[i % len(DAEMONS)]
        allow.append(f"{daemon}: 172.{16 + i % 16}.{i % 250}.0/255.255.255.0, 10.{i % 250}.")
    allow.append("imapd, ipop3d: 127.0.0.1")
    deny = ["# bans"]
    for i in range(n - allow_n - 1):
        deny.append(f"ALL: 192.0.{i // 250}.{i % 250 + 1}")
    deny.append("ALL: ALL")
    return "\n".join(allow) + "\n", "\n".join(deny) + "\n"


def make_queries(n: int, rng: random.Random) -> list[tuple[str, str]]:
    out = []
    for _ in range(n):
        kind = rng.random()
        if kind < 0.3:
            addr = f"192.0.{rng.randrange(4)}.{rng.randrange(1, 251)}"  # banned or not
        elif kind < 0.5:
            addr = f"172.{rng.randrange(16, 32)}.{rng.randrange(250)}.{rng.randrange(1, 255)}"
        else:
            addr = f"198.51.100.{rng.randrange(1, 255)}"  # no rule: the whole scan
        out.append((rng.choice(DAEMONS), addr))
    return out


def libwrap(rules_dir: Path) -> Callable[[str, str], bool]:
    path = ctypes.util.find_library("wrap") or "libwrap.so.0"
    lib = ctypes.CDLL(path)
    keep = []
    for name, file in (("hosts_allow_table", "hosts.allow"), ("hosts_deny_table", "hosts.deny")):
        # point libwrap's table path (a char *) at our file; keep the buffer alive
        buf = ctypes.create_string_buffer(str(rules_dir / file).encode())
        keep.append(buf)
        ctypes.c_void_p.in_dll(lib, name).value = ctypes.addressof(buf)
    hosts_ctl = lib.hosts_ctl
    hosts_ctl.argtypes = [ctypes.c_char_p] * 4
    hosts_ctl.restype = ctypes.c_int
    unknown = b"unknown"

    def decide(daemon: str, addr: str) -> bool:
        return bool(hosts_ctl(daemon.encode(), unknown, addr.encode(), unknown))

    decide.keep = keep  # type: ignore[attr-defined]
    return decide


def todokede(rules_dir: Path) -> Callable[[str, str], bool]:
    rules = Rules.load(rules_dir)

    def decide(daemon: str, addr: str) -> bool:
        return rules.decide(Request(daemon, addr, "unknown")).access != "denied"

    return decide


def rate(
    decide: Callable[[str, str], bool], queries: list[tuple[str, str]], seconds: float
) -> float:
    done = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for daemon, addr in queries:
            decide(daemon, addr)
        done += len(queries)
        now = time.perf_counter()
        if now >= deadline:
            return done / (now - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    parser.add_argument("--sizes", default="10,100,1000")
    args = parser.parse_args()
    rng = random.Random(1997)
    queries = make_queries(500, rng)
    sizes = [int(s) for s in args.sizes.split(",")]
    console = Console()
    table = Table(title="decisions per second (same rules, same requests)")
    for col in ("rules", "libwrap hosts_ctl()", "todokede", "ratio"):
        table.add_column(col, justify="right")
    with tempfile.TemporaryDirectory() as tmp, Progress(console=console, transient=True) as bar:
        task = bar.add_task("benchmarking", total=len(sizes) * 2)
        for n in sizes:
            d = Path(tmp) / str(n)
            d.mkdir()
            allow, deny = make_rules(n, rng)
            (d / "hosts.allow").write_text(allow)
            (d / "hosts.deny").write_text(deny)
            theirs, ours = libwrap(d), todokede(d)
            for daemon, addr in queries:
                if theirs(daemon, addr) != ours(daemon, addr):
                    sys.exit(f"disagreement at {n} rules: {daemon} {addr}")
            r_lib = rate(theirs, queries, args.seconds)
            bar.advance(task)
            r_ours = rate(ours, queries, args.seconds)
            bar.advance(task)
            table.add_row(str(n), f"{r_lib:,.0f}", f"{r_ours:,.0f}", f"{r_ours / r_lib:.1f}x")
    console.print(table)


if __name__ == "__main__":
    main()
