"""Group commit for submissions: the reports that arrive in one turn of the event loop are
stored together, in one transaction (``Store.add_reports``).

A request gets its 201 only after its own report is committed, so a crash loses no
acknowledged report. A commit is the cost of a write (SQLite writes pages to its WAL,
PostgreSQL makes a round trip and flushes its log), so sharing one among all the reports
that are ready is what lets one process accept about as many reports as a bare insert
endpoint. The commit runs on the event loop itself: no thread hand-offs, and while it
runs the next requests gather in the socket buffers, forming the next batch.
"""

from __future__ import annotations

import asyncio

from todokede.center.intake.schema import StoredReport
from todokede.center.store import NewReport, Store

MAX_BATCH = 200

_Item = tuple[NewReport, "asyncio.Future[StoredReport]"]


class BatchWriter:
    def __init__(self, store: Store, *, max_batch: int = MAX_BATCH) -> None:
        self.store = store
        self.max_batch = max_batch
        self._pending: list[_Item] = []
        self._scheduled = False

    async def add(self, item: NewReport) -> StoredReport:
        """Store ``item`` with the others ready in this turn; returns once committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[StoredReport] = loop.create_future()
        self._pending.append((item, future))
        if not self._scheduled:
            # After the callbacks already ready: the requests parsed in this turn join.
            self._scheduled = True
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        self._scheduled = False
        batch, self._pending = self._pending, []
        for start in range(0, len(batch), self.max_batch):
            self._commit(batch[start : start + self.max_batch])

    def _commit(self, batch: list[_Item]) -> None:
        outcomes: list[tuple[StoredReport | None, BaseException | None]]
        try:
            outcomes = [(sr, None) for sr in self.store.add_reports([b[0] for b in batch])]
        except Exception:
            # One bad report (a broken link, a lost race on a key) must not fail the
            # others: store them one by one, each with its own outcome.
            outcomes = []
            for item, _ in batch:
                try:
                    sr = self.store.add_report(
                        item.report,
                        owner=item.owner,
                        triage=item.triage,
                        idempotency_key=item.idempotency_key,
                    )
                    outcomes.append((sr, None))
                except Exception as err:
                    outcomes.append((None, err))
        for (_, future), (result, error) in zip(batch, outcomes, strict=True):
            if future.done():  # the client went away; the report is stored all the same
                continue
            if error is not None:
                future.set_exception(error)
            else:
                assert result is not None
                future.set_result(result)
