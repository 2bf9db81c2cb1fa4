"""Benchmark `todokede guard` against Debian's fail2ban, side by side in one run.

Both follow their own copy of the same sshd log with the same filter (fail2ban's
filter.d/sshd.conf, which guard loads through todokede.logs.fail2ban; ``--builtin`` also
runs guard's own sshd detector) and ban into a hosts.deny-format file: fail2ban with its
``hostsdeny`` action, guard with its host list. Each runs in a temporary directory with its
own socket, pid file and database; fail2ban uses its best backend here (pyinotify when
installed, else polling).

  latency     a new address writes maxretry failing lines at once; the time until it
              appears in the deny file (the ban has taken effect for libwrap and wrap)
  throughput  N failure lines from N/2 addresses (two each: below maxretry, no bans), then
              one address that is banned; lines / time from the first write to that ban,
              and lines / the CPU time the target used meanwhile;
              with --noise K, K other lines of an auth.log after each failure line (most
              lines of a real log are not failures)
  memory      resident memory with 100,000 banned addresses (maxretry = 1: one line each);
              fail2ban without an action for this part (a shell per ban would take hours)

    .venv/bin/python bench/guard.py [--latency 20] [--lines 50000] [--bans 100000]
                                    [--noise 0] [--builtin]

Goals: guard's latency at most 1/10 of fail2ban's; at least 10 times its lines per second.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

FILTER_DIR = Path("/etc/fail2ban/filter.d")
ACTION_DIR = Path("/etc/fail2ban/action.d")
LINE = "{ts} bench sshd[4242]: Failed password for root from {addr} port 22 ssh2\n"
# the other lines of an auth.log, for --noise (two of them begin as sshd failures may)
NOISE = "".join(
    "{ts} bench " + line + "\n"
    for line in (
        "sshd[4243]: Accepted publickey for taro from 192.0.2.1 port 50000 ssh2: ED25519 SHA256:x",
        "sshd[4243]: pam_unix(sshd:session): session opened for user taro(uid=1000) by (uid=0)",
        "CRON[4244]: pam_unix(cron:session): session closed for user root",
        "sshd[4245]: Received disconnect from 192.0.2.2 port 50001:11: disconnected by user",
        "systemd-logind[1]: New session 7 of user taro.",
        "sshd[4246]: User child is on pid 4247",
    )
)


def addr_of(i: int, net: int = 1) -> str:
    return f"{net}.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"


def lines(addrs: list[str], times: int = 1, noise: int = 0) -> str:
    """``times`` failure lines of each address, each followed by ``noise`` other lines."""
    ts = time.strftime("%b %e %H:%M:%S")  # fail2ban skips lines older than findtime
    other = NOISE.format(ts=ts).splitlines(keepends=True)
    after = "".join(other[i % len(other)] for i in range(noise))
    return "".join(LINE.format(ts=ts, addr=a) + after for a in addrs for _ in range(times))


def rss_kib(pid: int) -> int:
    for row in Path(f"/proc/{pid}/status").read_text().splitlines():
        if row.startswith("VmRSS:"):
            return int(row.split()[1])
    return 0


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.0005) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


class Target:
    name = ""
    pid = 0

    def __init__(self, root: Path, maxretry: int, action: bool) -> None:
        self.root = root
        self.log = root / "auth.log"
        self.deny = root / "hosts.deny"
        self.maxretry = maxretry
        self.action = action
        self.log.write_text("")
        self.deny.write_text("")

    def banned(self, addr: str) -> bool:
        # the file only grows while bans are being made; look at its tail
        with open(self.deny, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - 4096))
            return addr.encode() + b"\n" in fh.read()

    def write(self, text: str) -> None:
        with open(self.log, "a") as fh:
            fh.write(text)

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def bans(self) -> int:
        raise NotImplementedError


class Guard(Target):
    def __init__(self, root: Path, maxretry: int, action: bool, builtin: bool) -> None:
        super().__init__(root, maxretry, action)
        self.name = "todokede guard" + (" (sshd detector)" if builtin else " (sshd.conf)")
        flt = '"sshd"' if builtin else f'"{FILTER_DIR / "sshd.conf"}"'
        (root / "guard.toml").write_text(
            f'[guard]\nstate = "{root}/guard.db"\nhosts_deny = "{self.deny}"\n'
            f'max_tracked = 200000\n[jail.sshd]\nlogpath = "{self.log}"\nfilters = [{flt}]\n'
            f'maxretry = {maxretry}\nfindtime = "1h"\nbantime = "1h"\n'
            f'ignoreip = ["127.0.0.1"]\nactions = ["hosts-deny"]\n'
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        err = open(self.root / "guard.err", "ab")  # noqa: SIM115 - the process keeps it
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "todokede", "guard", "--config", str(self.root / "guard.toml")],
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        err.close()
        self.pid = self.proc.pid
        if not wait_for(lambda: b"started:" in (self.root / "guard.err").read_bytes(), 60, 0.01):
            raise RuntimeError((self.root / "guard.err").read_text())

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(60)

    def bans(self) -> int:
        import sqlite3

        db = sqlite3.connect(self.root / "guard.db", timeout=30)
        try:
            return int(db.execute("SELECT count(*) FROM bans").fetchone()[0])
        finally:
            db.close()


class Fail2ban(Target):
    def __init__(self, root: Path, maxretry: int, action: bool) -> None:
        super().__init__(root, maxretry, action)
        self.name = "fail2ban " + _f2b_version()
        conf = root / "conf"
        conf.mkdir()
        shutil.copytree(FILTER_DIR, conf / "filter.d")
        shutil.copytree(ACTION_DIR, conf / "action.d")
        (conf / "fail2ban.conf").write_text(
            f"[Definition]\nloglevel = WARNING\nlogtarget = {root}/fail2ban.log\n"
            f"socket = {root}/f2b.sock\npidfile = {root}/f2b.pid\ndbfile = {root}/f2b.sqlite3\n"
            "dbpurgeage = 1d\n"
        )
        action_line = f"action = hostsdeny[file={self.deny}]\n" if action else "action =\n"
        (conf / "jail.conf").write_text(
            "[DEFAULT]\nbackend = auto\nusedns = no\nignoreip = 127.0.0.1\n"
            f"[sshd]\nenabled = true\nfilter = sshd\nlogpath = {self.log}\n"
            f"maxretry = {maxretry}\nfindtime = 3600\nbantime = 3600\n{action_line}"
        )
        self.conf = conf

    def client(self, *args: str) -> str:
        done = subprocess.run(
            ["fail2ban-client", "-c", str(self.conf), *args],
            capture_output=True,
            text=True,
            timeout=600,
        )
        return done.stdout + done.stderr

    def start(self) -> None:
        out = self.client("-x", "start")
        if not wait_for(lambda: (self.root / "f2b.pid").exists(), 60, 0.01):
            raise RuntimeError(out)
        self.pid = int((self.root / "f2b.pid").read_text())
        wait_for(lambda: "sshd" in self.client("status"), 60, 0.1)

    def stop(self) -> None:
        self.client("stop")

    def banned(self, addr: str) -> bool:
        if not self.action:
            return False
        with open(self.deny, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - 4096))
            return b"ALL: " + addr.encode() + b"\n" in fh.read()

    def bans(self) -> int:
        for row in self.client("status", "sshd").splitlines():
            if "Currently banned:" in row:
                return int(row.rsplit(":", 1)[1])
        return 0


def _f2b_version() -> str:
    out = subprocess.run(["fail2ban-server", "-V"], capture_output=True, text=True, timeout=60)
    return (out.stdout.split() or ["?"])[-1]


@contextlib.contextmanager
def running(target: Target) -> Iterator[Target]:
    target.start()
    try:
        yield target
    finally:
        target.stop()


def latency(target: Target, trials: int, net: int) -> list[float]:
    out = []
    for i in range(trials):
        addr = addr_of(i + 1, net)
        text = lines([addr], target.maxretry)
        time.sleep(0.2)  # idle in between, as a real attack arrives
        start = time.perf_counter()
        target.write(text)
        if not wait_for(lambda a=addr: target.banned(a), 30):  # type: ignore[misc]
            raise RuntimeError(f"{target.name}: no ban of {addr} within 30 s")
        out.append(time.perf_counter() - start)
    return out


def cpu_seconds(pid: int) -> float:
    """User and system time of a process (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def throughput(target: Target, count: int, net: int, noise: int = 0) -> tuple[float, float]:
    """Lines (failures and the others) per second of wall time, and per second of the
    target's CPU time (steadier on a loaded machine)."""
    addrs = [addr_of(i, net) for i in range(1, count // 2 + 1)]
    bulk = lines(addrs, 2, noise)
    last = addr_of(count // 2 + 1, net)
    cpu = cpu_seconds(target.pid)
    start = time.perf_counter()
    target.write(bulk + lines([last], target.maxretry))
    if not wait_for(lambda: target.banned(last), 1800, 0.01):
        raise RuntimeError(f"{target.name}: the closing ban never came")
    wall = time.perf_counter() - start
    cpu = cpu_seconds(target.pid) - cpu
    total = count * (1 + noise)
    return total / wall, total / max(cpu, 0.01)


def memory(target: Target, count: int) -> tuple[int, int, float]:
    before = rss_kib(target.pid)
    start = time.perf_counter()
    step = 10_000
    for i in range(0, count, step):
        target.write(lines([addr_of(j, 11) for j in range(i + 1, min(count, i + step) + 1)]))
    if not wait_for(lambda: target.bans() >= count, 3600, 0.5):
        raise RuntimeError(f"{target.name}: only {target.bans()} bans")
    return before, rss_kib(target.pid), time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--latency", type=int, default=20, help="ban-latency trials per target")
    ap.add_argument("--lines", type=int, default=50_000, help="failure lines for the rate")
    ap.add_argument("--bans", type=int, default=100_000, help="banned addresses for memory")
    ap.add_argument("--noise", type=int, default=0, help="other lines after each failure")
    ap.add_argument("--builtin", action="store_true", help="also guard's own sshd detector")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directories")
    args = ap.parse_args()
    for program in ("fail2ban-server", "fail2ban-client"):
        if not shutil.which(program):
            sys.exit(f"bench/guard: {program} is not installed (scripts/peers)")
    top = Path(tempfile.mkdtemp(prefix="bench-guard-"))
    results: dict[str, dict[str, float]] = {}
    try:
        makers: list[tuple[str, Callable[[Path, int, bool], Target]]] = [
            ("f2b", lambda r, m, a: Fail2ban(r, m, a)),
            ("guard", lambda r, m, a: Guard(r, m, a, False)),
        ]
        if args.builtin:
            makers.append(("guard-builtin", lambda r, m, a: Guard(r, m, a, True)))
        for n, (key, make) in enumerate(makers):
            root = top / key
            root.mkdir()
            with running(make(_fresh(root, "a"), 3, True)) as t:
                lat = latency(t, args.latency, 100 + n)
                rate, cpu_rate = throughput(t, args.lines, 150 + n, args.noise)
            with running(make(_fresh(root, "m"), 1, key != "f2b")) as t:
                before, after, took = memory(t, args.bans)
            results[t.name] = {
                "p50": statistics.median(lat),
                "p90": sorted(lat)[int(len(lat) * 0.9) - 1] if len(lat) >= 10 else max(lat),
                "rate": rate,
                "cpu_rate": cpu_rate,
                "rss_before": before,
                "rss_after": after,
                "ban_time": took,
            }
            print(f"{t.name}: done", file=sys.stderr)
    finally:
        if args.keep:
            print(f"kept {top}", file=sys.stderr)
        else:
            shutil.rmtree(top, ignore_errors=True)
    report(results, args)


def _fresh(root: Path, name: str) -> Path:
    d = root / name
    d.mkdir()
    return d


def report(results: dict[str, dict[str, float]], args: argparse.Namespace) -> None:
    names = list(results)
    f2b = results[names[0]]
    print(
        f"ban latency ({args.latency} trials), lines per second ({args.lines} failure lines"
        + (f", {args.noise} other lines after each" if args.noise else "")
        + f"), "
        f"memory with {args.bans} bans; noisy if the machine is loaded"
    )
    print(
        f"{'target':34} {'p50 ms':>9} {'p90 ms':>9} {'lines/s':>10} {'lines/cpu-s':>12} "
        f"{'RSS MiB':>9} {'+MiB':>7} {'bans s':>8}"
    )
    for name, r in results.items():
        print(
            f"{name:34} {r['p50'] * 1000:9.1f} {r['p90'] * 1000:9.1f} {r['rate']:10.0f} "
            f"{r['cpu_rate']:12.0f} {r['rss_after'] / 1024:9.1f} "
            f"{(r['rss_after'] - r['rss_before']) / 1024:7.1f} {r['ban_time']:8.1f}"
        )
    for name in names[1:]:
        r = results[name]
        print(
            f"{name}: latency {r['p50'] / f2b['p50']:.3f} x fail2ban's (goal <= 0.1), "
            f"rate {r['rate'] / f2b['rate']:.1f} x (goal >= 10), "
            f"per CPU second {r['cpu_rate'] / f2b['cpu_rate']:.1f} x, "
            f"memory {r['rss_after'] / max(1, f2b['rss_after']):.2f} x"
        )


if __name__ == "__main__":
    main()
