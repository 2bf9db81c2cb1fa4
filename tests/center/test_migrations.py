"""Migration 0002 on both backends: a database written by the first schema (実被害 unknown
stored as false, target services as the reporter typed them) comes back with unknown as
NULL and target codes, its statistics counting yes, no and unknown apart."""

from __future__ import annotations

from sqlalchemy import select

from todokede.center.intake.schema import Report, Triage
from todokede.center.publication.stats import month_stats
from todokede.center.store import Store, tables
from todokede.center.store.database import MIGRATIONS


def _alembic(store: Store, target: str) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with store.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, target)


def test_0002_keeps_unknown_and_maps_targets(store_url: str) -> None:
    day = "1997-09-17"
    with Store.open(store_url) as store:
        unknown = store.add_report(
            Report(received=day, methods=["access_probe"], targets=["経理サーバ(x)", "in.imapd"]),
            triage=Triage(status="triaged"),
        )
        yes = store.add_report(Report(received=day, methods=["mail_bombing"], targets=["smtp"],
                                      actual_damage=True))  # fmt: skip
        no = store.add_report(Report(received=day, methods=["dos"]),
                              triage=Triage(actual_damage=False))  # fmt: skip
        _alembic(store, "0001")
        r, t = tables.reports.c, tables.report_terms.c
        with store.engine.begin() as conn:
            # what the first schema held: unknown as false, the reporter's own words
            assert (
                conn.execute(select(r.actual_damage).where(r.id == unknown.id)).scalar_one()
                is False
            )
            conn.execute(tables.report_terms.delete().where(t.vocabulary == "target"))
            conn.execute(tables.report_terms.insert(), [
                {"report_id": unknown.id, "vocabulary": "target", "code": code, "month": "1997-09",
                 "counted": True, "actual_damage": False}
                for code in ("経理サーバ(x)", "in.imapd")
            ])  # fmt: skip
    with Store.open(store_url) as store:  # upgraded to the head again
        with store.engine.connect() as conn:
            actual = dict(conn.execute(select(r.id, r.actual_damage)).all())
            targets = set(conn.execute(select(t.report_id, t.code, t.actual_damage)
                                       .where(t.vocabulary == "target")).all())  # fmt: skip
        assert actual == {unknown.id: None, yes.id: True, no.id: False}
        assert targets == {(unknown.id, "other", None), (unknown.id, "imap", None),
                           (yes.id, "smtp", True)}  # fmt: skip
        this = month_stats(store, "1997-09").this
        assert (this.reports.n, this.reports.actual, this.reports.no, this.reports.unknown) == (
            3, 1, 1, 1
        )  # fmt: skip
        assert this.term("target", "imap").unknown == 1
        assert store.get_report(unknown.id).effective_actual_damage() is None
