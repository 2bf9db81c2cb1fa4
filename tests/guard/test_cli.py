"""``todokede guard status``, ``ban``, ``unban``; the command and JSON actions; errors as
messages; SIGHUP and SIGTERM of the running guard."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.guard.harness import config, guard, wait_until
from todokede.cli import cli


def jail(tmp: Path, extra: str = "") -> str:
    log = tmp / "auth.log"
    log.touch()
    return (
        f'[jail.sshd]\nlogpath = "{log}"\nfilters = ["sshd"]\nmaxretry = 2\n'
        f'bantime = "1h"\nactions = ["hosts-deny", "command", "json"]\n{extra}'
    )


def invoke(conf: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["guard", *args, "--config", str(conf)], env=env or {})
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


def test_ban_status_unban(tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    conf = config(
        tmp_path,
        jail(tmp_path),
        ban_command=f"touch {marks}/<ip>_<name>_<failures>",
        unban_command=f"rm {marks}/<ip>_<name>_<failures>",
    )
    code, out = invoke(conf, "ban", "192.0.2.7", "--bantime", "10m")
    assert code == 0, out
    assert "sshd: banned 192.0.2.7 for 600s" in out
    assert json.loads(out.splitlines()[0])["ip"] == "192.0.2.7"  # the JSON action
    assert (tmp_path / "guard.deny").read_text() == "192.0.2.7\n"
    assert [p.name for p in marks.iterdir()] == ["192.0.2.7_sshd_0"]
    code, out = invoke(conf, "status", "sshd", "--json")
    status = json.loads(out)["jails"]["sshd"]
    assert status["banned"] == 1 and status["bans"][0]["ip"] == "192.0.2.7"
    assert 590 < status["bans"][0]["left"] <= 600
    code, out = invoke(conf, "status")
    assert code == 0 and "sshd: 1 banned" in out
    code, out = invoke(conf, "unban", "192.0.2.7")
    assert code == 0 and "sshd: unbanned 192.0.2.7" in out
    assert (tmp_path / "guard.deny").read_text() == ""
    assert list(marks.iterdir()) == []
    code, out = invoke(conf, "unban", "192.0.2.7")
    assert code == 2 and "is not banned" in out


@pytest.mark.parametrize(
    ("address", "env", "message"),
    [
        ("127.0.0.1", {}, "ignoreip"),
        ("10.1.2.3", {}, "ignoreip"),
        ("::1", {}, "ignoreip"),
        ("192.0.2.44", {"SSH_CLIENT": "192.0.2.44 51000 22"}, "SSH_CLIENT"),
        ("::ffff:192.0.2.45", {"SSH_CONNECTION": "192.0.2.45 1 192.0.2.1 22"}, "SSH_CLIENT"),
        ("mail.example", {}, "not an IP address"),
    ],
)
def test_ban_refuses(tmp_path: Path, address: str, env: dict[str, str], message: str) -> None:
    conf = config(tmp_path, jail(tmp_path))
    code, out = invoke(conf, "ban", address, env=env)
    assert code == 2 and "todokede: error:" in out and message in out
    assert not (tmp_path / "guard.deny").exists() or (tmp_path / "guard.deny").read_text() == ""


def test_config_errors_are_messages(tmp_path: Path) -> None:
    conf = tmp_path / "guard.toml"
    conf.write_text('[jail.sshd]\nlogpath = "/var/log/auth.log"\n\nmaxretry = "many"\n')
    for args in ([], ["status"], ["ban", "192.0.2.1"]):
        result = CliRunner().invoke(cli, ["guard", *args, "--config", str(conf)])
        assert result.exit_code == 2
        assert f"todokede: error: {conf}, line 4: field maxretry: an integer" in result.output
    result = CliRunner().invoke(cli, ["guard", "status", "--config", str(tmp_path / "none")])
    assert result.exit_code == 2 and "cannot read" in result.output


def test_the_running_guard_bans_reloads_and_stops(tmp_path: Path) -> None:
    conf = config(tmp_path, jail(tmp_path))
    log = tmp_path / "auth.log"
    deny = tmp_path / "guard.deny"
    line = "Dec  7 10:00:00 h sshd[1]: Failed password for root from {} port 22 ssh2\n"
    with guard(conf) as proc:
        with log.open("a") as fh:
            fh.write(line.format("192.0.2.50") * 2)
        wait_until(lambda: deny.exists() and "192.0.2.50" in deny.read_text(), what="a ban")
        assert proc.stdout is not None
        event = json.loads(proc.stdout.readline())
        assert (event["event"], event["ip"], event["failures"]) == ("ban", "192.0.2.50", 2)
        conf.write_text(conf.read_text().replace("maxretry = 2", "maxretry = 3"))
        proc.send_signal(signal.SIGHUP)
        errlog = tmp_path / "guard.err"
        wait_until(lambda: errlog.read_text().count("started:") == 2, what="the reload")
        with log.open("a") as fh:
            fh.write(line.format("192.0.2.51") * 2)
        time.sleep(0.5)  # two failures no longer make a ban
        assert "192.0.2.51" not in deny.read_text()
        with log.open("a") as fh:
            fh.write(line.format("192.0.2.51"))
        wait_until(lambda: "192.0.2.51" in deny.read_text(), what="the third failure's ban")
        assert "1 ban(s) re-applied" in errlog.read_text()


def test_a_log_that_appears_later_is_read_from_its_start(tmp_path: Path) -> None:
    log = tmp_path / "later" / "auth.log"
    log.parent.mkdir()
    conf = config(
        tmp_path,
        f'[jail.sshd]\nlogpath = "{log}"\nfilters = ["sshd"]\nmaxretry = 2\n'
        'actions = ["hosts-deny"]\n',
    )
    deny = tmp_path / "guard.deny"
    line = "Dec  7 10:00:00 h sshd[1]: Invalid user x from 192.0.2.70 port 22\n"
    with guard(conf):
        log.write_text(line * 2)  # created and written in one go
        wait_until(lambda: "192.0.2.70" in deny.read_text(), what="the ban")


def test_status_before_any_ban_makes_no_state(tmp_path: Path) -> None:
    conf = config(tmp_path, jail(tmp_path))
    code, out = invoke(conf, "status", "sshd", "--json")
    assert code == 0 and json.loads(out)["jails"]["sshd"]["bans"] == []
    assert not (tmp_path / "state.db").exists()


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        ([], {"TODOKEDE_TOKEN": "t"}, "needs --center URL"),
        (["--center", "http://127.0.0.1:9"], {"TODOKEDE_TOKEN": ""}, "needs TODOKEDE_TOKEN"),
    ],
)
def test_submit_needs_a_center_and_a_token(
    tmp_path: Path, args: list[str], env: dict[str, str], message: str
) -> None:
    conf = config(tmp_path, jail(tmp_path, 'report = "submit"\n'))
    result = CliRunner().invoke(cli, ["guard", "--config", str(conf), *args], env=env)
    assert result.exit_code == 2 and message in result.output
    assert "field report" in result.output
