"""Benchmark `todokede wrap` against a direct connection and Debian's xinetd + tcpd.

All three front the same tiny service, which answers every connection with one line and
closes: directly (a forking accept loop on loopback), through `todokede wrap` (log to a
file), and through xinetd running /usr/sbin/tcpd, which runs `/bin/echo` for each
connection as inetd does. Both wrappers read the same rule files: ``--rules N`` random
rules of the shapes real sites write (tests/access/shapes.py; networks, prefixes, address
bans, EXCEPT parts, daemon lists; none of them names 127.0.0.0/8), then
``ALL: 127.0.0.0/255.0.0.0`` last in hosts.allow, and ``ALL: ALL`` in hosts.deny: every
connection is granted after a walk of every rule. tcpd reads /etc/hosts.allow and
/etc/hosts.deny, so xinetd runs in a private mount namespace (``unshare -m``, root) with
the rule files bind-mounted over them. Every connection comes from its own address: the
client binds its socket to a random 127.x.y.z before it connects, so that no per-address
cache can stand in for the decision. Latency is measured with one client
connecting to each target in turn (connect to last byte), so that other load on the
machine weighs on all of them alike. The rate is each target's peak: connections per
second with 4, 8 and 16 clients in parallel (every target gets the same ladder), the best
of those. One wrapper process serves several waiting connections per wake-up, so it gains
from concurrency, while xinetd forks a tcpd per connection whatever the load; a single
level would favour one or the other. Added latency is the wrapped p50/p99 minus the
direct one.

The client is the same for every target: one plain blocking socket per connection,
connected to the address (no name lookup), read to the end. It runs on the same CPUs as
the servers, so the less it spends, the more each target shows of its own speed.

    .venv/bin/python bench/wrap.py [--rules 10,10000] [--seconds 3] [--clients 4,8,16]
        [--rounds 1] [--wrap-workers 1] [--one-address]

Goals, at 10 and at 10,000 rules: 10 times xinetd + tcpd's rate; p50 added latency under
0.5 ms.
"""

from __future__ import annotations

import _socket
import argparse
import contextlib
import multiprocessing
import os
import random
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

HOST = "127.0.0.1"
GREETING = b"hello\n"
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.access.shapes import make_tables  # noqa: E402

# Source addresses: one per connection (see one_connection); --one-address: 127.0.0.1 only.
SOURCES = {"many": True}


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex((HOST, port)) == 0:
                s.recv(64)
                return
        time.sleep(0.05)
    raise SystemExit(f"bench: nothing listening on {HOST}:{port} after {timeout}s")


