from __future__ import annotations

import contextlib
import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import need
from tests.realservers import PostfixServer
from todokede.cli import cli
from todokede.errors import InputError
from todokede.probes.postfixconf import analyse, parse_main_cf

SAFE = """\
compatibility_level = 3.6
mynetworks = 127.0.0.0/8 [::ffff:127.0.0.0]/104 [::1]/128 192.168.0.0/16
smtpd_relay_restrictions = permit_mynetworks permit_sasl_authenticated defer_unauth_destination
relay_domains = backup.example.jp
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (SAFE, set()),
        ("compatibility_level = 3.6\n", set()),  # Postfix's own defaults are safe
        ("mynetworks = 0.0.0.0/0\n", {("mynetworks", "open")}),
        ("mynetworks = 127.0.0.1 [::]/0\n", {("mynetworks", "open")}),
        ("mynetworks = 61.0.0.0/8\n", {("mynetworks", "wide")}),
        ("mynetworks = 10.0.0.0/8 61.12.34.0/24\n", set()),  # private or small
        ("compatibility_level = 2\nmynetworks_style = class\n", {("mynetworks_style", "wide")}),
        (
            "compatibility_level = 3.6\n"
            "smtpd_relay_restrictions = permit_mynetworks, permit, reject_unauth_destination\n",
            {("smtpd_relay_restrictions", "open")},
        ),
        (
            # pre-2.10 style: everything in the recipient restrictions
            "compatibility_level = 3.6\nsmtpd_relay_restrictions =\n"
            "smtpd_recipient_restrictions = permit_mynetworks,\n"
            "    permit_mx_backup,\n    reject_unauth_destination\n",
            {("smtpd_recipient_restrictions", "wide")},
        ),
        (
            "compatibility_level = 3.6\nrelay_domains = jp, .com, example.org\n",
            {("relay_domains", "wide")},
        ),
        (
            "compatibility_level = 3.6\nallow_untrusted_routing = yes\n",
            {("allow_untrusted_routing", "wide")},
        ),
        (
            "compatibility_level = 3.6\nnets = 0.0.0.0/0\nmynetworks = $nets\n",
            {("mynetworks", "open")},
        ),
    ],
)
def test_findings(text: str, expected: set[tuple[str, str]]) -> None:
    check = analyse(text)
    got = {(f.setting, f.severity) for f in check.findings if f.severity != "note"}
    assert got == expected
    assert check.relays_too_widely == bool(expected)


def test_relay_restrictions_without_any_stop_is_noted() -> None:
    check = analyse("compatibility_level = 3.6\nsmtpd_relay_restrictions = permit_mynetworks\n")
    assert any(f.severity == "note" and "refuses" in f.message for f in check.findings)


def test_findings_carry_line_numbers() -> None:
    check = analyse("# comment\n\ncompatibility_level = 3.6\nmynetworks =\n  0.0.0.0/0\n")
    assert [(f.setting, f.line) for f in check.findings] == [("mynetworks", 4)]


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("no equals sign here\n", 1),
        ("  leading continuation = x\n", 1),
        ("a = 1\n\n[section]\n", 3),
    ],
)
def test_bad_lines_say_where(text: str, line: int) -> None:
    with pytest.raises(InputError) as info:
        parse_main_cf(text, "main.cf")
    assert info.value.line == line and info.value.source == "main.cf"


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.sampled_from("abz_=$ ,\t\n#/.0123456789:[]"), max_size=200))
def test_analyse_only_ever_raises_input_error(text: str) -> None:
    with contextlib.suppress(InputError):
        analyse(text)


def test_cli_config(tmp_path: Path) -> None:
    safe, wide = tmp_path / "safe.cf", tmp_path / "open.cf"
    safe.write_text(SAFE)
    wide.write_text("mynetworks = 0.0.0.0/0\nrelay_domains = com\n")
    runner = CliRunner()
    ok = runner.invoke(cli, ["probe", "relay", "--config", str(safe)])
    assert ok.exit_code == 0 and "no setting" in ok.output
    bad = runner.invoke(cli, ["probe", "relay", "--config", str(wide)])
    assert bad.exit_code == 1 and "OPEN RELAY" in bad.output and "line 1" in bad.output
    doc = json.loads(runner.invoke(cli, ["probe", "relay", "--config", str(wide), "--json"]).output)
    assert doc["open"] is True and {f["setting"] for f in doc["findings"]} == {
        "mynetworks",
        "relay_domains",
    }
    missing = runner.invoke(cli, ["probe", "relay", "--config", str(tmp_path / "nope.cf")])
    assert missing.exit_code == 2 and "nope.cf" in missing.output
    both = runner.invoke(cli, ["probe", "relay", "host", "--config", str(safe)])
    assert both.exit_code == 2


@pytest.mark.peer
@pytest.mark.parametrize("mode", ["closed", "open"])
def test_postconf_n_of_the_real_servers(
    mode: str, closed_postfix: PostfixServer, open_postfix: PostfixServer
) -> None:
    need("postconf")
    server = closed_postfix if mode == "closed" else open_postfix
    out = subprocess.run(
        ["postconf", "-c", str(server.config_dir), "-n"],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout  # fmt: skip
    check = analyse(out, "postconf -n")
    assert check.open is (mode == "open")
    main_cf = analyse((server.config_dir / "main.cf").read_text())
    assert main_cf.open is (mode == "open")
