"""Decisions per second: todokede's engine and `access match --batch` against libwrap's
own hosts_ctl().

    .venv/bin/python bench/access.py [--sizes 10,100,1000,10000] [--seconds 1.0] [--rounds 3]

The rule files are random, of the shapes real sites write (tests/access/shapes.py):
hosts.allow with daemon lists and ``ALL``, addresses, ``a.b.`` prefixes, ``n/m`` and
``/len`` networks, ``a.b. EXCEPT a.b.c.``, IPv6 networks, a few host names and ``deny``
options; hosts.deny with fail2ban-style address bans, some networks and prefixes, usually
``ALL: ALL`` last. The queries are addresses (IPv4, IPv6, IPv4-mapped) named by the rules,
near them, or elsewhere, with the client name unknown so that no side resolves names.

libwrap (Debian's libwrap0, ctypes on libwrap.so.0) re-reads both files on every call, as
tcpd does; todokede compiles them once. Three measurements per size:

- libwrap: hosts_ctl() per query, in this process;
- API: ``Rules.decide(Request(daemon, addr, "unknown"))`` per query, in this process;
- batch: the whole ``todokede access match --batch --json`` process (start-up, loading
  the rules, reading the queries, writing one JSON line each), fed a file of queries.

Every verdict is compared with libwrap's before anything is timed (the API's on every
query, the batch's on its whole output). Rates are CPU time (user + system, the child's
for the batch process): on a machine shared with other work they vary much less than wall
time, which is printed too. Each rate is the best of ``--rounds`` rounds, libwrap and
todokede alternating. Goals: API 2x libwrap at 10 rules and 30x at 1,000; the batch
process 1x at 10 rules and 10x at 1,000.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.access.shapes import make_queries, make_tables  # noqa: E402
from todokede.access import Request, Rules  # noqa: E402

Decide = Callable[[str, str], bool]
BATCH_QUERIES = {10: 100_000, 100: 100_000, 1000: 20_000, 10000: 5_000}


def libwrap(rules_dir: Path) -> Decide:
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


def todokede(rules_dir: Path) -> Decide:
    rules = Rules.load(rules_dir)

    def decide(daemon: str, addr: str) -> bool:
        return rules.decide(Request(daemon, addr, "unknown")).access != "denied"

    return decide


def rate(decide: Decide, queries: list[tuple[str, str]], seconds: float) -> tuple[float, float]:
    """(decisions per CPU second, per wall second), over whole passes of ``queries``."""
    done = 0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    while True:
        for daemon, addr in queries:
            decide(daemon, addr)
        done += len(queries)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        if cpu >= seconds:
            return done / cpu, done / wall


def batch(rules_dir: Path, queries: Path) -> tuple[list[bool], float, float]:
    """The verdicts of ``access match --batch --json``, its CPU and wall seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall0 = time.perf_counter()
    with open(queries, "rb") as stdin:
        proc = subprocess.run(
            [sys.executable, "-m", "todokede", "access", "match", "--batch", "--json",
             "--rules-dir", str(rules_dir)],
            stdin=stdin, capture_output=True, check=True, timeout=3600, cwd=ROOT,
        )  # fmt: skip
    wall = time.perf_counter() - wall0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    verdicts = [
        json.loads(line)["results"][0]["access"] != "denied"
        for line in proc.stdout.decode().splitlines()
    ]
    return verdicts, cpu, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="CPU time per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="best of this many rounds")
    parser.add_argument("--sizes", default="10,100,1000,10000")
    parser.add_argument("--batch-queries", type=int, help="queries per batch run")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    console = Console()
    table = Table(
        title="decisions per CPU second (same rules, same queries)",
        caption="ratios: todokede / libwrap; in parentheses, the same by wall time",
    )
    for col in ("rules", "libwrap hosts_ctl()", "API", "API ratio", "--batch", "batch ratio"):
        table.add_column(col, justify="right")
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            rng = random.Random(1997 + n)
            d = Path(tmp) / str(n)
            d.mkdir()
            allow, deny = make_tables(n, rng, names=True)
            (d / "hosts.allow").write_text(allow)
            (d / "hosts.deny").write_text(deny)
            queries = make_queries(1000, rng, (allow, deny), names=False)
            theirs, ours = libwrap(d), todokede(d)
            expected = [theirs(daemon, addr) for daemon, addr in queries]
            for (daemon, addr), want in zip(queries, expected, strict=True):
                if ours(daemon, addr) != want:
                    sys.exit(f"API disagrees with libwrap at {n} rules: {daemon} {addr}")
            count = args.batch_queries or BATCH_QUERIES.get(n, 5_000)
            stream = [queries[i % len(queries)] for i in range(count)]
            qfile = d / "queries"
            qfile.write_text("".join(f"{daemon} {addr}\n" for daemon, addr in stream))
            got, _, _ = batch(d, qfile)
            want_all = [expected[i % len(queries)] for i in range(count)]
            if got != want_all:
                sys.exit(f"--batch disagrees with libwrap at {n} rules")
            best = {"lib": (0.0, 0.0), "api": (0.0, 0.0), "batch": (0.0, 0.0)}
            for _ in range(args.rounds):
                for key, decide in (("lib", theirs), ("api", ours)):
                    r = rate(decide, queries, args.seconds)
                    best[key] = (max(best[key][0], r[0]), max(best[key][1], r[1]))
                _, cpu, wall = batch(d, qfile)
                r = (count / cpu, count / wall)
                best["batch"] = (max(best["batch"][0], r[0]), max(best["batch"][1], r[1]))
            lib, api, bat = best["lib"], best["api"], best["batch"]
            table.add_row(
                f"{n:,}",
                f"{lib[0]:,.0f}",
                f"{api[0]:,.0f}",
                f"{api[0] / lib[0]:.1f}x ({api[1] / lib[1]:.1f}x)",
                f"{bat[0]:,.0f}",
                f"{bat[0] / lib[0]:.1f}x ({bat[1] / lib[1]:.1f}x)",
            )
            console.print(f"{n:,} rules: {len(queries)} queries agree; batch of {count:,}")
    console.print(table)
    console.print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