def backend_main(port: int, workers: int) -> None:
    """The service: accept, send one line, close. Forked workers share the socket."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, port))
    sock.listen(1024)
    for _ in range(workers - 1):
        if os.fork() == 0:
            break
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    while True:
        conn, _ = sock.accept()
        with contextlib.suppress(OSError):
            conn.sendall(GREETING)
        conn.close()


def client_main(
    port: int, seconds: float, queue: multiprocessing.Queue[object], many: bool
) -> None:
    SOURCES["many"] = many  # a fresh process under "spawn"
    random.seed()  # forked clients must not share one sequence of source addresses
    latencies: list[float] = []
    errors = 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        took = one_connection(port)
        if took is None:
            errors += 1
        else:
            latencies.append(took)
    queue.put((latencies, errors))


# A kernel-side receive timeout keeps the socket blocking (Python's settimeout() would
# poll() before every call). A connect on loopback is answered at once; a target that
# stops accepting shows as measure()'s own timeout.
_TIMEOUT = struct.pack("ll", 10, 0)


def one_connection(port: int) -> float | None:
    """One connection, connect to last byte. A lean client, the same for every target: no
    name lookup (socket.create_connection runs getaddrinfo every time), blocking calls, and
    the C socket type (socket.socket's Python-level constructor costs microseconds). It
    shares the two CPUs with the servers it measures."""
    started = time.perf_counter()
    s = _socket.socket()
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, _TIMEOUT)
        if SOURCES["many"]:  # a new client address for every connection
            r = random.getrandbits(24)
            s.bind((f"127.{r >> 16}.{(r >> 8) & 255}.{(r & 255) | 1}", 0))
        s.connect((HOST, port))
        data = s.recv(4096)
        while chunk := s.recv(4096):
            data += chunk
    except OSError:
        return None
    finally:
        s.close()
    return time.perf_counter() - started if data == GREETING else None


def latencies_interleaved(ports: list[int], seconds: float) -> tuple[list[list[float]], list[int]]:
    """One client, one connection to each target in turn: load on the machine then weighs
    on every target alike."""
    out: list[list[float]] = [[] for _ in ports]
    errors = [0 for _ in ports]
    end = time.perf_counter() + seconds * len(ports)
    while time.perf_counter() < end:
        for i, port in enumerate(ports):
            took = one_connection(port)
            if took is None:
                errors[i] += 1
            else:
                out[i].append(took)
    return out, errors


def measure(port: int, clients: int, seconds: float) -> tuple[float, list[float], int]:
    queue: multiprocessing.Queue[object] = multiprocessing.Queue()
    procs = [
        multiprocessing.Process(target=client_main, args=(port, seconds, queue, SOURCES["many"]))
        for _ in range(clients)
    ]
    for p in procs:
        p.start()
    latencies: list[float] = []
    errors = 0
    for _ in procs:
        got = queue.get(timeout=seconds + 60)
        assert isinstance(got, tuple)
        latencies += got[0]
        errors += got[1]
    for p in procs:
        p.join(10)
    return len(latencies) / seconds, latencies, errors


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def write_rules(rules: Path, n: int) -> None:
    """``n`` rules in all; every one is walked before the last line of hosts.allow grants
    the client (127.0.0.0/8, which no generated rule names)."""
    rules.mkdir()
    allow, deny = make_tables(max(1, n - 2), random.Random(1997 + n), names=False)
    body = [line for line in (allow + deny).splitlines() if line and line != "ALL: ALL"]
    body = [line for line in body if not line.startswith("#")][: n - 2]
    (rules / "hosts.allow").write_text("\n".join([*body, "ALL: 127.0.0.0/255.0.0.0", ""]))
    (rules / "hosts.deny").write_text("ALL: ALL\n")


def start_wrap(work: Path, backend: int, workers: int) -> tuple[subprocess.Popen[bytes], int]:
    rules = work / "rules"
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "todokede", "wrap", "--listen", f"{HOST}:{port}",
         "--to", f"{HOST}:{backend}", "--daemon", "bench", "--rules-dir", str(rules),
         "--log", str(work / "wrap.log"), "--workers", str(workers)],
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_port(port)
    except BaseException:
        stop(proc)  # never leave a server behind
        raise
    return proc, port


def start_xinetd(work: Path) -> tuple[subprocess.Popen[bytes], int] | None:
    xinetd, tcpd = shutil.which("xinetd"), "/usr/sbin/tcpd"
    if xinetd is None or not os.path.exists(tcpd) or os.geteuid() != 0:
        return None
    port = free_port()
    conf = work / "xinetd.conf"
    conf.write_text(
        f"""defaults
{{
    instances = UNLIMITED
}}
service bench
{{
    type = UNLISTED
    socket_type = stream
    protocol = tcp
    wait = no
    user = root
    bind = {HOST}
    port = {port}
    flags = NAMEINARGS NOLIBWRAP
    server = {tcpd}
    server_args = /bin/echo hello
    cps = 1000000 1
    per_source = UNLIMITED
    instances = UNLIMITED
    log_on_success =
    log_on_failure =
}}
"""
    )
    rules = work / "rules"
    # tcpd reads /etc/hosts.{allow,deny}: give it ours, in its own mount namespace only.
    script = (
        f'mount --bind "{rules}/hosts.allow" /etc/hosts.allow && '
        f'mount --bind "{rules}/hosts.deny" /etc/hosts.deny && exec "$@"'
    )
    for name in ("hosts.allow", "hosts.deny"):
        if not os.path.exists(f"/etc/{name}"):
            return None  # nothing to mount over (and none of ours to create in /etc)
    proc = subprocess.Popen(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh",
         xinetd, "-dontfork", "-stayalive", "-filelog", str(work / "xinetd.log"), "-f", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_port(port)
    except BaseException:
        stop(proc)  # never leave a server behind
        raise
    return proc, port


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement")
    parser.add_argument(
        "--clients",
        type=levels,
        default=[4, 8, 16],
        help="parallel clients for the rate: a comma-separated ladder (default 4,8,16)",
    )
    parser.add_argument("--rules", type=levels, default=[10, 10000], help="rule counts")
    parser.add_argument("--rounds", type=int, default=1, help="rate: rounds of the ladder")
    parser.add_argument("--backend-workers", type=int, default=2)
    parser.add_argument("--wrap-workers", type=int, default=1, help="todokede wrap --workers")
    parser.add_argument(
        "--one-address", action="store_true", help="every connection from 127.0.0.1"
    )
    parser.add_argument("--serve-backend", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_backend:
        backend_main(*args.serve_backend)
        return
    SOURCES["many"] = not args.one_address
    console = Console()
    work = Path(tempfile.mkdtemp(prefix="todokede-bench-wrap-"))
    backend_port = free_port()
    # Its own process group, so the forked workers stop together with it (killpg).
    backend = subprocess.Popen(
        [sys.executable, __file__, "--serve-backend", str(backend_port), str(args.backend_workers)],
        start_new_session=True,
    )
    try:
        wait_port(backend_port)
        for n in args.rules:
            (work / str(n)).mkdir()
            write_rules(work / str(n) / "rules", n)
            results, ladder = run(console, work / str(n), backend_port, args)
            report(console, results, ladder, args, n)
    finally:
        os.killpg(backend.pid, signal.SIGTERM)
        backend.wait(10)
        shutil.rmtree(work, ignore_errors=True)


Results = dict[str, tuple[float, list[float], float, int]]


def run(
    console: Console, work: Path, backend_port: int, args: argparse.Namespace
) -> tuple[Results, dict[tuple[str, int], float]]:
    """Start both wrappers on ``work``'s rules, measure the three targets, stop them."""
    procs: list[subprocess.Popen[bytes]] = []
    results: Results = {}
    ladder: dict[tuple[str, int], float] = {}  # (target, clients) -> conn/s
    try:
        targets: list[tuple[str, int]] = [("direct", backend_port)]
        wrap_proc, wrap_port = start_wrap(work, backend_port, args.wrap_workers)
        procs.append(wrap_proc)
        targets.append(("todokede wrap", wrap_port))
        xi = start_xinetd(work)
        if xi is None:
            console.print("[yellow]xinetd or tcpd not installed, or not root: skipped")
        else:
            procs.append(xi[0])
            targets.append(("xinetd + tcpd", xi[1]))
        with Progress(console=console, transient=True) as progress:
            total = 1 + len(targets) * args.rounds * len(args.clients)
            task = progress.add_task("latency (interleaved)", total=total)
            lat, lat_errors = latencies_interleaved([p for _, p in targets], args.seconds)
            progress.advance(task)
            errors = dict.fromkeys((n for n, _ in targets), 0)
            for _round in range(args.rounds):
                for clients in args.clients:
                    for name, port in targets:
                        progress.update(task, description=f"{name}: rate, {clients} clients")
                        rate, _, errs = measure(port, clients, args.seconds)
                        key = (name, clients)
                        ladder[key] = max(ladder.get(key, 0.0), rate)  # best of the rounds
                        errors[name] += errs
                        progress.advance(task)
            for (name, _), latencies, lat_errs in zip(targets, lat, lat_errors, strict=True):
                results[name] = (
                    max(ladder[name, c] for c in args.clients),  # the target's peak
                    latencies,
                    statistics.fmean(latencies) * 1000 if latencies else float("nan"),
                    errors[name] + lat_errs,
                )
    finally:
        for proc in procs:
            stop(proc)
    return results, ladder


def levels(text: str) -> list[int]:
    try:
        out = [int(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r}") from None
    if not out or min(out) < 1:
        raise argparse.ArgumentTypeError(f"client counts must be at least 1: {text!r}")
    return out


def report(
    console: Console,
    results: Results,
    ladder: dict[tuple[str, int], float],
    args: argparse.Namespace,
    n: int,
) -> None:
    sources = "127.0.0.1" if args.one_address else "a new 127.x.y.z per connection"
    console.print(f"[bold]{n:,} rules; clients from {sources}")
    rates = Table(title="connections per second by parallel clients")
    rates.add_column("target", justify="right")
    for clients in args.clients:
        rates.add_column(str(clients), justify="right")
    for name in results:
        rates.add_row(name, *(f"{ladder[name, c]:,.0f}" for c in args.clients))
    console.print(rates)
    table = Table(
        title=f"wrap benchmark ({os.cpu_count()} CPUs, {args.wrap_workers} wrap workers,"
        f" {args.seconds:g}s per measurement)",
        caption="latencies in ms; +p50/+p99: added over the direct connection",
    )
    # latencies in ms; "+" columns: added over the direct connection
    for col in ("target", "peak conn/s", "p50", "p99", "+p50", "+p99", "errors"):
        table.add_column(col, justify="right", no_wrap=True)
    direct = results["direct"][1]
    for name, (rate, lat, _mean, errors) in results.items():
        table.add_row(
            name,
            f"{rate:,.0f}",
            f"{pct(lat, 0.5):.3f}",
            f"{pct(lat, 0.99):.3f}",
            "" if name == "direct" else f"{pct(lat, 0.5) - pct(direct, 0.5):.3f}",
            "" if name == "direct" else f"{pct(lat, 0.99) - pct(direct, 0.99):.3f}",
            str(errors),
        )
    console.print(table)
    wrap = results.get("todokede wrap")
    xi = results.get("xinetd + tcpd")
    if wrap and xi:
        ratio = wrap[0] / xi[0] if xi[0] else float("inf")
        console.print(f"peak rate: todokede wrap / (xinetd + tcpd) = {ratio:.1f}x (goal 10x)")
    if wrap:
        added = pct(wrap[1], 0.5) - pct(direct, 0.5)
        console.print(f"added p50 latency: {added:.3f} ms (goal < 0.5 ms)")


if __name__ == "__main__":
    main()
