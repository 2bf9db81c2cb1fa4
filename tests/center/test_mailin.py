"""Reports by e-mail: the IPA text form in 1997's ISO-2022-JP and today's charsets, free
text, attached IODEF, unreadable mail (never lost), Maildir and mbox, and the SMTP
listener driven by a real SMTP client (smtplib) on 127.0.0.1."""

from __future__ import annotations

import mailbox
import smtplib
import threading
import time
from email.message import EmailMessage
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from todokede.center.exchange.iodef import from_iodef
from todokede.center.intake import mailform, mailin
from todokede.center.intake.mailin import ingest, read_mailbox, read_message
from todokede.center.intake.schema import Report
from todokede.center.intake.smtpin import Envelope, Running, SMTPIntake, parse_listen
from todokede.center.store import Store
from todokede.errors import InputError

DATA = Path(__file__).parent / "data" / "exchange"

FORM_JA = """IPA セキュリティセンター 御中

不正アクセスの届出をいたします。

1. 届出者
   氏名: 山田 太郎
   企業・組織名: 某大学 情報処理センター
   E-mail: yamada@example.ac.jp
   TEL: 03-1234-5678
2. 届出者の業務種別: システム管理者
3. 発見年月日: 平成9年9月16日
4. 発生期間: 1997/8/14 〜 1997/9/15
5. 被害を受けた機器: メールサーバ
6. ＯＳ： SunOS 4.1.4
7. ソフトウェア: imapd 10.1, tcp_wrapper 7.5
8. 発見の方法又は疑いを持った理由: tcp_wrapperのログで発見
9. 手口: アクセス形跡(未遂)、セキュリティホールアタック
10. 被害内容: 被害なし
11. 実被害: 無
12. 原因: 不明
13. 攻撃元: 192.0.2.7 198.51.100.23
14. 対象サービス: imap
15. 回数: ９回
16. 被害の状況:
  8月中旬から9月中旬にかけて、外部の不明なホストから
  IMAPサーバへの接続が9回あり、tcp_wrapperにより拒否された。

  ログの抜粋: Sep 15 03:12:01 mail imapd[4113]: refused connect from 192.0.2.7
17. 対策: IMAP4rev1 に更新、tcp_wrapper の設定を見直し
"""

FORM_EN = """Dear IPA,

Reporter: John Doe
Organization: Example Trading Co.
E-mail: postmaster@example.com
Date discovered: 1997-09-18
Methods: Unauthorized mail relay, Spam mail
Damage: Unauthorized mail relay; Service lowering
Actual damage: yes
Cause: Misconfiguration
Sources: 198.51.100.23, relay.provider.example
Target services: smtp
Attempts: 2,400
Narrative: Our mail server was used to relay SPAM from an American provider
to many American addresses. The swap filled up and root got ~100 MB of bounces.
Countermeasures: relaying switched off for outside hosts.
"""


def raw_1997(body: str, *, charset: str | None = "ISO-2022-JP", subject: str = "") -> bytes:
    """A message as a 1997 mailer wrote it: headers by hand, the body in JIS."""
    head = [
        "From: yamada@example.ac.jp (Taro Yamada)",
        "To: crack@ipa.example.jp",
        "Date: Wed, 17 Sep 1997 10:00:00 +0900",
        "Message-Id: <199709170100.KAA01234@mail.example.ac.jp>",
    ]
    if subject:
        head.append(f"Subject: {subject}")
    if charset:
        head += ["Mime-Version: 1.0", f"Content-Type: text/plain; charset={charset}"]
    codec = {"ISO-2022-JP": "iso-2022-jp", "Shift_JIS": "cp932", "EUC-JP": "euc-jp"}.get(
        charset or "", "utf-8"
    )
    return ("\n".join(head) + "\n\n").encode("ascii") + body.encode(codec)


def check_imap_form(report: Report) -> None:
    assert report.reporter.name == "山田 太郎"
    assert report.reporter.organisation == "某大学 情報処理センター"
    assert report.reporter.email == "yamada@example.ac.jp"
    assert report.reporter.type == "system_admin"
    assert report.discovered is not None and report.discovered.isoformat() == "1997-09-16"
    assert report.period is not None and report.period.end is not None
    assert report.period.start is not None
    assert (report.period.start.isoformat(), report.period.end.isoformat()) == (
        "1997-08-14",
        "1997-09-15",
    )
    assert report.systems[0].device == "mail_server"
    assert report.systems[0].os == "SunOS 4.1.4"
    assert report.systems[0].software == ["imapd 10.1", "tcp_wrapper 7.5"]
    assert report.discovery is not None and report.discovery.how == "own_monitoring"
    assert report.methods == ["access_probe", "security_hole_attack"]
    assert (report.damage, report.actual_damage, report.causes) == (["none"], False, ["unknown"])
    assert report.sources == ["192.0.2.7", "198.51.100.23"]
    assert (report.targets, report.attempts) == (["imap"], 9)
    assert report.narrative is not None
    assert "tcp_wrapperにより拒否された" in report.narrative
    assert "refused connect from 192.0.2.7" in report.narrative
    assert report.countermeasures == "IMAP4rev1 に更新、tcp_wrapper の設定を見直し"
    assert report.language == "ja"


