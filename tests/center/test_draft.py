"""Reports drafted from scan findings; public narratives drafted from codes."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from todokede.center.intake.draft import draft_from_findings, service_of
from todokede.center.intake.schema import (
    AffectedSystem,
    Discovery,
    Period,
    Report,
    Reporter,
    StoredReport,
    Triage,
)
from todokede.center.publication.titles import (
    drafted_narrative,
    drafted_title,
    public_narrative,
    public_title,
    terms_narrative,
    terms_title,
)
from todokede.center.taxonomy import Lang
from todokede.errors import ReportError


def finding(kind: str, **over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "kind": kind,
        "service": "imapd",
        "sources": ["198.51.100.7", "203.0.113.9"],
        "count": 9,
        "first_seen": "1997-08-14T03:12:00",
        "last_seen": "1997-09-16T22:01:09",
        "outcome": "refused",
        "evidence": ["Aug 14 03:12:00 mail imapd[211]: refused connect from 198.51.100.7"],
        "targets": ["192.0.2.25"],
        "details": {},
    }
    base.update(over)
    return base


IMAP = finding("access-probe")
RELAY = finding("relay-abuse", service="sendmail", count=5400, outcome="relayed",
                sources=["relay.provider.example"])  # fmt: skip
BOUNCES = finding("bounce-storm", service="sendmail", count=2100, outcome="delivered",
                  sources=["MAILER-DAEMON"], details={"bytes": 104_000_000})  # fmt: skip
BOMB = finding("mail-bomb", service="sendmail", count=3200, outcome="delivered",
               first_seen="1997-09-20T01:00:00", last_seen="1997-09-20T05:00:00")  # fmt: skip


@pytest.mark.parametrize(
    ("name", "service"),
    [("imapd", "imap"), ("in.telnetd", "telnet"), ("postfix/smtpd", "smtp"), ("sendmail", "smtp"),
     ("ipop3d", "pop3"), ("in.fingerd", "finger"), ("gopherd", "gopherd")],
)  # fmt: skip
def test_service_of(name: str, service: str) -> None:
    assert service_of(name) == service


def test_imap_probe_refused_by_tcp_wrapper() -> None:
    r = draft_from_findings([IMAP])
    assert r.methods == ["access_probe"] and r.targets == ["imap"]
    assert r.damage == ["none"] and r.actual_damage is False
    assert r.attempts == 9 and r.sources == ["198.51.100.7", "203.0.113.9"]
    assert r.period and (r.period.start, r.period.end) == (date(1997, 8, 14), date(1997, 9, 16))
    assert r.discovery and r.discovery.tool == "tcp_wrapper" and r.discovery.how == "own_monitoring"
    assert r.evidence[0].data == IMAP and "refused connect" in r.evidence[0].text
    assert r.title == "IMAPセキュリティホールアタック(9回)"
    assert r.narrative and "9回" in r.narrative and "実害は無かった" in r.narrative


def test_relay_with_bounces() -> None:
    r = draft_from_findings([RELAY, BOUNCES], lang="en")
    assert r.methods == ["mail_relay"] and r.targets == ["smtp"]
    assert r.damage == ["mail_relay", "service_lowering"] and r.actual_damage is True
    assert r.sources == ["relay.provider.example"]  # not MAILER-DAEMON
    assert r.attempts == 5400
    assert r.narrative and "2,100 error notices" in r.narrative and "104 MB" in r.narrative
    assert r.title == "SPAM relay (5,400 messages)"


def test_mail_bomb_on_one_day() -> None:
    r = draft_from_findings([BOMB])
    assert r.methods == ["mail_bombing"] and r.damage == ["service_lowering"]
    assert r.attempts == 3200 and r.title == "電子メール爆撃(3,200通)"
    assert r.narrative and "1997年9月20日のことであった" in r.narrative


def test_rejected_relay_attempts_are_no_damage() -> None:
    r = draft_from_findings([finding("relay-abuse", service="sendmail", outcome="rejected")])
    assert r.damage == ["none"] and r.actual_damage is False


@pytest.mark.parametrize(
    ("findings", "message"),
    [
        ([], "no findings"),
        ([finding("worm")], "finding 1: unknown kind"),
        ([IMAP, finding("mail-bomb", first_seen="yesterday")], "finding 2: not an ISO 8601"),
        ([{"kind": "mail-bomb"}], "field first_seen"),
        (["a string"], "JSON object"),
    ],
)
def test_bad_findings_say_which(findings: list[Any], message: str) -> None:
    with pytest.raises(ReportError, match=message):
        draft_from_findings(findings)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "kind": st.sampled_from(["access-probe", "relay-abuse", "bounce-storm",
                                         "mail-bomb", "exploit-attempt", "bogus"]),
                "service": st.text(max_size=20),
                "sources": st.lists(st.text(max_size=40), max_size=5),
                "count": st.integers(0, 10**6),
                "first_seen": st.datetimes(timezones=st.just(UTC)).map(datetime.isoformat),
                "last_seen": st.datetimes(timezones=st.just(UTC)).map(datetime.isoformat),
                "outcome": st.text(max_size=20),
                "evidence": st.lists(st.text(max_size=80), max_size=3),
            }
        ),
        max_size=4,
    )
)  # fmt: skip
def test_any_findings_draft_or_fail_cleanly(findings: list[dict[str, Any]]) -> None:
    try:
        r = draft_from_findings(findings)
    except ReportError:
        return
    assert r.period and r.period.start and r.period.end and r.period.start <= r.period.end
    assert r.damage and r.title


def stored(triage: Triage | None = None) -> StoredReport:
    r = draft_from_findings([IMAP])
    r = r.model_copy(update={"reporter": Reporter(name="佐藤 一郎", email="sato@example.jp"),
                             "narrative": "佐藤 一郎 が発見"})  # fmt: skip
    now = datetime(1997, 9, 17, tzinfo=UTC)
    return StoredReport(id=1, report=r, triage=triage or Triage(), created_at=now, updated_at=now)


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_public_text_is_drafted_from_codes_not_the_reporters_words(lang: str) -> None:
    sr = stored(Triage(public_draft_approved=True))
    text = public_narrative(sr, lang)  # type: ignore[arg-type]
    assert "佐藤" not in text and "example.jp" not in text
    assert ("9回" if lang == "ja" else "9 attempts") in text
    assert public_title(sr, lang).startswith("IMAP")  # type: ignore[arg-type]


MARK = "ZQX-秘密-17"


def marked(actual: bool | None, approved: bool) -> StoredReport:
    """A report with the marker in every free-text field the drafting could look at."""
    now = datetime(1997, 9, 17, tzinfo=UTC)
    report = Report(
        title=MARK, narrative=MARK, countermeasures=MARK, network=MARK,
        methods=["access_probe"], damage=["none"], actual_damage=actual, attempts=9,
        targets=[f"経理サーバ({MARK})", "imapd"], sources=["192.0.2.7"],
        discovery=Discovery(tool=f"{MARK}のsyslog", detail=MARK),
        systems=[AffectedSystem(role=MARK, os=MARK, software=[MARK])],
        period=Period(start=date(1997, 9, 1), end=date(1997, 9, 15)),
    )  # fmt: skip
    triage = Triage(public_draft_approved=approved)
    return StoredReport(id=1, report=report, triage=triage, created_at=now, updated_at=now)


@pytest.mark.parametrize("lang", ["ja", "en"])
@pytest.mark.parametrize("approved", [False, True])
@pytest.mark.parametrize("actual", [True, False, None])
def test_public_text_never_holds_reporter_text(
    lang: Lang, approved: bool, actual: bool | None
) -> None:
    sr = marked(actual, approved)
    makers = (public_title, public_narrative, drafted_title, drafted_narrative, terms_title,
              terms_narrative)  # fmt: skip
    texts = [make(sr, lang) for make in makers]
    assert not [t for t in texts if MARK in t or "経理" in t or "syslog" in t]
    # the target services are public as their codes' labels
    assert sr.effective_targets() == ["other", "imap"]
    assert ("その他のサーバ" if lang == "ja" else "Other server") in terms_narrative(sr, lang)
    # approval decides between the labels alone and the draft with its counts and dates
    with_count = "9回" if lang == "ja" else "9 attempts"
    assert (with_count in public_narrative(sr, lang)) == approved
    assert (with_count in drafted_narrative(sr, lang)) and with_count not in terms_narrative(
        sr, lang
    )


@pytest.mark.parametrize(
    ("lang", "approved", "actual", "said", "never"),
    [
        ("ja", True, None, "実被害の有無は分かっていない", "実害は無かった"),
        ("en", True, None, "not known", "no actual damage"),
        ("ja", False, None, "実被害: 不明", "実被害: なし"),
        ("en", False, None, "Actual damage: unknown", "Actual damage: no"),
        ("ja", True, False, "実害は無かった", "不明"),
        ("en", True, False, "no actual damage", "not known"),
        ("ja", False, False, "実被害: なし", "不明"),
        ("en", False, True, "Actual damage: yes", "unknown"),
    ],
)  # fmt: skip
def test_unknown_actual_damage_is_never_told_as_none(
    lang: Lang, approved: bool, actual: bool | None, said: str, never: str
) -> None:
    text = public_narrative(marked(actual, approved), lang)
    assert said in text and never not in text


def test_analyst_text_overrides_in_each_language() -> None:
    sr = stored(Triage(published_narrative="編集済み", published_narrative_en="Edited",
                       published_title="見出し", published_title_en="Heading",
                       methods=["security_hole_attack"]))  # fmt: skip
    assert public_narrative(sr, "ja") == "編集済み" and public_narrative(sr, "en") == "Edited"
    assert public_title(sr, "ja") == "見出し" and public_title(sr, "en") == "Heading"
    only_ja = stored(Triage(published_narrative="編集済み", public_draft_approved=True))
    assert "refused" in public_narrative(only_ja, "en")


_WORDS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz山田経理", min_size=4, max_size=12)


@settings(max_examples=60, deadline=None)
@given(
    words=st.lists(_WORDS, min_size=8, max_size=8),
    actual=st.sampled_from([True, False, None]),
    approved=st.booleans(),
    lang=st.sampled_from(["ja", "en"]),
)
def test_no_free_text_ever_reaches_public_text(
    words: list[str], actual: bool | None, approved: bool, lang: Lang
) -> None:
    # "Qz" and a digit: no label, code or drafted sentence holds such a word by chance
    w = [f"Qz{n}{word}" for n, word in enumerate(words)]
    now = datetime(1997, 9, 17, tzinfo=UTC)
    report = Report(
        title=w[0], narrative=w[1], countermeasures=w[2], network=w[3],
        methods=["access_probe", "mail_relay"], damage=["mail_relay"], actual_damage=actual,
        targets=[w[4], "smtp"], discovery=Discovery(tool=w[5], detail=w[6]),
        systems=[AffectedSystem(role=w[7], os=w[7], software=[w[7]])], attempts=3,
    )  # fmt: skip
    sr = StoredReport(id=1, report=report, triage=Triage(public_draft_approved=approved),
                      created_at=now, updated_at=now)  # fmt: skip
    public = public_title(sr, lang) + public_narrative(sr, lang)
    assert not [word for word in w if word in public]
