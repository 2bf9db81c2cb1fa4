"""Group commit: concurrent submissions are stored together, in batches, each gets its
own outcome, and one bad report does not fail the others."""

from __future__ import annotations

import asyncio

import pytest

from todokede.center.intake.schema import Report, StoredReport, Triage
from todokede.center.store import NewReport, Store
from todokede.center.web.writer import BatchWriter
from todokede.errors import InputError


def test_batches_store_everything_in_order(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    sizes: list[int] = []
    add_reports = store.add_reports

    def counting(items: list[NewReport]) -> list[StoredReport]:
        sizes.append(len(items))
        return add_reports(items)

    monkeypatch.setattr(store, "add_reports", counting)
    writer = BatchWriter(store, max_batch=8)

    async def run() -> list[int]:
        results = await asyncio.gather(
            *(writer.add(NewReport(Report(title=f"r{i}"), owner="alice")) for i in range(30))
        )
        return [sr.id for sr in results]

    ids = asyncio.run(run())
    assert len(set(ids)) == 30
    assert ids == sorted(ids)  # committed in arrival order
    assert sizes == [8, 8, 8, 6]  # the 30 arrived in one turn: four commits, not thirty
    for i, rid in enumerate(ids):
        assert store.get_report(rid).report.title == f"r{i}"
    assert len([e for e in store.audit_log() if e.action == "create"]) == 30


def test_one_bad_report_does_not_fail_the_batch(store: Store) -> None:
    writer = BatchWriter(store)
    good = [NewReport(Report(title=f"ok{i}"), owner="alice") for i in range(5)]
    bad = NewReport(Report(title="bad"), owner="alice", triage=Triage(incident_id=999))

    async def run() -> list[object]:
        return await asyncio.gather(
            *(writer.add(item) for item in [*good[:2], bad, *good[2:]]), return_exceptions=True
        )

    outcomes = asyncio.run(run())
    assert isinstance(outcomes[2], InputError) and outcomes[2].field == "incident_id"
    titles = sorted(r.report.title or "" for r in store.iter_reports())
    assert titles == [f"ok{i}" for i in range(5)]


def test_idempotency_keys_within_one_batch(store: Store) -> None:
    writer = BatchWriter(store)
    items = [NewReport(Report(title="same"), owner="alice", idempotency_key="k")] * 6
    items.append(NewReport(Report(title="same"), owner="bob", idempotency_key="k"))

    async def run() -> list[int]:
        return [sr.id for sr in await asyncio.gather(*(writer.add(i) for i in items))]

    ids = asyncio.run(run())
    assert len(set(ids[:6])) == 1 and ids[6] != ids[0]
    assert store.list_reports()[1] == 2


@pytest.mark.parametrize("n", [1, 3])
def test_add_reports_is_one_transaction(store: Store, n: int) -> None:
    items = [NewReport(Report(title=f"t{i}")) for i in range(n)]
    items.append(NewReport(Report(title="broken"), triage=Triage(duplicate_of=424242)))
    with pytest.raises(InputError):
        store.add_reports(items)
    assert store.list_reports()[1] == 0  # all or none
