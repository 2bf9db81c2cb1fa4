"""`todokede access match` and `todokede access check` from the command line."""

from __future__ import annotations

import json
import random
import select
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.access import shapes
from todokede.access import HostsFileResolver, Rules, predict
from todokede.access.query import render
from todokede.cli import cli
from todokede.cli.access import _answer
from todokede.errors import InputError

SAMPLES = Path(__file__).parents[2] / "todokede" / "samples" / "access"
HOSTS = Path(__file__).parent / "etc-hosts"
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
    code, out = run(*BASE, "--batch", "--json", stdin=stdin)
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


def test_match_batch_text_like_tcpdmatch() -> None:
    stdin = "imapd 192.0.2.23\nonly-one-word\n# a comment\nimapd pc29.lab.daigaku.example"
    code, out = run(*BASE, "--batch", stdin=stdin)
    assert code == 0
    first, bad, third, end = out.split("\n\n")
    _, single = run(*BASE, "imapd", "192.0.2.23")
    assert first == "query:    imapd 192.0.2.23\n" + single.rstrip("\n")
    assert bad == "query:    only-one-word\nerror: expected: DAEMON[@SERVER] [USER@]CLIENT"
    assert third.startswith("query:    imapd pc29.lab.daigaku.example\n")
    assert third.endswith("access:   granted") and end == ""


@pytest.mark.parametrize("hosts", [True, False])
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 2**32 - 1))
def test_match_batch_json_is_json_dumps(tmp_path: Path, hosts: bool, seed: int) -> None:
    """The batch's JSON lines are exactly json.dumps of each query's answer; its text is
    each query's tcpdmatch lines."""
    rng = random.Random(seed)
    allow, deny = shapes.make_tables(rng.choice([5, 40]), rng)
    (tmp_path / "hosts.allow").write_text(allow + "sshd: 10.0.0.0/8 : spawn echo %a\n")
    (tmp_path / "hosts.deny").write_text(deny + "oops no colon\n")
    # Without a hosts file names would go to the system resolver: addresses only then.
    pairs = shapes.make_queries(30, rng, (allow, deny), names=hosts)
    queries = [f"{d} {c}" for d, c in pairs]
    queries += ["x", "in.ftpd@10.1.2.3 bob@10.1.2.3", "a b c", "sshd unknown"]
    if hosts:
        queries += ["sshd nosuch.example", "sshd é"]
    rng.shuffle(queries)
    args = ["access", "match", "--rules-dir", str(tmp_path)]
    if hosts:
        args += ["--hosts-file", str(HOSTS)]
    code, out = run(*args, "--json", "--batch", stdin="\n".join(queries) + "\n")
    assert code == 0
    rules = Rules.load(tmp_path, resolver=HostsFileResolver(HOSTS) if hosts else None)
    expected: list[dict[str, object]] = []
    for q in queries:
        words = q.split()
        if len(words) != 2:
            expected.append(
                {"query": q, "results": [], "error": "expected: DAEMON[@SERVER] [USER@]CLIENT"}
            )
        else:
            expected.append(_answer(rules, *words))
    assert out.splitlines() == [json.dumps(e, ensure_ascii=False) for e in expected]
    code, out = run(*args, "--batch", stdin="\n".join(queries) + "\n")
    assert code == 0
    blocks = []
    for q in queries:
        words = q.split()
        if len(words) != 2:
            blocks.append(f"query:    {q}\nerror: expected: DAEMON[@SERVER] [USER@]CLIENT\n")
            continue
        try:
            lines = render(predict(rules, *words))
        except InputError as exc:
            lines = [f"error: {exc}"]
        blocks.append("".join(f"{line}\n" for line in [f"query:    {q}", *lines]))
    assert out == "".join(b + "\n" for b in blocks)


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


def test_match_batch_answers_each_query_as_it_arrives(tmp_path: Path) -> None:
    """A program that sends a query and waits for the answer gets it: the batch answers
    what each read gives, not only at the end of input."""
    (tmp_path / "hosts.allow").write_text("sshd: 10.0.0.0/8 EXCEPT 10.0.0.1\n")
    (tmp_path / "hosts.deny").write_text("ALL: ALL\n")
    with subprocess.Popen(
        [sys.executable, "-m", "todokede", "access", "match", "--batch", "--json",
         "--rules-dir", str(tmp_path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    ) as proc:  # fmt: skip
        assert proc.stdin is not None and proc.stdout is not None
        try:
            for addr, access in [("10.0.0.2", "granted"), ("10.0.0.1", "denied")]:
                proc.stdin.write(f"sshd {addr}\n".encode())
                proc.stdin.flush()
                ready, _, _ = select.select([proc.stdout], [], [], 30)
                assert ready, "no answer while stdin stays open"
                answer = json.loads(proc.stdout.readline())
                assert answer["results"][0]["access"] == access
            proc.stdin.close()
            assert proc.wait(30) == 0
        finally:
            proc.kill()
