"""The store, on SQLite and on a real PostgreSQL (the ``store`` fixture runs each test on
both): reports, denormalised columns, triage, additions, idempotency, audit, users."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from todokede.center.intake.schema import Addition, Report, Triage
from todokede.center.store import Store
from todokede.center.store import tables as t
from todokede.center.store.auth import User
from todokede.errors import InputError, NotDraft, NotFound, StoreError, TodokedeError


def imap_report(**extra: object) -> Report:
    data: dict[str, object] = {
        "title": "IMAP attempts refused by tcp_wrapper",
        "received": "1997-09-17",
        "reporter": {"organisation": "Example Univ.", "email": "admin@example.ac.jp",
                     "type": "system_admin"},
        "methods": ["access_probe"],
        "damage": ["none"],
        "actual_damage": False,
        "targets": ["imap"],
        "sources": ["192.0.2.7"],
        "evidence": [{"kind": "log", "text": "Sep  1 03:12:44 mail imapd[210]: refused connect"}],
    }  # fmt: skip
    data.update(extra)
    return Report.model_validate(data)


def terms(store: Store, report_id: int) -> set[tuple[str, str]]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(t.report_terms.c.vocabulary, t.report_terms.c.code).where(
                t.report_terms.c.report_id == report_id
            )
        )
        return {(r[0], r[1]) for r in rows}


def row(store: Store, report_id: int) -> dict[str, object]:
    with store.engine.connect() as conn:
        found = conn.execute(select(t.reports).where(t.reports.c.id == report_id)).mappings().one()
        return dict(found)


def test_add_and_get_round_trip(store: Store) -> None:
    report = imap_report()
    stored = store.add_report(report, owner="alice")
    assert stored.id >= 1
    got = store.get_report(stored.id, actor="ana")
    assert got.report == report
    assert got.owner == "alice"
    assert got.triage.status == "received"
    assert got.created_at.tzinfo is not None
    assert got == stored.model_copy(update={"created_at": got.created_at,
                                            "updated_at": got.updated_at})  # fmt: skip


def test_received_defaults_to_today(store: Store) -> None:
    stored = store.add_report(Report())
    assert stored.report.received is not None
    assert abs((stored.report.received - date.today()).days) <= 1
    assert row(store, stored.id)["month"] == stored.report.received.strftime("%Y-%m")


def test_denormalised_columns_and_terms(store: Store) -> None:
    stored = store.add_report(imap_report(causes=["old_version"]))
    r = row(store, stored.id)
    assert (r["received"], r["month"], r["status"]) == (date(1997, 9, 17), "1997-09", "received")
    assert r["counted"] is True and r["actual_damage"] is False
    assert terms(store, stored.id) == {
        ("method", "access_probe"),
        ("damage", "none"),
        ("cause", "old_version"),
        ("reporter_type", "system_admin"),
        ("target", "imap"),
    }


@pytest.mark.parametrize(
    ("triage", "counted"),
    [
        (Triage(status="triaged"), True),
        (Triage(status="closed"), True),
        (Triage(status="draft"), False),
        (Triage(status="rejected"), False),
        (Triage(status="triaged", is_test=True), False),
    ],
)
def test_counted_follows_triage(store: Store, triage: Triage, counted: bool) -> None:
    stored = store.add_report(imap_report())
    store.set_triage(stored.id, triage, actor="ana")
    assert row(store, stored.id)["counted"] is counted
    with store.engine.connect() as conn:
        flags = set(conn.execute(select(t.report_terms.c.counted)).scalars())
    assert flags == {counted}


def test_triage_overrides_are_effective_terms(store: Store) -> None:
    stored = store.add_report(imap_report())
    new = store.set_triage(
        stored.id,
        Triage(status="triaged", methods=["security_hole_attack"], damage=["file_alteration"],
               actual_damage=True),
        actor="ana",
    )  # fmt: skip
    assert new.effective_methods() == ["security_hole_attack"]
    got = terms(store, stored.id)
    assert ("method", "security_hole_attack") in got and ("method", "access_probe") not in got
    assert ("damage", "file_alteration") in got
    assert row(store, stored.id)["actual_damage"] is True
    # The reporter's own words stay as sent.
    assert store.get_report(stored.id).report.methods == ["access_probe"]


def test_duplicates_are_not_counted_and_links_are_checked(store: Store) -> None:
    first = store.add_report(imap_report())
    second = store.add_report(imap_report())
    store.update_triage(second.id, {"duplicate_of": first.id}, actor="ana")
    assert row(store, second.id)["counted"] is False
    assert row(store, first.id)["counted"] is True
    with pytest.raises(InputError) as err:
        store.update_triage(first.id, {"duplicate_of": first.id}, actor="ana")
    assert err.value.field == "duplicate_of"
    with pytest.raises(InputError) as err:
        store.update_triage(first.id, {"duplicate_of": 999_999}, actor="ana")
    assert err.value.field == "duplicate_of"
    with pytest.raises(InputError) as err:
        store.update_triage(first.id, {"status": "bogus"}, actor="ana")
    assert err.value.field == "status"


def test_incidents_group_reports(store: Store) -> None:
    inc = store.add_incident("Relay abuse via provider X", actor="ana")
    a = store.add_report(imap_report())
    b = store.add_report(imap_report())
    for r in (a, b):
        store.update_triage(r.id, {"incident_id": inc.id}, actor="ana")
    assert store.get_incident(inc.id).report_ids == (a.id, b.id)
    with pytest.raises(InputError):
        store.update_triage(a.id, {"incident_id": inc.id + 100}, actor="ana")
    with pytest.raises(NotFound):
        store.get_incident(inc.id + 100)


def test_additions_append(store: Store) -> None:
    stored = store.add_report(imap_report())
    addition = Addition(at="1997-09-20T10:00:00+09:00", text="Two more attempts on 9/19.")
    new = store.add_addition(stored.id, addition, actor="alice")
    assert new.report.additions == [addition]
    again = store.add_addition(stored.id, addition, actor="alice")
    assert len(again.report.additions) == 2
    assert store.get_report(stored.id).report.additions == [addition, addition]


def test_update_draft_keeps_columns_and_terms_in_step(store: Store) -> None:
    draft = store.add_report(Report(title="half"), owner="alice", triage=Triage(status="draft"))
    assert terms(store, draft.id) == set()
    assert row(store, draft.id)["counted"] is False
    new = store.update_report(
        draft.id,
        imap_report(received=None, methods=["mail_bombing"], damage=["server_down"],
                    actual_damage=True),
        actor="alice",
    )  # fmt: skip
    assert new.triage.status == "draft" and new.report.methods == ["mail_bombing"]
    assert new.updated_at > draft.updated_at
    assert store.get_report(draft.id).report == new.report
    r = row(store, draft.id)
    assert (r["status"], r["counted"], r["actual_damage"]) == ("draft", False, True)
    assert ("method", "mail_bombing") in terms(store, draft.id)
    with store.engine.connect() as conn:
        flags = set(conn.execute(select(t.report_terms.c.counted)).scalars())
    assert flags == {False}  # a draft is not counted anywhere


def test_send_draft(store: Store) -> None:
    draft = store.add_report(
        imap_report(received="1997-09-01"), owner="alice", triage=Triage(status="draft")
    )
    sent = store.send_draft(draft.id, actor="alice")
    assert sent.triage.status == "received" and sent.counted
    assert sent.report.received == sent.updated_at.date()  # the day it was sent
    r = row(store, draft.id)
    assert (r["status"], r["counted"], r["received"]) == ("received", True, sent.report.received)
    assert r["month"] == sent.report.received.strftime("%Y-%m")
    with store.engine.connect() as conn:
        months = set(conn.execute(select(t.report_terms.c.month)).scalars())
        flags = set(conn.execute(select(t.report_terms.c.counted)).scalars())
    assert months == {r["month"]} and flags == {True}
    assert store.get_report(draft.id).report.title == draft.report.title


def test_update_and_send_in_one_step(store: Store) -> None:
    draft = store.add_report(Report(), owner="alice", triage=Triage(status="draft"))
    sent = store.update_report(draft.id, imap_report(), actor="alice", send=True)
    assert sent.triage.status == "received" and sent.report.methods == ["access_probe"]
    assert [(e.actor, e.action) for e in store.audit_log(draft.id)] == [
        ("alice", "create"), ("alice", "update"), ("alice", "send")
    ]  # fmt: skip


def test_sent_reports_cannot_be_changed(store: Store) -> None:
    sent = store.add_report(imap_report(), owner="alice")
    before = row(store, sent.id)
    calls: tuple[Callable[[], object], ...] = (
        lambda: store.update_report(sent.id, Report(title="rewritten"), actor="alice"),
        lambda: store.update_report(sent.id, Report(), actor="alice", send=True),
        lambda: store.send_draft(sent.id, actor="alice"),
    )
    for call in calls:
        with pytest.raises(NotDraft) as err:
            call()
        assert isinstance(err.value, TodokedeError) and not isinstance(err.value, StoreError)
    assert row(store, sent.id) == before  # nothing written
    assert [e.action for e in store.audit_log(sent.id)] == ["create"]
    with pytest.raises(NotFound):
        store.update_report(12345, Report(), actor="alice")
    with pytest.raises(NotFound):
        store.send_draft(12345, actor="alice")


def test_draft_update_keeps_additions(store: Store) -> None:
    draft = store.add_report(Report(), owner="alice", triage=Triage(status="draft"))
    addition = Addition(at="1997-09-20T10:00:00Z", text="noted early")
    store.add_addition(draft.id, addition, actor="alice")
    new = store.update_report(draft.id, Report(title="t"), actor="alice")
    assert new.report.additions == [addition]
    with pytest.raises(InputError) as err:
        store.update_report(
            draft.id, Report(additions=[Addition(at="1997-09-21T00:00:00Z")]), actor="alice"
        )
    assert err.value.field == "additions"
    assert store.get_report(draft.id).report.additions == [addition]


def test_concurrent_draft_updates_are_serialised(store: Store) -> None:
    draft = store.add_report(Report(), owner="alice", triage=Triage(status="draft"))
    errors: list[BaseException] = []
    services = ["imap", "pop3", "smtp", "telnet", "ftp", "http"]

    def save(i: int) -> None:
        try:
            store.update_report(draft.id, Report(title=f"v{i}", targets=[services[i]]),
                                actor="alice")  # fmt: skip
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=save, args=(i,)) for i in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    assert errors == []
    final = store.get_report(draft.id).report
    # The terms are those of the last write, not a mix of several.
    assert terms(store, draft.id) == {("target", final.targets[0])}
    assert final.title == f"v{services.index(final.targets[0])}"


def test_concurrent_additions_lose_nothing(store: Store) -> None:
    stored = store.add_report(imap_report())

    def add(i: int) -> None:
        store.add_addition(stored.id, Addition(at="1997-09-20T10:00:00Z", text=f"n{i}"),
                           actor="alice")  # fmt: skip

    threads = [threading.Thread(target=add, args=(i,)) for i in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    texts = sorted(a.text for a in store.get_report(stored.id).report.additions)
    assert texts == sorted(f"n{i}" for i in range(8))


def test_not_found(store: Store) -> None:
    for call in (
        lambda: store.get_report(12345),
        lambda: store.set_triage(12345, Triage(), actor="ana"),
        lambda: store.add_addition(12345, Addition(at="1997-09-20T10:00:00Z"), actor="ana"),
        lambda: store.report_owner(12345),
    ):
        with pytest.raises(NotFound):
            call()


def test_list_reports_filters_and_pages(store: Store) -> None:
    ids = []
    for day, owner in [("1997-08-30", "alice"), ("1997-09-17", "alice"), ("1997-09-19", "bob"),
                       ("1997-09-21", "bob"), ("1997-10-01", "alice")]:  # fmt: skip
        ids.append(store.add_report(imap_report(received=day), owner=owner).id)
    store.update_triage(ids[2], {"status": "triaged"}, actor="ana")
    items, total = store.list_reports(month="1997-09")
    assert total == 3 and [r.id for r in items] == ids[1:4]
    items, total = store.list_reports(owner="alice", limit=2)
    assert total == 3 and [r.id for r in items] == [ids[0], ids[1]]
    items, total = store.list_reports(owner="alice", limit=2, offset=2)
    assert [r.id for r in items] == [ids[4]]
    items, total = store.list_reports(status="triaged")
    assert (total, [r.id for r in items]) == (1, [ids[2]])
    items, _ = store.list_reports(newest_first=True, limit=1)
    assert items[0].id == ids[-1]
    with pytest.raises(InputError):
        store.list_reports(month="1997-13")


def test_iter_reports_by_received_range(store: Store) -> None:
    days = ["1997-08-30", "1997-09-01", "1997-09-30", "1997-10-01"]
    for day in days:
        store.add_report(imap_report(received=day))
    got = [
        str(r.report.received)
        for r in store.iter_reports(
            received_from=date(1997, 9, 1), received_before=date(1997, 10, 1), batch=1
        )
    ]
    assert got == ["1997-09-01", "1997-09-30"]
    assert len(list(store.iter_reports())) == 4


def test_idempotency_key(store: Store) -> None:
    first = store.add_report(imap_report(), owner="alice", idempotency_key="k-1")
    again = store.add_report(imap_report(), owner="alice", idempotency_key="k-1")
    assert again.id == first.id
    other_owner = store.add_report(imap_report(), owner="bob", idempotency_key="k-1")
    assert other_owner.id != first.id
    other_key = store.add_report(imap_report(), owner="alice", idempotency_key="k-2")
    assert other_key.id not in (first.id, other_owner.id)
    assert store.list_reports()[1] == 3


def test_idempotency_key_races(store: Store) -> None:
    ids: list[int] = []

    def submit() -> None:
        ids.append(store.add_report(imap_report(), owner="alice", idempotency_key="race").id)

    threads = [threading.Thread(target=submit) for _ in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    assert len(ids) == 6 and len(set(ids)) == 1
    assert store.list_reports()[1] == 1


def test_concurrent_submissions_all_stored(store: Store) -> None:
    ids: list[int] = []
    lock = threading.Lock()

    def submit(n: int) -> None:
        for _ in range(n):
            sr = store.add_report(imap_report(), owner="alice")
            with lock:
                ids.append(sr.id)

    threads = [threading.Thread(target=submit, args=(10,)) for _ in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert len(set(ids)) == 60
    assert store.list_reports()[1] == 60


def test_audit_records_changes_and_confidential_reads(store: Store) -> None:
    stored = store.add_report(imap_report(), owner="alice")
    store.get_report(stored.id, actor="ana")
    store.set_triage(stored.id, Triage(status="triaged", methods=["intrusion"]), actor="ana")
    store.add_addition(stored.id, Addition(at="1997-09-20T00:00:00Z", text="more"), actor="alice")
    store.audit("export-personal", actor="root", report_id=stored.id, detail="iodef")
    log = store.audit_log(stored.id)
    assert [(e.actor, e.action) for e in log] == [
        ("alice", "create"),
        ("ana", "read"),
        ("ana", "triage"),
        ("alice", "addition"),
        ("root", "export-personal"),
    ]
    assert '"status": ["received", "triaged"]' in (log[2].detail or "")
    assert all(e.at.tzinfo is not None for e in log)
    # Listing (no confidential part shown) is not a read of one report.
    store.list_reports()
    assert len(store.audit_log(stored.id)) == 5


def test_publish_month(store: Store) -> None:
    assert store.published_months() == []
    store.publish_month("1997-09", actor="ana")
    store.publish_month("1997-04", actor="ana")
    again = store.publish_month("1997-09", actor="ana")  # again: a new revision
    assert again.revision == 2
    assert store.published_months() == ["1997-04", "1997-09"]
    assert [e.action for e in store.audit_log()].count("publish") == 3
    with pytest.raises(InputError):
        store.publish_month("September", actor="ana")


def test_users_tokens_passwords(store: Store) -> None:
    token = store.add_user("alice", "reporter", "correct horse")
    assert token.startswith("tdk_") and len(token) > 40
    assert store.user_for_token(token) == store.get_user("alice")
    assert store.user_for_token(token).role == "reporter"  # type: ignore[union-attr]
    assert store.user_for_token(token + "x") is None
    assert store.authenticate("alice", "correct horse") is not None
    assert store.authenticate("alice", "wrong") is None
    assert store.authenticate("nobody", "correct horse") is None
    second = store.new_token("alice")
    assert second != token and store.user_for_token(second) is not None
    with store.engine.connect() as conn:
        digests = set(conn.execute(select(t.tokens.c.digest)).scalars())
        hashes = list(conn.execute(select(t.users.c.password_hash)).scalars())
    assert token not in digests and len(digests) == 2  # only digests are kept
    assert hashes[0] is not None and hashes[0].startswith("$argon2")
    token_only = store.add_user("bot", "analyst")
    assert store.authenticate("bot", "") is None and store.user_for_token(token_only) is not None


@pytest.mark.parametrize(
    ("name", "role", "field"),
    [("", "reporter", "name"), ("a b", "reporter", "name"), ("x" * 101, "reporter", "name"),
     ("carol", "boss", "role")],
)  # fmt: skip
def test_bad_users(store: Store, name: str, role: str, field: str) -> None:
    with pytest.raises(InputError) as err:
        store.add_user(name, role)
    assert err.value.field == field


def test_duplicate_user(store: Store) -> None:
    store.add_user("alice", "reporter")
    with pytest.raises(InputError) as err:
        store.add_user("alice", "admin")
    assert err.value.field == "name"


def test_reopen_keeps_everything_and_does_not_migrate_again(store_url: str) -> None:
    with Store.open(store_url) as first:
        sr = first.add_report(imap_report(), owner="alice")
    with Store.open(store_url) as second:
        assert second.get_report(sr.id).report == sr.report
        with second.engine.connect() as conn:
            version = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
        assert version == _head()


def _head() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from todokede.center.store.database import MIGRATIONS

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


def test_upgrading_from_the_first_schema_keeps_users_enabled(store_url: str) -> None:
    """A center made before sessions were kept in the store: its users and tokens still
    work after the upgrade, and sign-ins are stored."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine

    from todokede.center.store.auth import new_token, token_digest
    from todokede.center.store.database import MIGRATIONS, normalise_url

    engine = create_engine(normalise_url(store_url))
    token = new_token()
    with engine.begin() as conn:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
        conn.exec_driver_sql(
            "INSERT INTO users (name, role, created_at) VALUES ('old', 'analyst', '1997-09-01')"
        )
        conn.exec_driver_sql(
            "INSERT INTO tokens (digest, user_name, created_at) "
            f"VALUES ('{token_digest(token)}', 'old', '1997-09-01')"
        )
    engine.dispose()
    with Store.open(store_url) as store:
        assert store.user_for_token(token) == User("old", "analyst")
        assert [u.enabled for u in store.list_users()] == [True]
        store.set_password("old", "old-password-1")
        sid, _ = store.open_login("old", lifetime=timedelta(hours=1))
        login = store.login(sid)
        assert login is not None and login.user == User("old", "analyst")


def test_in_memory_sqlite() -> None:
    with Store.open("sqlite://") as s:
        sr = s.add_report(imap_report())
        assert s.get_report(sr.id).report.title == "IMAP attempts refused by tcp_wrapper"


def test_unreachable_database_is_a_store_error(tmp_path: object) -> None:
    with pytest.raises(StoreError) as err:
        Store.open("postgresql://nobody:secret@127.0.0.1:1/none")
    assert "secret" not in str(err.value)
    with pytest.raises(StoreError):
        Store.open("sqlite:////nonexistent-dir/x/center.db")


def test_migrations_match_the_tables(store: Store) -> None:
    """The Alembic migration creates exactly what tables.py declares (no drift)."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), t.metadata)
    assert diff == []
