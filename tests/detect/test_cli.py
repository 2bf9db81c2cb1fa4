"""``todokede scan`` on the command line."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import todokede
from tests.conftest import need
from todokede.cli import cli

SAMPLES = Path(todokede.__file__).parent / "samples" / "logs" / "1997-09"


def run(*args: str, input: bytes | None = None) -> Result:
    return CliRunner().invoke(cli, ["scan", *args], input=input)


def test_json_lines() -> None:
    r = run("--json", "--year", "1997", str(SAMPLES / "site-imap" / "messages"))
    assert r.exit_code == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert sum(x["count"] for x in rows) == 9
    for x in rows:
        assert set(x) >= {
            "kind",
            "service",
            "sources",
            "count",
            "first_seen",
            "last_seen",
            "outcome",
            "evidence",
        }
    assert "5077 lines" in r.stderr and "1 unparsed" in r.stderr and "line 3387" in r.stderr


def test_table_escapes_attacker_text(tmp_path: Path) -> None:
    log = tmp_path / "messages"
    log.write_bytes(
        b"Sep  1 10:00:00 h imapd[1]: refused connect from \x1b[31m[bold]evil (192.0.2.1)\n"
    )
    r = run("--year", "1997", str(log))
    assert r.exit_code == 0
    assert "\x1b" not in r.stdout and "[bold]evil" in r.stdout


def test_stdin_and_options() -> None:
    data = (SAMPLES / "site-bomb" / "maillog").read_bytes()
    r = run("--json", "--year", "1997", "--bomb-min", "10", "--bomb-gap", "60", "-", input=data)
    assert r.exit_code == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [x["kind"] for x in rows] == ["mail-bomb"] and rows[0]["count"] == 3200
    r = run("--json", "--year", "1997", "--bomb-min", "4000", "-", input=data)
    assert r.stdout == ""


def test_config_and_filter(tmp_path: Path) -> None:
    (tmp_path / "scan.toml").write_text("[scan]\nprobe_min = 2\n")
    r = run(
        "--json",
        "--year",
        "1997",
        "--config",
        str(tmp_path / "scan.toml"),
        str(SAMPLES / "site-imap" / "messages"),
    )
    assert [json.loads(x)["count"] for x in r.stdout.splitlines()] == [2, 2]
    (tmp_path / "refused.conf").write_text(
        "[Definition]\nfailregex = refused connect from \\S+ \\(<HOST>\\)$\n"
    )
    r = run(
        "--json",
        "--year",
        "1997",
        "--filter",
        str(tmp_path / "refused.conf"),
        str(SAMPLES / "site-imap" / "messages"),
    )
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    assert {x["service"] for x in rows} == {"imapd", "refused"}  # native findings and the filter's
    # 10 refused lines, one without "(ADDR)"; the filter knows no site, so the internal host counts
    assert sum(x["count"] for x in rows if x["service"] == "refused") == 9


F2B_LOGS = Path("/usr/lib/python3/dist-packages/fail2ban/tests/files/logs")
F2B_FILTERS = Path("/etc/fail2ban/filter.d")


@pytest.mark.peer
@pytest.mark.parametrize(
    ("name", "options", "log"),
    [
        ("exim", "", "exim"),
        ("sshd", "[mode=aggressive, usedns=no]", "sshd"),
        ("courier-smtp", "[usedns=no]", "courier-smtp"),
    ],
)
def test_filters_by_name_find_what_fail2ban_finds(name: str, options: str, log: str) -> None:
    need("fail2ban-regex")
    if not (F2B_LOGS / log).is_file():
        pytest.skip("fail2ban's sample logs are not installed (run scripts/peers as root)")
    r = run(
        "--json", "--filter-dir", str(F2B_FILTERS), "--filter", name + options, str(F2B_LOGS / log)
    )
    assert r.exit_code == 0, r.stderr
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    mine = [x for x in rows if x["details"].get("filter") == name]
    assert all(x["outcome"] == "failed" and x["kind"] == "access-probe" for x in mine)
    found = {(host, x["count"]) for x in mine for host in x["sources"]}
    conf = F2B_FILTERS / f"{name}.conf{options}"
    out = subprocess.run(
        ["fail2ban-regex", "--usedns=no", "--out", "fid", str(F2B_LOGS / log), str(conf)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout.split()
    assert out and found == set(Counter(out).items())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["/nonexistent/log"], "cannot open"),
        (["--local-net", "nonsense", "-"], "not a network"),
        (["--bomb-min", "0", "-"], "bomb_min"),
        (["--filter", "no-such-filter", "-"], "'no-such-filter' not found"),
        (["--filter", "sshd[mode=x]junk", "-"], "unexpected"),
    ],
)
def test_errors_are_messages(args: list[str], message: str) -> None:
    r = run(*args, input=b"")
    assert r.exit_code == 2
    assert message in r.stderr and "Traceback" not in r.stderr


def test_help_has_an_example() -> None:
    r = run("--help")
    assert "Example:" in r.stdout and "--follow" in r.stdout


def readline(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> bytes:
    """One line of output, or fail after ``timeout`` seconds (never hang the suite)."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, f"no output from scan --follow in {timeout}s"
    return proc.stdout.readline()


@pytest.mark.slow
def test_follow_survives_rotation_and_stops_on_sigterm(tmp_path: Path) -> None:
    log = tmp_path / "messages"
    log.write_text("Sep  1 10:00:00 gw imapd[1]: refused connect from 192.0.2.1 (192.0.2.1)\n")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "todokede",
            "scan",
            "--follow",
            "--json",
            "--year",
            "1997",
            str(log),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    try:
        first = json.loads(readline(proc))
        assert (first["sources"], first["count"]) == (["192.0.2.1"], 1)
        with open(log, "a") as fh:
            fh.write("Sep  1 10:00:05 gw imapd[2]: refused connect from 192.0.2.1 (192.0.2.1)\n")
        assert json.loads(readline(proc))["count"] == 2
        log.rename(tmp_path / "messages.1")
        log.write_text(
            "Sep  1 10:01:00 gw imapd[3]: refused connect from 198.51.100.9 (198.51.100.9)\n"
        )
        third = json.loads(readline(proc))
        assert (third["sources"], third["count"]) == (["198.51.100.9"], 1)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
        assert proc.returncode == 0
        assert b"3 lines" in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
