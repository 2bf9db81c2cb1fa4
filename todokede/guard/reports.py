"""Reports from bans: a draft as ``report draft --from-scan`` writes it, or a submission to a
center, at most once for each address, jail and day.

The key ``guard-JAIL-ADDR-YYYYMMDD`` is the report's file name, its row in the guard's state
and the ``Idempotency-Key`` sent to the center: a retry after a lost answer, or after a
restart, gets the first report back instead of filing a second one. Submissions are retried
with growing pauses in a thread of their own, so a slow center never delays a ban.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from todokede.errors import REPORT_MODULES, MissingExtra, ReportError, StoreError, TodokedeError
from todokede.guard.state import Ban, State

RETRY_FIRST = 5.0
RETRY_MAX = 600.0


def key_of(ban: Ban) -> str:
    day = datetime.fromtimestamp(ban.banned_at, UTC).strftime("%Y%m%d")
    return f"guard-{ban.jail}-{ban.addr.replace(':', '_')}-{day}"


def finding(ban: Ban, service: str, first: float, evidence: list[str]) -> dict[str, object]:
    """The ban as one finding of ``scan --json``: repeated failed attempts, refused."""

    def iso(t: float) -> str:
        return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S")

    return {
        "kind": "access-probe",
        "service": service,
        "sources": [ban.addr],
        "count": ban.failures,
        "first_seen": iso(first),
        "last_seen": iso(ban.banned_at),
        "outcome": "refused (banned by todokede guard)",
        "evidence": evidence,
        "targets": [],
        "details": {"jail": ban.jail, "banned": True},
    }


def require() -> None:
    """Raise :class:`MissingExtra` when reports cannot be drafted here (the core install has
    no pydantic): a jail that reports says so when guard starts, not at its first ban."""
    try:
        import todokede.center.intake.draft  # noqa: F401
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] in REPORT_MODULES:
            raise MissingExtra(exc.name or "pydantic", "report") from None
        raise


class Reporter:
    def __init__(
        self,
        state_path: Path,
        report_dir: Path,
        center: str,
        token: str,
        log: Callable[[str], None],
    ) -> None:
        self.state_path = state_path
        self.report_dir = Path(report_dir)
        self.center = center
        self.token = token
        self.log = log
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def make(
        self, state: State, mode: str, ban: Ban, service: str, first: float, evidence: list[str],
        lang: str,
    ) -> str | None:  # fmt: skip
        """Draft (and queue for sending) the report of ``ban``; None if it was made before."""
        from todokede.center.intake.draft import draft_from_findings

        key = key_of(ban)
        if state.report_status(key) is not None:
            return None
        try:
            report = draft_from_findings(
                [finding(ban, service, first, evidence)],
                lang="en" if lang == "en" else "ja",
            )
        except ReportError as exc:
            self.log(f"report {key}: {exc}")
            return None
        text = report.model_dump_json(indent=2, exclude_none=True) + "\n"
        path = self.report_dir / f"{key}.json"
        self.report_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)  # never a half-written draft
        status = "pending" if mode == "submit" else "drafted"
        state.set_report(key, ban.jail, ban.addr, ban.banned_at, status, str(path))
        if mode == "submit":
            self._wake.set()
        return key

    # -- sending -----------------------------------------------------------------------

    def start(self) -> None:
        if self.center and self._thread is None:
            self._thread = threading.Thread(target=self._run, daemon=True, name="reports")
            self._thread.start()
            self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=35)

    def _run(self) -> None:
        state = State(self.state_path)
        pause = RETRY_FIRST
        try:
            while not self._stop.is_set():
                self._wake.wait(timeout=pause)
                self._wake.clear()
                if self._stop.is_set():
                    return
                failed = self.send_pending(state)
                pause = min(pause * 2, RETRY_MAX) if failed else RETRY_FIRST
        finally:
            state.close()

    def send_pending(self, state: State) -> int:
        """Send every pending report once; how many could not be sent this time."""
        from todokede.center.intake.schema import Report
        from todokede.center.intake.submit import submit_report

        failed = 0
        for key, _jail, _addr, path in state.pending_reports():
            if self._stop.is_set():
                break
            try:
                report = Report.model_validate_json(Path(path).read_bytes())
                answer = submit_report(self.center, self.token, report, idempotency_key=key)
            except (OSError, ValueError) as exc:
                state.set_report(key, _jail, _addr, time.time(), "failed", f"{path}: {exc}")
                self.log(f"report {key}: cannot read the draft: {exc}")
                continue
            except ReportError as exc:  # the center refused it: sending again cannot help
                state.set_report(key, _jail, _addr, time.time(), "refused", path)
                self.log(f"report {key}: {exc}")
                continue
            except (StoreError, TodokedeError) as exc:
                failed += 1
                self.log(f"report {key}: will retry: {exc}")
                continue
            state.set_report(key, _jail, _addr, time.time(), "sent", path)
            self.log(f"report {key}: sent: {json.dumps(answer, ensure_ascii=True)[:200]}")
        return failed
