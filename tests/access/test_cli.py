"""`todokede access match` and `todokede access check` from the command line."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from todokede.cli import cli

SAMPLES = Path(__file__).parents[2] / "todokede" / "samples" / "access"
BASE = ["access", "match", "--rules-dir", str(SAMPLES), "--hosts-file", str(SAMPLES / "hosts")]


def run(*args: str, stdin: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), input=stdin)
    return result.exit_code, result.output


def test_match_text_like_tcpdmatch() -> None:
    code, out = run(*BASE, "imapd", "192.0.2.23")
    assert code == 0
    assert out.splitlines() == [
        "client:   address  192.0.2.23",
        "server:   process  imapd",
        "matched:  hosts.deny line 2",
        "access:   denied",
    ]
    code, out = run(*BASE, "imapd", "pc29.lab.daigaku.example")
    assert "matched:  hosts.allow line 4" in out and out.endswith("access:   granted\n")


def test_match_json() -> None:
    code, out = run(*BASE, "--json", "imapd@172.16.1.1", "taro@pc13")
    assert code == 0
    assert json.loads(out) == {
        "query": "imapd@172.16.1.1 taro@pc13",
        "results": [
            {
                "access": "granted",
                "matched": {"file": "hosts.allow", "line": 4},
                "options": [],
                "warnings": [
                    "warning: pc13: hostname alias",
                    "warning: (official name: pc13.lab.daigaku.example)",
                ],
            }
        ],
    }


def test_match_batch_in_order() -> None:
    stdin = "imapd 203.0.113.45\n\nsshd 172.16.1.7\nonly-one-word\nimapd nosuch.example\n"
    code, out = run(*BASE, "--batch", stdin=stdin)
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert [x["query"] for x in lines] == [
        "imapd 203.0.113.45",
        "sshd 172.16.1.7",
        "only-one-word",
        "imapd nosuch.example",
    ]
    assert [r["access"] for r in lines[0]["results"]] == ["denied"]
    assert lines[1]["results"][0]["matched"] == {"file": "hosts.allow", "line": 5}
    assert lines[2]["results"] == [] and "expected" in lines[2]["error"]
    assert lines[3]["error"] == "nosuch.example: host not found"


def test_match_errors_are_messages() -> None:
    code, out = run(*BASE, "imapd", "nosuch.example")
    assert code == 2 and "todokede: error: nosuch.example: host not found" in out
    code, out = run(*BASE)
    assert code == 2 and "DAEMON" in out
    code, out = run(*BASE, "--batch", "imapd", stdin="")
    assert code == 2


def test_check_exit_status(tmp_path: Path) -> None:
    code, out = run("access", "check", "--rules-dir", str(SAMPLES))
    assert code == 0
    (tmp_path / "hosts.allow").write_text("sshd: 10.0.5.7/24\nsshd 10.0.0.1\n")
    code, out = run("access", "check", "--rules-dir", str(tmp_path))
    assert code == 1
    assert "error: hosts.allow, line 1: 10.0.5.7/24 can never match" in out
    assert 'error: hosts.allow, line 2: missing ":" separator' in out
    code, out = run("access", "check", "--json", "--rules-dir", str(tmp_path))
    assert code == 1
    assert json.loads(out.splitlines()[0])["line"] == 1


def test_missing_dir_is_an_error(tmp_path: Path) -> None:
    code, out = run("access", "check", "--rules-dir", str(tmp_path / "nope"))
    assert code == 2 and "no such directory" in out
    code, out = run("access", "match", "--rules-dir", str(tmp_path / "nope"), "sshd", "10.0.0.1")
    assert code == 2 and "no such directory" in out


def test_help_has_examples() -> None:
    for args in (["access"], ["access", "match"], ["access", "check"]):
        code, out = run(*args, "--help")
        assert code == 0 and "Example" in out


def test_control_characters_are_escaped(tmp_path: Path) -> None:
    (tmp_path / "hosts.allow").write_bytes(b"sshd: 10.0.0.1 : bogus\x1b[31m\n")
    code, out = run("access", "check", "--rules-dir", str(tmp_path))
    assert code == 1 and "\x1b" not in out and "\\x1b[31m" in out
    code, out = run("access", "match", "--rules-dir", str(tmp_path), "sshd", "10.0.0.1")
    assert code == 0 and "\x1b" not in out and 'bad option name: "bogus\\x1b[31m"' in out