@pytest.mark.parametrize("charset", ["ISO-2022-JP", "Shift_JIS", "EUC-JP", "UTF-8", None])
def test_the_japanese_form_in_any_charset(charset: str | None) -> None:
    intake = read_message(raw_1997(FORM_JA, charset=charset))
    assert intake.kind == "form"
    assert intake.triage.status == "received"
    assert intake.triage.note is None
    (report,) = intake.reports
    check_imap_form(report)
    assert report.received is None  # 届出年月日 and Date: are the sender's: the center dates it
    (evidence,) = report.evidence
    assert evidence.kind == "mail"
    assert evidence.source == "<199709170100.KAA01234@mail.example.ac.jp>"


def test_undeclared_shift_jis_is_recognised() -> None:
    # A PC mailer that declares nothing and sends Shift_JIS.
    intake = read_message(b"From: a@example.jp\n\n" + FORM_JA.encode("cp932"))
    check_imap_form(intake.reports[0])


def test_the_original_message_is_kept() -> None:
    raw = raw_1997(FORM_JA)
    report = read_message(raw).reports[0]
    kept = report.evidence[0].text
    assert kept.startswith("From: yamada@example.ac.jp")
    assert "Content-Type: text/plain; charset=ISO-2022-JP" in kept
    assert "16. 被害の状況:" in kept  # readable: decoded from JIS
    assert kept.encode("iso-2022-jp") == raw  # and nothing changed


def test_the_english_form() -> None:
    msg = EmailMessage()
    msg["From"] = "John Doe <postmaster@example.com>"
    msg["Subject"] = "Relay abuse report"
    msg.set_content(FORM_EN)
    intake = read_message(msg.as_bytes())
    assert intake.kind == "form"
    (r,) = intake.reports
    assert (r.reporter.name, r.reporter.organisation) == ("John Doe", "Example Trading Co.")
    assert r.methods == ["mail_relay", "spam"]
    assert r.damage == ["mail_relay", "service_lowering"]
    assert (r.actual_damage, r.causes, r.attempts) == (True, ["misconfiguration"], 2400)
    assert r.sources == ["198.51.100.23", "relay.provider.example"]
    assert r.narrative is not None and "100 MB of bounces" in r.narrative
    assert r.title == "Relay abuse report"
    assert r.language == "en"


def test_free_text_becomes_the_narrative() -> None:
    body = "本日、当社のメールサーバに happy today という件名のメールが\n3200通届きました。"
    msg = EmailMessage()
    msg["From"] = "Hanako Sato <sato@example.co.jp>"
    msg["Subject"] = "メール爆弾の届出"
    msg.set_content(body, charset="iso-2022-jp")
    intake = read_message(msg.as_bytes())
    assert intake.kind == "free-text"
    assert intake.triage.note is None
    (r,) = intake.reports
    assert r.narrative == body
    assert r.title == "メール爆弾の届出"
    assert (r.reporter.name, r.reporter.email) == ("Hanako Sato", "sato@example.co.jp")
    assert r.language == "ja"


def test_an_attached_iodef_document() -> None:
    msg = EmailMessage()
    msg["From"] = "csirt@example.net"
    msg["Subject"] = "IODEF report"
    msg.set_content("Report attached.")
    doc = (
        (DATA / "external-scan.xml")
        .read_bytes()
        .replace(
            b"    <GenerationTime>",
            b"    <ReportTime>2015-10-06T08:00:00+09:00</ReportTime>\n    <GenerationTime>",
        )
    )
    assert from_iodef(doc)[0].received is not None  # the document claims a received date
    msg.add_attachment(
        doc,
        maintype="application",
        subtype="iodef+xml",
        filename="report.xml",
    )
    intake = read_message(msg.as_bytes())
    assert intake.kind == "iodef"
    (r,) = intake.reports
    assert r.sources == ["192.0.2.200"]
    assert [e.kind for e in r.evidence] == ["log", "mail"]
    assert r.received is None  # its ReportTime is the sender's claim: the center dates it


