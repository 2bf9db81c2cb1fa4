"""`todokede report draft` and `report submit`, the latter against a real center served by
uvicorn on loopback."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import date
from pathlib import Path

import pytest
import uvicorn
from click.testing import CliRunner

from todokede.center.intake.schema import Report
from todokede.center.store import Store
from todokede.cli import cli

FINDINGS = [
    {"kind": "access-probe", "service": "imapd", "sources": ["192.0.2.23"], "count": 7,
     "first_seen": "1997-08-14T03:12:40", "last_seen": "1997-09-16T05:44:01",
     "outcome": "refused", "evidence": ["Aug 14 03:12:40 mail imapd[1]: refused connect from x"],
     "targets": ["mail"], "details": {}},
    {"kind": "access-probe", "service": "imapd", "sources": ["198.51.100.77"], "count": 2,
     "first_seen": "1997-08-19T22:47:05", "last_seen": "1997-08-19T22:47:11",
     "outcome": "refused", "evidence": [], "targets": ["mail"], "details": {}},
]  # fmt: skip


def jsonl(path: Path, items: Sequence[object]) -> Path:
    path.write_text("".join(json.dumps(i) + "\n" for i in items), encoding="utf-8")
    return path


def test_draft_from_scan_to_a_file(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    findings = jsonl(tmp_path / "f.jsonl", FINDINGS)
    result = CliRunner().invoke(
        cli, ["report", "draft", "--from-scan", str(findings), "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    report = Report.model_validate_json(out.read_text(encoding="utf-8"))
    assert report.methods == ["access_probe"] and report.targets == ["imap"]
    assert report.attempts == 9 and report.actual_damage is False
    assert report.period and report.period.start == date(1997, 8, 14)


def test_draft_reads_stdin_and_writes_stdout() -> None:
    text = "".join(json.dumps(f) + "\n" for f in FINDINGS) + "\n"
    result = CliRunner().invoke(
        cli, ["report", "draft", "--from-scan", "-", "--lang", "en"], input=text
    )
    assert result.exit_code == 0, result.output
    report = Report.model_validate_json(result.output)
    assert report.language == "en" and report.narrative and "9 attempts" in report.narrative


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"kind": "mail-bomb"}\nnot json\n', "line 2: not JSON"),
        ("[1, 2]\n", "line 1: a finding must be a JSON object"),
        (
            '\n{"kind": "worm", "first_seen": "1997-09-01", "last_seen": "1997-09-01"}\n',
            "line 2: unknown kind",
        ),
        ("", "no findings"),
    ],
)
def test_draft_bad_input_says_where(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "f.jsonl"
    path.write_text(content, encoding="utf-8")
    result = CliRunner().invoke(cli, ["report", "draft", "--from-scan", str(path)])
    assert result.exit_code == 2
    assert "todokede: error:" in result.output and message in result.output
    assert str(path) in result.output


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def center(tmp_path: Path) -> Iterator[tuple[str, Store, str]]:
    """A real center on a free loopback port: (base URL, store, a reporter's token)."""
    from todokede.center.web.app import create_app

    store = Store.open(f"sqlite:///{tmp_path / 'center.db'}")
    token = store.add_user("site-admin", "reporter")
    port = free_port()
    config = uvicorn.Config(create_app(store), host="127.0.0.1", port=port, log_level="warning",
                            lifespan="off", ws="none")  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline and thread.is_alive():
        time.sleep(0.05)
    assert server.started, "the center did not start"
    try:
        yield f"http://127.0.0.1:{port}", store, token
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        store.close()


def test_submit_json_and_iodef(center: tuple[str, Store, str], tmp_path: Path) -> None:
    url, store, token = center
    findings = jsonl(tmp_path / "f.jsonl", FINDINGS)
    draft = tmp_path / "report.json"
    runner = CliRunner()
    assert (
        runner.invoke(
            cli, ["report", "draft", "--from-scan", str(findings), "-o", str(draft)]
        ).exit_code
        == 0
    )
    result = runner.invoke(cli, ["report", "submit", str(draft), "--center", url + "/"],
                           env={"TODOKEDE_TOKEN": token})  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.output.startswith("report 1 received /api/reports/1")
    stored = store.get_report(1)
    assert stored.owner == "site-admin" and stored.report.attempts == 9

    from todokede.center.exchange.iodef import to_iodef

    iodef = tmp_path / "report.xml"
    # An old ReportTime: the center would refuse it, so it is left out with a note.
    old = stored.report.model_copy(update={"received": date(1997, 9, 17)})
    iodef.write_bytes(to_iodef([stored.model_copy(update={"report": old})]))
    result = runner.invoke(cli, ["report", "submit", str(iodef), "--center", url],
                           env={"TODOKEDE_TOKEN": token})  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "received 1997-09-17 left out: the center sets it" in result.stderr
    resent = store.get_report(2).report
    assert resent.methods == ["access_probe"] and resent.received == stored.report.received


def test_submit_is_idempotent_with_a_key(center: tuple[str, Store, str], tmp_path: Path) -> None:
    url, store, token = center
    path = tmp_path / "r.json"
    path.write_text(Report(methods=["dos"]).model_dump_json(), encoding="utf-8")
    args = ["report", "submit", str(path), "--center", url, "--idempotency-key", "k1"]
    first = CliRunner().invoke(cli, args, env={"TODOKEDE_TOKEN": token})
    again = CliRunner().invoke(cli, args, env={"TODOKEDE_TOKEN": token})
    assert first.exit_code == again.exit_code == 0
    assert first.output == again.output
    assert store.list_reports()[1] == 1


def test_submit_errors_are_messages(center: tuple[str, Store, str], tmp_path: Path) -> None:
    url, _, token = center
    good = tmp_path / "r.json"
    good.write_text(Report(methods=["dos"]).model_dump_json(), encoding="utf-8")
    bad = tmp_path / "bad.json"
    bad.write_text('{"methods": ["teleportation"]}', encoding="utf-8")
    runner = CliRunner()
    cases = [
        ([str(good), "--center", url], {"TODOKEDE_TOKEN": ""}, "set TODOKEDE_TOKEN"),
        ([str(good), "--center", url], {"TODOKEDE_TOKEN": "wrong"}, "HTTP 401"),
        ([str(bad), "--center", url], {"TODOKEDE_TOKEN": token}, "field methods.0"),
        ([str(good), "--center", "file:///etc/passwd"], {"TODOKEDE_TOKEN": token}, "http(s) URL"),
        ([str(good), "--center", f"http://127.0.0.1:{free_port()}"], {"TODOKEDE_TOKEN": token},
         "cannot reach the center"),
        ([str(tmp_path / "missing.json"), "--center", url], {"TODOKEDE_TOKEN": token},
         "cannot read"),
    ]  # fmt: skip
    for args, env, message in cases:
        result = runner.invoke(cli, ["report", "submit", *args], env=env)
        assert result.exit_code == 2, (args, result.output)
        assert "todokede: error:" in result.output and message in result.output, result.output
