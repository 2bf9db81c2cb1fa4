"""Nothing lost: ``todokede serve`` takes concurrent submissions, is killed with SIGKILL in
the middle, and restarts; every report that got a 201 is there, complete, and no
half-written report exists. Retried submissions (same Idempotency-Key) are not doubled.
On SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from tests.center.conftest import free_port
from todokede.center.store import Store
from todokede.center.store import tables as t

START_TIMEOUT = 30.0


@contextmanager
def serve(url: str, log: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``todokede serve`` in a subprocess on a free port (another if that one is taken
    meanwhile); waits, bounded, until it answers; yields (process, base URL); killed on
    exit."""
    for _attempt in range(5):
        port = free_port()
        with log.open("ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "todokede", "serve", "--db", url, "--port", str(port)],
                stdout=out,
                stderr=out,
            )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while proc.poll() is None:
                try:
                    if httpx.get(f"{base}/api/public/months", timeout=2).is_success:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError(f"server did not start: {log.read_text()[-2000:]}")
                time.sleep(0.1)
            if proc.poll() is None:
                yield proc, base
                return
            if "address already in use" not in log.read_text():
                raise AssertionError(f"server exited: {log.read_text()[-2000:]}")
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=30)
    raise AssertionError("no free port found in 5 attempts")


def report(key: str) -> dict[str, object]:
    return {
        "title": f"relay abuse {key}",
        "methods": ["mail_relay", "spam"],
        "damage": ["mail_relay", "service_lowering"],
        "actual_damage": True,
        "targets": ["smtp"],
        "narrative": f"submission {key}",
        "evidence": [{"kind": "log", "text": f"Sep 19 sendmail[1]: relay {key}\n" * 40}],
    }


@pytest.mark.slow
def test_sigkill_mid_submission_loses_nothing(store_url: str, tmp_path: Path) -> None:
    with Store.open(store_url) as s:
        token = s.add_user("alice", "reporter")
    headers = {"Authorization": f"Bearer {token}"}
    accepted: dict[str, int] = {}  # idempotency key -> id, for every 201
    unanswered: set[str] = set()  # sent, no answer (the kill): to be retried
    lock = threading.Lock()
    stop = threading.Event()

    def submitter(n: int, base: str) -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=10) as client:
            for i in range(10_000):
                if stop.is_set():
                    return
                key = f"w{n}-{i}"
                try:
                    r = client.post("/api/reports", json=report(key),
                                    headers={"Idempotency-Key": key})  # fmt: skip
                except httpx.TransportError:
                    with lock:
                        unanswered.add(key)
                    return
                assert r.status_code == 201, r.text
                with lock:
                    accepted[key] = r.json()["id"]

    log = tmp_path / "serve.log"
    with serve(store_url, log) as (proc, base):
        threads = [threading.Thread(target=submitter, args=(n, base)) for n in range(8)]
        for th in threads:
            th.start()
        deadline = time.monotonic() + 60
        while len(accepted) < 150 and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)  # mid-way: requests are in flight
        proc.wait(timeout=30)
        stop.set()
        for th in threads:
            th.join(timeout=60)
        assert not any(th.is_alive() for th in threads)
    assert len(accepted) >= 150, f"only {len(accepted)} accepted before the deadline"
    print(f"accepted {len(accepted)}, unanswered {len(unanswered)}")

    # Every 201'd report is there and complete.
    with Store.open(store_url) as s:
        for key, rid in accepted.items():
            sr = s.get_report(rid, actor="check")
            assert sr.report.narrative == f"submission {key}"
            assert sr.report.evidence[0].text == f"Sep 19 sendmail[1]: relay {key}\n" * 40
            assert sr.owner == "alice"
        _assert_no_half_written(s)
        before = s.list_reports()[1]
        assert before >= len(accepted)

    # After a restart the center serves again; retrying the unanswered submissions with
    # their keys stores each at most once.
    with (
        serve(store_url, log) as (_, base),
        httpx.Client(base_url=base, headers=headers, timeout=10) as client,
    ):
        for key in sorted(unanswered):
            r = client.post("/api/reports", json=report(key), headers={"Idempotency-Key": key})
            assert r.status_code == 201
        for key, rid in list(accepted.items())[:5]:
            r = client.post("/api/reports", json=report(key), headers={"Idempotency-Key": key})
            assert r.json()["id"] == rid
        listed = client.get("/api/reports?limit=1000").json()
    narratives = [i["title"] for i in listed["items"]]
    assert len(narratives) == len(set(narratives)), "a retried submission was stored twice"
    assert set(narratives) == {f"relay abuse {k}" for k in [*accepted, *unanswered]}
    with Store.open(store_url) as s:
        _assert_no_half_written(s)


def _assert_no_half_written(s: Store) -> None:
    """Each report row has its terms and its audit entry (one transaction wrote them all)."""
    with s.engine.connect() as conn:
        reports = conn.execute(select(func.count()).select_from(t.reports)).scalar_one()
        creates = conn.execute(
            select(func.count()).select_from(t.audit).where(t.audit.c.action == "create")
        ).scalar_one()
        per_report: dict[int, int] = dict(
            conn.execute(
                select(t.report_terms.c.report_id, func.count()).group_by(
                    t.report_terms.c.report_id
                )
            ).all()
        )
    assert creates == reports
    expected_terms = 5  # 2 methods + 2 damage + 1 target
    for sr in s.iter_reports():
        assert sr.report.narrative and sr.report.evidence, sr.id
        assert per_report.get(sr.id) == expected_terms, sr.id
