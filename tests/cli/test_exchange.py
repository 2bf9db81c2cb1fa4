"""``todokede export`` and ``todokede center ingest-mail`` end to end: a real SQLite
center, the exported files checked by their parsers, mail taken from a Maildir, an mbox
and the SMTP listener run as a real process."""

from __future__ import annotations

import csv
import io
import json
import mailbox
import os
import signal
import smtplib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
import stix2
from click.testing import CliRunner

from todokede.center.exchange.iodef import from_iodef
from todokede.center.intake.schema import Report, Triage
from todokede.center.store import Store
from todokede.cli import cli

DATA = Path(__file__).parent.parent / "center" / "data" / "exchange"


@pytest.fixture
def db(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'center.db'}"
    raw = json.loads((DATA / "reports.json").read_text(encoding="utf-8"))
    with Store.open(url) as store:
        for r in raw:
            store.add_report(Report.model_validate(r), owner="alice", triage=Triage())
        october = Report.model_validate({**raw[2], "received": "1997-10-02"})
        store.add_report(october, owner="alice")
    yield url


def run(*args: str) -> tuple[int, bytes, str]:
    result = CliRunner().invoke(cli, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout_bytes, result.stderr


def test_export_iodef_for_a_month(db: str) -> None:
    code, out, _ = run("export", "--format", "iodef", "--month", "1997-09", "--db", db)
    assert code == 0
    reports = from_iodef(out)  # parses and validates against RFC 7970's schema
    # for partner centers: the public headings drafted from the codes, not the reporters'
    assert [r.title for r in reports] == [
        "IMAPセキュリティホールアタック",
        "SPAM中継",
        "Mail bombing",
    ]
    assert b"yamada@example.ac.jp" not in out and b"happy today" not in out
    code, out, _ = run("export", "--format", "iodef", "--month", "1997-09", "--db", db,
                       "--personal")  # fmt: skip
    assert [r.title for r in from_iodef(out)] == [
        "IMAPサーバへのアクセス形跡",
        "メールサーバのSPAM中継",
        "Mail bomb: 'happy today'",
    ]


def test_export_personal_is_audited(db: str, tmp_path: Path) -> None:
    target = tmp_path / "out.xml"
    code, _, err = run("export", "--format", "iodef", "--personal", "--db", db, "-o", str(target))
    assert code == 0 and "bytes written to" in err
    assert b"yamada@example.ac.jp" in target.read_bytes()
    with Store.open(db) as store:
        actions = [(e.action, e.actor) for e in store.audit_log()]
    assert ("export-personal", "admin") in actions


def test_export_stix(db: str) -> None:
    code, out, _ = run("export", "--format", "stix", "--month", "1997-10", "--db", db)
    assert code == 0
    bundle = stix2.parse(out.decode(), allow_custom=False)
    assert [o.type for o in bundle.objects].count("incident") == 1


def test_export_csv_in_japanese_for_excel(db: str) -> None:
    code, out, _ = run("export", "--format", "csv", "--lang", "ja", "--bom", "--db", db)
    assert code == 0 and out.startswith(b"\xef\xbb\xbf")
    table = list(csv.DictReader(io.StringIO(out.decode("utf-8-sig"), newline="")))
    assert [row["届出年月日"] for row in table] == [
        "1997-09-17",
        "1997-09-19",
        "1997-09-21",
        "1997-10-02",
    ]
    assert table[2]["手口"] == "電子メール爆撃"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--month", "1997-13"], "not a month"),
        (["--month", "1996-01"], "nothing to export"),
    ],
)
def test_export_errors(db: str, args: list[str], message: str) -> None:
    code, _, err = run("export", "--format", "iodef", "--db", db, *args)
    assert code == 2
    assert "todokede: error:" in err and message in err


def mail(subject: str, body: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Taro Yamada <yamada@example.ac.jp>"
    msg["Subject"] = subject
    msg.set_content(body, charset="iso-2022-jp")
    return msg.as_bytes()


FORM = "届出者: 山田 太郎\n手口: アクセス形跡(未遂)\n攻撃元: 192.0.2.7\n実被害: 無\n"


@pytest.mark.parametrize("kind", ["maildir", "mbox"])
def test_ingest_mail_from_a_mailbox(tmp_path: Path, kind: str) -> None:
    db = f"sqlite:///{tmp_path / 'c.db'}"
    box: mailbox.Mailbox[mailbox.Message]
    if kind == "maildir":
        path = tmp_path / "Maildir"
        box = mailbox.Maildir(path, create=True)
    else:
        path = tmp_path / "mbox"
        box = mailbox.mbox(path, create=True)
    box.add(mail("届出", FORM))
    box.add(b"")  # an empty message: kept for manual triage
    box.flush()
    box.close()
    code, out, err = run("center", "ingest-mail", str(path), "--db", db, "--json")
    assert code == 0, err
    lines = [json.loads(line) for line in out.decode().splitlines()]
    assert [(x["kind"], x["manual_triage"]) for x in lines] == [
        ("form", False),
        ("unreadable", True),
    ]
    assert "2 messages, 2 reports, 1 for manual triage" in err
    code, out, err = run("center", "ingest-mail", str(path), "--db", db)
    assert code == 0
    with Store.open(db) as store:
        assert store.list_reports()[1] == 2  # the second run stored nothing new
        report = store.get_report(lines[0]["reports"][0], actor="test").report
    assert report.methods == ["access_probe"]
    assert report.sources == ["192.0.2.7"]


@pytest.mark.parametrize(
    "args", [[], ["somewhere", "--smtp", "127.0.0.1:2525"]], ids=["neither", "both"]
)
def test_ingest_mail_needs_one_source(args: list[str]) -> None:
    code, _, err = run("center", "ingest-mail", *args)
    assert code == 2 and "MAILDIR/MBOX or --smtp" in err


def test_ingest_mail_of_a_missing_mailbox(tmp_path: Path) -> None:
    code, _, err = run(
        "center", "ingest-mail", str(tmp_path / "nope"), "--db", f"sqlite:///{tmp_path}/c.db"
    )
    assert code == 2 and "no such Maildir or mbox" in err


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.mark.slow
def test_ingest_mail_smtp_listener_process(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'c.db'}"
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "todokede",
            "center",
            "ingest-mail",
            "--smtp",
            f"127.0.0.1:{port}",
            "--db",
            db,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                client = smtplib.SMTP("127.0.0.1", port, timeout=10)
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.1)
        with client:
            assert (
                client.sendmail("yamada@example.ac.jp", ["crack@example.jp"], mail("届出", FORM))
                == {}
            )
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert b"listening for reports by e-mail on 127.0.0.1" in err
    assert b"[form]" in out and b"stopped" in err
    with Store.open(db) as store:
        (item,), total = store.list_reports()
    assert total == 1 and item.report.sources == ["192.0.2.7"]


def test_ingest_one_message_from_stdin(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'c.db'}"
    result = CliRunner().invoke(
        cli, ["center", "ingest-mail", "-", "--db", db, "--json"], input=mail("届出", FORM)
    )
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["kind"] == "form"


def test_stdin_delivery_defers_when_the_store_is_down(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    result = CliRunner().invoke(
        cli,
        ["center", "ingest-mail", "-", "--db", f"postgresql+psycopg://x@127.0.0.1:{port}/x"],
        input=mail("届出", FORM),
    )
    assert result.exit_code == 75  # EX_TEMPFAIL: the MTA keeps the mail and retries
    assert "todokede: error:" in result.stderr