def test_an_invalid_iodef_attachment_is_kept_for_manual_triage() -> None:
    msg = EmailMessage()
    msg["From"] = "csirt@example.net"
    msg.set_content("See the attachment.")
    bad = (DATA / "minimal.xml").read_bytes().replace(b'purpose="reporting"', b'purpose="x"')
    msg.add_attachment(bad, maintype="application", subtype="xml", filename="r.xml")
    intake = read_message(msg.as_bytes())
    assert intake.triage.note is not None
    assert intake.triage.note.startswith(mailin.MANUAL)
    assert "IODEF" in intake.triage.note and "purpose" in intake.triage.note
    (r,) = intake.reports
    assert r.narrative == "See the attachment."
    assert r.evidence[0].kind == "mail"


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"", "no readable text"),
        (b"Subject: empty\n\n", "no readable text"),
        (b"\x00\xff\xfe garbage \x80\x81", ""),
        (b"Subject: =?iso-2022-jp?b?!!!broken?=\nContent-Type: text/html\n\n<p>\xff</p>", ""),
        (raw_1997("発見年月日: いつか\n実被害: たぶん\n回数: たくさん\n"), "not a date"),
    ],
)
def test_unreadable_mail_is_never_lost(raw: bytes, why: str) -> None:
    intake = read_message(raw)
    assert len(intake.reports) == 1
    (r,) = intake.reports
    assert r.evidence[-1].kind == "mail"
    if why:
        assert intake.triage.note is not None and why in intake.triage.note


def test_a_huge_message_is_kept_truncated() -> None:
    raw = b"Subject: big\n\n" + b"a line of log\n" * 100_000
    intake = read_message(raw)
    (r,) = intake.reports
    assert len(r.evidence[0].text) == mailin.MAX_EVIDENCE
    assert intake.triage.note is not None and "truncated" in intake.triage.note


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_fuzz_form_parser(text: str) -> None:
    fields, rest = mailform.parse_form(text)
    notes: list[str] = []
    data = mailform.report_from_form(fields, notes=notes)
    assert isinstance(data, dict)
    assert len(rest) <= len(text.splitlines())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.binary(max_size=300),
        st.text(max_size=200).map(lambda t: ("Subject: x\n\n" + t).encode("utf-8", "replace")),
        st.text(alphabet="届出者氏名:：\n 1.E-mail発見年月日手口実被害有無", max_size=200).map(
            lambda t: t.encode("iso-2022-jp", "replace")
        ),
    )
)
def test_fuzz_any_message_becomes_a_report(raw: bytes) -> None:
    intake = read_message(raw)
    assert len(intake.reports) >= 1
    assert all(r.evidence[-1].kind == "mail" for r in intake.reports)


# ---------------------------------------------------------------------------- mailboxes


def messages() -> list[bytes]:
    plain = EmailMessage()
    plain["From"] = "sato@example.co.jp"
    plain["Subject"] = "relay"
    plain.set_content("Our server relayed spam.")
    return [
        raw_1997(FORM_JA, subject="=?ISO-2022-JP?B?GyRCSVRANSUiJS8lOyU5GyhC?="),
        plain.as_bytes(),
    ]


def test_maildir_and_mbox_are_read_and_stored_once(tmp_path: Path) -> None:
    md = mailbox.Maildir(tmp_path / "Maildir", create=True)
    mb = mailbox.mbox(tmp_path / "mbox", create=True)
    for raw in messages():
        md.add(raw)
        mb.add(raw)
    mb.flush()
    mb.close()
    with Store.open(f"sqlite:///{tmp_path / 'center.db'}") as store:
        first = ingest(store, read_mailbox(tmp_path / "Maildir"))
        assert [r.kind for r in first] == ["form", "free-text"]
        again = ingest(store, read_mailbox(tmp_path / "mbox"))  # the same two messages
        assert [r.report_ids for r in again] == [r.report_ids for r in first]
        _, total = store.list_reports()
        assert total == 2
        stored = store.get_report(first[0].report_ids[0], actor="test")
        assert stored.triage.status == "received"
        assert stored.report.title == "不正アクセス"
        check_imap_form(stored.report)
        assert stored.report.evidence[0].kind == "mail"
    assert len(list(md.iterkeys())) == 2  # the mailbox is left as it was


@pytest.mark.parametrize("kind", ["missing", "dir", "text"])
def test_not_a_mailbox(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "box"
    if kind == "dir":
        path.mkdir()
    elif kind == "text":
        path.write_text("hello\n")
    with pytest.raises(InputError):
        list(read_mailbox(path))


# ---------------------------------------------------------------------------- SMTP


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2525", ("127.0.0.1", 2525)),
        (":2525", ("127.0.0.1", 2525)),
        ("127.0.0.2:25", ("127.0.0.2", 25)),
        ("[::1]:2525", ("::1", 2525)),
    ],
)
def test_listen_addresses(value: str, expected: tuple[str, int]) -> None:
    assert parse_listen(value) == expected


