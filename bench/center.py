"""Benchmark of the reporting center (run on demand, not in the test suite).

1. Submissions: ``wrk`` (a second process) POSTs a report to ``todokede serve`` on SQLite
   and on PostgreSQL, beside a *bare* endpoint in the same run — the same stack (uvicorn,
   FastAPI, SQLAlchemy, same database) inserting the same JSON with no validation, no
   authentication and no audit: the ceiling of this stack on this machine. Both run side
   by side and are measured in alternation (``--rounds``, median kept), so a drifting
   machine load hits both alike. Prints accepted reports/s, p50/p99 latency and the ratio.
2. Statistics: stores N reports (default 1,000,000, spread over ten years) with fast bulk
   inserts, then times a month's statistics (``center.stats.month_stats``: the GROUP BYs
   on the denormalised columns behind the publication) and a bare single-month GROUP BY.

Goals on 2 cores: >= half the bare rate and >= 1,000 reports/s with p99 < 100 ms;
a month's statistics over 1,000,000 reports in < 2 s.

    .venv/bin/python bench/center.py                  # everything
    .venv/bin/python bench/center.py --reports 200000 --duration 5 --backend sqlite
    .venv/bin/python bench/center.py --bare-serve URL PORT   # (internal: the bare server)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.progress import Progress  # noqa: E402
from rich.table import Table  # noqa: E402

console = Console(stderr=True)

REPORT = {
    "title": "tcp_wrapperのログにIMAPサーバへの不審なアクセス",
    "reporter": {"organisation": "Example Univ.", "email": "admin@example.ac.jp",
                 "type": "system_admin"},
    "discovered": "1997-09-16",
    "period": {"start": "1997-08-15", "end": "1997-09-15"},
    "systems": [{"device": "mail_server", "role": "IMAP server", "os": "SunOS 4.1.4",
                 "software": ["imapd 10.x", "tcp_wrapper 7.6"]}],
    "discovery": {"how": "own_monitoring", "tool": "tcp_wrapper"},
    "methods": ["access_probe", "security_hole_attack"],
    "damage": ["none"],
    "actual_damage": False,
    "causes": ["old_version"],
    "sources": ["192.0.2.7", "198.51.100.23"],
    "targets": ["imap"],
    "attempts": 9,
    "narrative": "tcp_wrapperのログを調べたところ、外部の不明なホストから9回の接続試行があった。",
    "evidence": [{"kind": "log", "source": "messages",
                  "text": "Aug 15 03:12:44 mail imapd[2101]: refused connect from 192.0.2.7\n"
                  * 9}],
}  # fmt: skip


# -- servers -----------------------------------------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def process(argv: Callable[[int], list[str]], log: Path) -> Iterator[int]:
    """Start ``argv(port)`` on a free port (another if it is taken meanwhile), wait until it
    answers; yields the port; stopped on exit."""
    import httpx

    for _attempt in range(5):
        port = free_port()
        with log.open("ab") as out:
            proc = subprocess.Popen(argv(port), stdout=out, stderr=out)
        try:
            deadline = time.monotonic() + 60
            while proc.poll() is None:
                try:
                    httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        raise RuntimeError("server did not start") from None
                    time.sleep(0.1)
            if proc.poll() is None:
                yield port
                return
            if "address already in use" not in log.read_text():
                raise RuntimeError(f"server exited: {log.read_text()[-2000:]}")
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
            proc.wait(timeout=15)
    raise RuntimeError("no free port in 5 attempts")


def bare_serve(url: str, port: int) -> None:
    """The bare endpoint: same JSON, inserted as it comes."""
    import uvicorn
    from fastapi import FastAPI
    from sqlalchemy import Column, Integer, MetaData, Table, Text, insert
    from starlette.requests import Request
    from starlette.responses import JSONResponse

    from todokede.center.store import Store

    store = Store.open(url)  # same engine settings (WAL, pool) as the real center
    meta = MetaData()
    bare = Table("bare", meta, Column("id", Integer, primary_key=True), Column("body", Text))
    meta.create_all(store.engine)
    app = FastAPI()

    async def post(request: Request) -> JSONResponse:
        body = (await request.body()).decode()
        with store._write() as conn:
            new = conn.execute(insert(bare).values(body=body).returning(bare.c.id)).scalar_one()
        return JSONResponse({"id": int(new)}, status_code=201)

    app.router.add_route("/bare", post, methods=["POST"])

    @app.get("/")
    def root() -> dict[str, str]:
        return {}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


# -- wrk ---------------------------------------------------------------------------------


def wrk(url: str, body: str, headers: dict[str, str], *, duration: int, connections: int,
        tmp: Path) -> dict[str, float]:  # fmt: skip
    script = tmp / "post.lua"
    (tmp / "body.json").write_text(body, encoding="utf-8")
    lines = [
        'wrk.method = "POST"',
        f'local f = assert(io.open("{tmp / "body.json"}", "rb"))',
        'wrk.body = f:read("*a")',
        "f:close()",
    ]
    lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]
    lines += [
        "local statuses = {}",
        "response = function(status, headers, body)",
        "  statuses[status] = (statuses[status] or 0) + 1",
        "end",
    ]
    script.write_text("\n".join(lines) + "\n")
    out = subprocess.run(
        ["wrk", "-t", "2", "-c", str(connections), "-d", f"{duration}s", "--latency",
         "-s", str(script), url],
        capture_output=True, text=True, timeout=duration + 60, check=True,
    ).stdout  # fmt: skip
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    return {
        "rate": rate,
        "p50": _ms(re.search(r"\s50%\s+([\d.]+\w+)", out).group(1)),  # type: ignore[union-attr]
        "p99": _ms(re.search(r"\s99%\s+([\d.]+\w+)", out).group(1)),  # type: ignore[union-attr]
        "non2xx": float(non2xx.group(1)) if non2xx else 0.0,
        "errors": errors.group(0) if errors else "",  # type: ignore[dict-item]
    }


def _ms(value: str) -> float:
    number, unit = re.match(r"([\d.]+)(\w+)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def submissions(url: str, label: str, args: argparse.Namespace, tmp: Path) -> list[Any]:
    from todokede.center.store import Store

    with Store.open(url) as store:
        token = store.add_user(f"bench{random.randrange(10**9)}", "reporter")
    body = json.dumps(REPORT, ensure_ascii=False)
    rows = []

    def serve(port: int) -> list[str]:
        return [sys.executable, "-m", "todokede", "serve", "--db", url, "--port", str(port),
                "--workers", str(args.workers)]  # fmt: skip

    def bare(port: int) -> list[str]:
        return [sys.executable, __file__, "--bare-serve", url, str(port)]

    # Both servers up at once, measured in alternation: the machine's load drifts, and
    # the ratio should compare like with like. The median round of each is kept.
    runs: dict[str, list[dict[str, Any]]] = {"center": [], "bare": []}
    with process(serve, tmp / "serve.log") as cport, process(bare, tmp / "bare.log") as bport:
        for n in range(args.rounds):
            console.print(f"[bold]{label}[/]: round {n + 1}/{args.rounds} ...")
            runs["center"].append(
                wrk(
                    f"http://127.0.0.1:{cport}/api/reports",
                    body,
                    {"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
                    duration=args.duration,
                    connections=args.connections,
                    tmp=tmp,
                )
            )
            runs["bare"].append(
                wrk(
                    f"http://127.0.0.1:{bport}/bare",
                    body,
                    {"Content-Type": "application/json"},
                    duration=args.duration,
                    connections=args.connections,
                    tmp=tmp,
                )
            )
    center, ceiling = (sorted(runs[k], key=lambda r: r["rate"])[len(runs[k]) // 2]
                       for k in ("center", "bare"))  # fmt: skip
    for name, r in ((f"center POST /api/reports ({args.workers} worker(s))", center),
                    ("bare insert (1 process)", ceiling)):  # fmt: skip
        rows.append((label, name, r))
    ratio = center["rate"] / ceiling["rate"] if ceiling["rate"] else 0.0
    rows.append((label, "ratio center/bare", {"ratio": ratio}))
    return rows


# -- statistics over a million reports ---------------------------------------------------

METHODS = ["access_probe", "security_hole_attack", "intrusion", "worm_probe", "mail_relay",
           "mail_bombing", "spam", "dos", "other"]  # fmt: skip
DAMAGE = ["none", "file_alteration", "server_down", "mail_relay", "service_lowering", "other"]
TARGETS = ["imap", "smtp", "http", "ssh", "ftp", "pop3"]


def fill(url: str, n: int) -> None:
    """Store ``n`` reports over 1990-01..1999-12 with their terms, in bulk (executemany on
    SQLite, COPY on PostgreSQL), as the store would have written them."""
    from todokede.center.intake.schema import Report, StoredReport, Triage
    from todokede.center.store import Store
    from todokede.center.store import tables as t
    from todokede.center.store.rows import columns as _columns
    from todokede.center.store.rows import term_rows as _term_rows

    rng = random.Random(1997)
    now = datetime.now(UTC)
    chunk = 20_000
    with Store.open(url) as store, Progress(console=console) as progress:
        task = progress.add_task(f"storing {n:,} reports", total=n)
        next_id = 1
        while next_id <= n:
            reports, terms = [], []
            for rid in range(next_id, min(n, next_id + chunk - 1) + 1):
                received = date(
                    1990 + rng.randrange(10), rng.randrange(1, 13), rng.randrange(1, 29)
                )
                report = Report(
                    received=received,
                    methods=rng.sample(METHODS, rng.choice((1, 1, 2))),
                    damage=[rng.choice(DAMAGE)],
                    actual_damage=rng.random() < 0.3,
                    targets=[rng.choice(TARGETS)],
                    title="bench",
                )
                triage = Triage(status=rng.choice(("received", "triaged", "closed")),
                                is_test=rng.random() < 0.02)  # fmt: skip
                sr = StoredReport(id=rid, report=report, triage=triage, owner="bench",
                                  created_at=now, updated_at=now)  # fmt: skip
                cols = _columns(sr)
                reports.append({"id": rid, "owner": "bench", "created_at": now,
                                "updated_at": now, "idempotency": None, **cols})  # fmt: skip
                terms += _term_rows(sr, cols)
            if store.dialect == "postgresql":
                _copy(store, t.reports, reports)
                _copy(store, t.report_terms, terms)
            else:
                with store._write() as conn:
                    conn.execute(t.reports.insert(), reports)
                    conn.execute(t.report_terms.insert(), terms)
            progress.advance(task, len(reports))
            next_id += len(reports)
        if store.dialect == "postgresql":
            with store._write() as conn:
                conn.exec_driver_sql(f"SELECT setval('reports_id_seq', {n})")
            with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE")
        else:
            with store.engine.connect() as conn:
                conn.exec_driver_sql("ANALYZE")


def _copy(store: Any, table: Any, rows: list[dict[str, Any]]) -> None:
    names = [c.name for c in table.columns]
    raw = store.engine.raw_connection()
    try:
        cur = raw.cursor()
        with cur.copy(f"COPY {table.name} ({', '.join(names)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([row[name] for name in names])
        raw.commit()
    finally:
        raw.close()


def stats(url: str, label: str, n: int) -> list[Any]:
    from sqlalchemy import func, select

    from todokede.center.publication.stats import month_stats
    from todokede.center.store import Store
    from todokede.center.store import tables as t

    fill(url, n)
    rows = []
    with Store.open(url) as store:
        for month in ("1997-09", "1999-12"):
            started = time.perf_counter()
            result = month_stats(store, month)
            took = time.perf_counter() - started
            rows.append((label, f"month_stats({month}) over {n:,}",
                         {"seconds": took, "reports": result.this.reports.n}))  # fmt: skip
        tt = t.report_terms.c
        q = (
            select(tt.vocabulary, tt.code, func.count())
            .where(tt.month == "1997-09", tt.counted.is_(True))
            .group_by(tt.vocabulary, tt.code)
        )
        started = time.perf_counter()
        with store.engine.connect() as conn:
            conn.execute(q).all()
        rows.append((label, "one month's GROUP BY", {"seconds": time.perf_counter() - started}))
    return rows


# -- main --------------------------------------------------------------------------------


@contextmanager
def database(name: str, tmp: Path) -> Iterator[Callable[[str], str]]:
    """Yields ``make_url(database_name)``: a fresh database on the backend."""
    if name == "sqlite":
        yield lambda db: f"sqlite:///{tmp / db}.db"
        return
    import psycopg

    from tests.center.conftest import postgres_server

    with postgres_server() as server:
        dsn = f"host={server.host} port={server.port} user={server.user} dbname=postgres"

        def make(db: str) -> str:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(f"CREATE DATABASE {db}")
            return server.url(db)

        yield make


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--reports", type=int, default=1_000_000)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs (median kept)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--skip-stats", action="store_true")
    parser.add_argument("--skip-load", action="store_true")
    parser.add_argument("--bare-serve", nargs=2, metavar=("URL", "PORT"))
    args = parser.parse_args()
    if args.bare_serve:
        bare_serve(args.bare_serve[0], int(args.bare_serve[1]))
        return
    from todokede.center.intake.schema import Report

    Report.model_validate(REPORT)  # the benchmark's body must be a valid report
    if not shutil.which("wrk") and not args.skip_load:
        sys.exit("wrk is not installed (scripts/peers)")
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    rows: list[Any] = []
    for name in backends:
        with (
            tempfile.TemporaryDirectory(prefix="todokede-bench-") as d,
            database(name, Path(d)) as make_url,
        ):
            if not args.skip_load:
                rows += submissions(make_url("load"), name, args, Path(d))
            if not args.skip_stats:
                rows += stats(make_url("stats"), name, args.reports)
    table = Table(title=f"todokede center on {os.cpu_count()} cores")
    for col in ("backend", "what", "reports/s", "p50 ms", "p99 ms", "non-2xx", "seconds", "ratio"):
        table.add_column(col, justify="right" if col not in ("backend", "what") else "left")
    for backend, what, r in rows:
        table.add_row(
            backend, what,
            f"{r['rate']:,.0f}" if "rate" in r else "",
            f"{r['p50']:.1f}" if "p50" in r else "",
            f"{r['p99']:.1f}" if "p99" in r else "",
            f"{r['non2xx']:.0f}" if "non2xx" in r else "",
            f"{r['seconds']:.3f}" if "seconds" in r else "",
            f"{r['ratio']:.2f}" if "ratio" in r else "",
        )  # fmt: skip
    Console(width=160).print(table)


if __name__ == "__main__":
    main()
