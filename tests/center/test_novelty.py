"""Novelty: a report is new when one of its (method, target, damage) triples appears in no
counted report of an earlier published month; analysts override."""

from __future__ import annotations

from datetime import date

import pytest

from todokede.center.intake.schema import Report, StoredReport, Triage
from todokede.center.publication.novelty import describe_triple, month_novelty, seen_before, triples
from todokede.center.store import Store


def add(
    store: Store,
    received: str,
    methods: list[str],
    targets: list[str],
    damage: list[str],
    **triage: object,
) -> StoredReport:
    report = Report(
        received=date.fromisoformat(received), methods=methods, targets=targets, damage=damage
    )
    return store.add_report(report, triage=Triage.model_validate({"status": "triaged", **triage}))


def test_triples_cross_methods_targets_and_damage(store: Store) -> None:
    r = add(store, "1997-09-17", ["security_hole_attack", "access_probe"], ["imap"], [])
    assert triples(r) == {("security_hole_attack", "imap", "-"), ("access_probe", "imap", "-")}


def test_seen_type_is_not_new_and_unseen_is(store: Store) -> None:
    add(store, "1997-04-02", ["mail_bombing"], ["smtp"], ["service_lowering"])
    add(store, "1997-05-02", ["access_probe"], ["telnet"], ["none"])
    store.publish_month("1997-04", actor="a")
    store.publish_month("1997-05", actor="a")
    bomb = add(store, "1997-09-21", ["mail_bombing"], ["smtp"], ["service_lowering"])
    imap = add(store, "1997-09-17", ["access_probe"], ["imap"], ["none"])
    result = month_novelty(store, "1997-09", [bomb, imap])
    assert not result[bomb.id].new
    assert result[imap.id].new
    assert result[imap.id].first_time == [("access_probe", "imap", "none")]
    assert "IMAPサーバ" in result[imap.id].reason("ja") and "初めて" in result[imap.id].reason("ja")
    assert "First time" in result[imap.id].reason("en")
    assert "seen" in result[bomb.id].reason("en")


@pytest.mark.parametrize(
    ("change", "new"),
    [
        ({}, False),  # the earlier report counts
        ({"unpublished": True}, True),  # its month was never published
        ({"is_test": True}, True),  # test reports are no precedent
        ({"status": "rejected"}, True),
        ({"later": True}, True),  # a later month is no precedent
    ],
)
def test_what_counts_as_a_precedent(store: Store, change: dict[str, object], new: bool) -> None:
    month = "1997-10" if change.get("later") else "1997-04"
    triage = {k: v for k, v in change.items() if k in ("is_test", "status")}
    add(store, f"{month}-02", ["mail_bombing"], ["smtp"], ["service_lowering"], **triage)
    if not change.get("unpublished"):
        store.publish_month(month, actor="a")
    bomb = add(store, "1997-09-21", ["mail_bombing"], ["smtp"], ["service_lowering"])
    assert month_novelty(store, "1997-09", [bomb])[bomb.id].new is new


def test_a_new_damage_makes_a_new_type(store: Store) -> None:
    add(store, "1997-04-02", ["mail_bombing"], ["smtp"], ["service_lowering"])
    store.publish_month("1997-04", actor="a")
    r = add(store, "1997-09-21", ["mail_bombing"], ["smtp"], ["service_lowering", "server_down"])
    n = month_novelty(store, "1997-09", [r])[r.id]
    assert n.new and n.first_time == [("mail_bombing", "smtp", "server_down")]


def test_reports_of_the_same_month_do_not_make_each_other_old(store: Store) -> None:
    a = add(store, "1997-09-01", ["mail_relay"], ["smtp"], ["mail_relay"])
    b = add(store, "1997-09-02", ["mail_relay"], ["smtp"], ["mail_relay"])
    result = month_novelty(store, "1997-09", [a, b])
    assert result[a.id].new and result[b.id].new


def test_unclassified_report_is_not_judged_new(store: Store) -> None:
    r = add(store, "1997-09-01", [], ["imap"], [])
    assert not month_novelty(store, "1997-09", [r])[r.id].new


@pytest.mark.parametrize("override", [True, False])
def test_analyst_override_wins_with_reason(store: Store, override: bool) -> None:
    add(store, "1997-04-02", ["mail_bombing"], ["smtp"], ["service_lowering"])
    store.publish_month("1997-04", actor="a")
    kind = ["mail_bombing"] if override else ["mail_relay"]
    r = add(store, "1997-09-21", kind, ["smtp"], ["service_lowering"], new_type=override,
            new_type_reason="件名「happy today」")  # fmt: skip
    n = month_novelty(store, "1997-09", [r])[r.id]
    assert n.new is override and n.overridden
    assert "happy today" in n.reason("ja") and "Analyst" in n.reason("en")


def test_triage_reclassification_is_what_counts(store: Store) -> None:
    # The reporter said mail_relay; the analyst classified mail_bombing: effective codes rule.
    report = Report(received=date(1997, 4, 2), methods=["mail_relay"], targets=["smtp"],
                    damage=["service_lowering"])  # fmt: skip
    earlier = store.add_report(report, triage=Triage(status="triaged", methods=["mail_bombing"]))
    assert earlier.effective_methods() == ["mail_bombing"]
    store.publish_month("1997-04", actor="a")
    assert seen_before(store, "1997-09") == {("mail_bombing", "smtp", "service_lowering")}


def test_missing_target_and_damage_are_a_dash(store: Store) -> None:
    add(store, "1997-04-02", ["dos"], [], [])
    store.publish_month("1997-04", actor="a")
    assert seen_before(store, "1997-09") == {("dos", "-", "-")}
    assert "不明" in describe_triple(("dos", "-", "-"), "ja")