@pytest.mark.parametrize("value", ["", "host:", "host:port", "1:99999"])
def test_bad_listen_addresses(value: str) -> None:
    with pytest.raises(ValueError):
        parse_listen(value)


def smtp_intake(store: Store, **kw: object) -> SMTPIntake:
    def deliver(raw: bytes, env: Envelope) -> str:
        result = mailin.ingest_message(store, raw, key=env.peer)
        return "report " + ",".join(map(str, result.report_ids))

    return SMTPIntake(deliver, host="127.0.0.1", port=0, **kw)  # type: ignore[arg-type]


def test_a_real_smtp_client_files_reports(tmp_path: Path) -> None:
    with Store.open(f"sqlite:///{tmp_path / 'c.db'}") as store:
        with (
            Running(smtp_intake(store)) as server,
            smtplib.SMTP("127.0.0.1", server.port, timeout=10) as client,
        ):
            code, caps = client.ehlo("mail.example.ac.jp")
            assert code == 250 and b"SIZE" in caps
            for raw in messages():
                refused = client.sendmail("yamada@example.ac.jp", ["crack@ipa.example.jp"], raw)
                assert refused == {}
            assert client.noop()[0] == 250
            assert client.verify("x")[0] == 252
        items, total = store.list_reports()
        assert total == 2
        form = store.get_report(min(i.id for i in items), actor="test")
        check_imap_form(form.report)
        kept = form.report.evidence[0].text
        assert kept.startswith("Received: from mail.example.ac.jp ([127.0.0.1])")


def test_smtp_refuses_what_is_too_big(tmp_path: Path) -> None:
    with Store.open(f"sqlite:///{tmp_path / 'c.db'}") as store:
        with (
            Running(smtp_intake(store, max_size=2048)) as server,
            smtplib.SMTP("127.0.0.1", server.port, timeout=10) as client,
        ):
            big = b"Subject: big\r\n\r\n" + b"x" * 70 + b"\r\n"
            big = big * 40
            # smtplib announces SIZE: refused at MAIL FROM
            with pytest.raises(smtplib.SMTPSenderRefused) as caught:
                client.sendmail("a@example.jp", ["b@example.jp"], big)
            assert caught.value.smtp_code == 552
            # without SIZE the listener counts while reading DATA
            client.rset()
            assert client.mail("a@example.jp")[0] == 250
            assert client.rcpt("b@example.jp")[0] == 250
            code, _ = client.data(big)
            assert code == 552
            # and the session goes on
            assert (
                client.sendmail("a@example.jp", ["b@example.jp"], b"Subject: ok\r\n\r\nhi\r\n")
                == {}
            )
        assert store.list_reports()[1] == 1


@pytest.mark.parametrize(
    ("commands", "codes"),
    [
        ([b"DATA"], [503]),
        ([b"RCPT TO:<a@example.jp>"], [503]),
        ([b"MAIL FROM:<a@example.jp>", b"MAIL FROM:<b@example.jp>"], [250, 503]),
        ([b"MAIL TO:<a@example.jp>"], [501]),
        ([b"MAIL FROM:<a@example.jp>", b"RCPT TO:<>"], [250, 501]),
        ([b"BDAT 10"], [502]),
        ([b"HELP"], [214]),
        ([b"X" * 5000], [500]),
    ],
)
def test_smtp_protocol_errors(tmp_path: Path, commands: list[bytes], codes: list[int]) -> None:
    with (
        Store.open(f"sqlite:///{tmp_path / 'c.db'}") as store,
        Running(smtp_intake(store)) as server,
        smtplib.SMTP("127.0.0.1", server.port, timeout=10) as client,
    ):
        client.ehlo("x")
        got = []
        for command in commands:
            client.send(command + b"\r\n")
            got.append(client.getreply()[0])
        assert got == codes


def test_smtp_failure_to_store_is_a_retryable_451(tmp_path: Path) -> None:
    calls: list[bytes] = []
    lock = threading.Lock()

    def deliver(raw: bytes, env: Envelope) -> str:
        with lock:
            calls.append(raw)
            if len(calls) == 1:
                raise OSError("database is down")
        return "report 1"

    with (
        Running(SMTPIntake(deliver, host="127.0.0.1", port=0)) as server,
        smtplib.SMTP("127.0.0.1", server.port, timeout=10) as client,
    ):
        with pytest.raises(smtplib.SMTPDataError) as caught:
            client.sendmail("a@example.jp", ["b@example.jp"], b"Subject: x\r\n\r\nhi\r\n")
        assert caught.value.smtp_code == 451
        client.rset()
        assert client.sendmail("a@example.jp", ["b@example.jp"], b"Subject: x\r\n\r\nhi\r\n") == {}
    assert len(calls) == 2


