"""Reports from bans: a draft as ``report draft --from-scan`` writes it, and submissions to a
real center that are retried and never filed twice."""

from __future__ import annotations

from pathlib import Path

from tests.cli.test_report import center, free_port
from tests.guard.harness import config, wait_until
from todokede.center.intake.schema import Report
from todokede.center.store import Store
from todokede.guard.config import load
from todokede.guard.reports import Reporter
from todokede.guard.state import State
from todokede.guard.watch import Guard

__all__ = ["center"]  # the fixture: a real center on loopback
LINE = "Dec  7 10:00:00 mail sshd[1]: Failed password for root from {} port 22 ssh2\n"


def start(tmp: Path, report: str, token: str = "", **guard: str) -> tuple[Guard, Path]:
    log = tmp / "auth.log"
    log.touch()
    conf = config(
        tmp,
        f'[jail.sshd]\nlogpath = "{log}"\nfilters = ["sshd"]\nmaxretry = 2\nbantime = "1s"\n'
        f'actions = ["hosts-deny"]\nreport = "{report}"\nlang = "en"\n',
        **guard,
    )
    g = Guard(load(conf), log=lambda m: None, token=token)
    g.start()
    return g, log


def fail(g: Guard, log: Path, addr: str, times: int) -> None:
    with log.open("a") as fh:
        fh.write(LINE.format(addr) * times)
    g.poll()


def test_a_ban_drafts_one_report(tmp_path: Path) -> None:
    g, log = start(tmp_path, "draft")
    try:
        fail(g, log, "192.0.2.60", 2)
        drafts = list((tmp_path / "reports").glob("*.json"))
        assert [d.name[:-14] for d in drafts] == ["guard-sshd-192.0.2.60"]
        report = Report.model_validate_json(drafts[0].read_text())
        assert report.methods == ["access_probe"] and report.attempts == 2
        assert report.language == "en" and "192.0.2.60" in (report.sources or [])
        evidence = report.evidence[0].text
        assert "Failed password for root from 192.0.2.60" in evidence
        g.unban("sshd", "192.0.2.60")
        fail(g, log, "192.0.2.60", 2)  # banned again the same day: no second report
        assert len(list((tmp_path / "reports").glob("*.json"))) == 1
    finally:
        g.close()


def test_submission_is_retried_and_never_twice(
    center: tuple[str, Store, str], tmp_path: Path
) -> None:
    url, store, token = center
    down = f"http://127.0.0.1:{free_port()}"
    g, log = start(tmp_path, "submit", center=down)
    try:
        fail(g, log, "192.0.2.61", 2)
    finally:
        g.close()
    state = State(tmp_path / "state.db")
    messages: list[str] = []
    try:
        offline = Reporter(state.path, tmp_path / "reports", down, token, messages.append)
        assert offline.send_pending(state) == 1  # the center is down: kept for later
        [(key, _, _, _)] = state.pending_reports()
        online = Reporter(state.path, tmp_path / "reports", url, token, messages.append)
        assert online.send_pending(state) == 0
        assert state.report_status(key) == "sent" and state.pending_reports() == []
        assert online.send_pending(state) == 0
        # the answer was lost and the row is pending again: the key gets the first report back
        state.set_report(
            key, "sshd", "192.0.2.61", 0.0, "pending", str(tmp_path / "reports" / f"{key}.json")
        )
        assert online.send_pending(state) == 0
    finally:
        state.close()
    assert store.list_reports()[1] == 1
    assert any("will retry" in m for m in messages)


def test_a_running_guard_submits(center: tuple[str, Store, str], tmp_path: Path) -> None:
    url, store, token = center
    g, log = start(tmp_path, "submit", center=url, token=token)
    try:
        fail(g, log, "192.0.2.62", 2)
        wait_until(lambda: store.list_reports()[1] == 1, what="the report at the center")
        wait_until(lambda: not g.state.pending_reports(), what="the report marked sent")
    finally:
        g.close()
    [stored] = store.list_reports()[0]
    assert stored.report.sources == ["192.0.2.62"]