def test_smtp_idle_clients_are_dropped(tmp_path: Path) -> None:
    quiet = SMTPIntake(lambda raw, env: "", host="127.0.0.1", port=0, timeout=0.3)
    with Running(quiet) as server, smtplib.SMTP("127.0.0.1", server.port, timeout=10) as client:
        assert client.sock is not None
        data = b""
        while not data.endswith(b"\r\n") or b"421" not in data:
            chunk = client.sock.recv(1024)
            if not chunk:
                break
            data += chunk
        assert b"421" in data


@pytest.mark.parametrize("declared", ["us-ascii", "US-ASCII", "utf-8"])
def test_jis_text_declared_as_something_else(declared: str) -> None:
    intake = read_message(
        raw_1997(FORM_JA).replace(b"charset=ISO-2022-JP", f"charset={declared}".encode())
    )
    check_imap_form(intake.reports[0])


def test_an_html_only_message_is_read_and_flagged() -> None:
    raw = b"Content-Type: text/html; charset=utf-8\n\n<p>Relay &amp; spam from <b>192.0.2.9</b></p>"
    intake = read_message(raw)
    (r,) = intake.reports
    assert r.narrative is not None and "Relay & spam from" in r.narrative
    assert intake.triage.note is not None and "HTML" in intake.triage.note


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1997-09-17", "1997-09-17"),
        ("1997/9/17", "1997-09-17"),
        ("1997年9月17日", "1997-09-17"),
        ("１９９７年９月１７日（水）", "1997-09-17"),
        ("平成9年9月17日", "1997-09-17"),
        ("H9.9.17", "1997-09-17"),
        ("97/9/17", "1997-09-17"),
        ("1997年9月31日", None),
        ("先週", None),
    ],
)
def test_dates_as_people_write_them(text: str, expected: str | None) -> None:
    day = mailform.parse_date(text)
    assert (day.isoformat() if day else None) == expected


@pytest.mark.parametrize(
    ("line", "field", "value"),
    [
        ("【届出者】山田 太郎", "reporter.name", "山田 太郎"),
        ("[Sources] 192.0.2.1", "sources", "192.0.2.1"),
        ("(3) 発見年月日：1997年9月16日", "discovered", "1997年9月16日"),
        ("・ 手口 : メール爆弾", "methods", "メール爆弾"),
        (
            "Ｅ－ｍａｉｌ：ｙａｍａｄａ＠ｅｘａｍｐｌｅ．ｊｐ",
            "reporter.email",
            "ｙａｍａｄａ＠ｅｘａｍｐｌｅ．ｊｐ",
        ),
    ],
)
def test_form_line_styles(line: str, field: str, value: str) -> None:
    fields, rest = mailform.parse_form(line)
    assert fields == {field: value} and rest == []


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("有", True),
        ("あり", True),
        ("Yes, files were changed", True),
        ("無し", False),
        ("no damage", False),
        ("not sure", None),
        ("たぶん", None),
        ("不明", None),
        ("Unknown", None),
    ],
)
def test_actual_damage_answers(answer: str, expected: bool | None) -> None:
    notes: list[str] = []
    data = mailform.report_from_form({"actual_damage": answer}, notes=notes)
    assert data.get("actual_damage") == expected
    # An answer that is not understood goes to manual triage; a stated "unknown" does not.
    assert bool(notes) == (expected is None and answer not in ("不明", "Unknown"))


def test_smtp_limits_connections_and_session_time() -> None:
    intake = SMTPIntake(
        lambda raw, env: "", host="127.0.0.1", port=0, max_clients=1, session_limit=3.0
    )
    with Running(intake) as server, smtplib.SMTP("127.0.0.1", server.port, timeout=10) as first:
        assert first.noop()[0] == 250
        with pytest.raises(smtplib.SMTPConnectError) as caught:
            smtplib.SMTP("127.0.0.1", server.port, timeout=10)
        assert caught.value.smtp_code == 421
        # a busy client is still cut off at the session limit
        # (the limit leaves room for a loaded machine to get through the 421 check first)
        with pytest.raises(smtplib.SMTPServerDisconnected):
            for _ in range(300):
                first.noop()
                time.sleep(0.05)
