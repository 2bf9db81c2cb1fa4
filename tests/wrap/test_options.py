"""hosts_options(5) as the wrapper acts on them."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from todokede.wrap.options import (
    LoggerCall,
    aclexec_warning,
    echo_message,
    logger_call,
    plan_options,
)


@dataclass(frozen=True)
class Opt:
    name: str
    value: str | None = None


def test_plan_in_order() -> None:
    plan = plan_options(
        [
            Opt("severity", "auth.err"),
            Opt("rfc931", None),
            Opt("spawn", "logger a"),
            Opt("Spawn", "logger b"),
            Opt("banners", "/srv/banners"),
            Opt("group", "nogroup"),
            Opt("keepalive"),
            Opt("linger", "5"),
            Opt("setenv", "FOO bar baz"),
            Opt("umask", "077"),
            Opt("nice", None),
            Opt("user", "nobody.nogroup"),
            Opt("twist", "/bin/echo hi"),
            Opt("allow"),
        ]
    )
    assert plan.priority == 35
    assert plan.rfc931 == 10.0
    assert plan.spawn == ["logger a", "logger b"]
    assert plan.group == "nogroup"
    assert plan.keepalive and plan.linger == 5
    assert plan.setenv == [("FOO", "bar baz")]
    assert plan.umask == 0o77 and plan.nice == 10 and plan.user == "nobody.nogroup"
    assert plan.twist == "/bin/echo hi"
    assert plan.errors == []


@pytest.mark.parametrize(
    ("option", "fragment"),
    [
        (Opt("severity", "loud"), "severity option"),
        (Opt("linger", "long"), "linger option"),
        (Opt("umask", "999"), "umask option"),
        (Opt("setenv", ""), "setenv option"),
    ],
)
def test_plan_bad_values_are_reported(option: Opt, fragment: str) -> None:
    plan = plan_options([option])
    assert len(plan.errors) == 1 and plan.errors[0].startswith(fragment)


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ('/bin/echo "421 go away 127.0.0.2 (in.echod)"', b"421 go away 127.0.0.2 (in.echod)\n"),
        ("echo -n no newline", b"no newline"),
        ("/usr/bin/echo 'a  b'", b"a  b\n"),
        ("echo $HOME", None),
        ("echo `id`", None),
        ("echo hi; rm -rf /", None),
        ("echo hi > /tmp/x", None),
        ("/bin/cat /etc/passwd", None),
        ("echo 'unterminated", None),
    ],
)
def test_echo_emulation(command: str, message: bytes | None) -> None:
    assert echo_message(command) == message


@pytest.mark.parametrize(
    ("command", "call"),
    [
        (
            '/usr/bin/logger -t spawned "a=127.0.0.1 pct=%"',
            LoggerCall(13, "spawned", "a=127.0.0.1 pct=%"),
        ),
        ("logger -p auth.warning -t x two words", LoggerCall(36, "x", "two words")),
        ("logger -i -p err hello", LoggerCall(11, "logger", "hello")),
        ("logger --bogus x", None),
        ("logger -t x $(id)", None),
        ("/usr/bin/mail root", None),
    ],
)
def test_logger_emulation(command: str, call: LoggerCall | None) -> None:
    assert logger_call(command) == call


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_characters="\x00", codec="latin-1"), min_size=1))
def test_echo_of_quoted_text_is_the_text(text: str) -> None:
    # Anything the shell would print for `echo 'TEXT'` (single-quoted: no expansion) is sent as is.
    assume(not text.startswith("-"))  # options are left to the real echo
    command = "/bin/echo " + shlex.quote(text)
    assert echo_message(command) == (text + "\n").encode("latin-1")


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(list(";|&<>$`()")), st.text(max_size=20))
def test_unquoted_shell_syntax_is_never_emulated(special: str, rest: str) -> None:
    assert echo_message("echo x" + special + rest) is None
    assert logger_call("logger -t t x" + special + rest) is None


@pytest.mark.parametrize(
    ("options", "warned"),
    [
        ([Opt("aclexec", "/bin/false")], True),
        ([Opt("aclexec", "/bin/false"), Opt("allow")], False),
        ([Opt("spawn", "x")], False),
    ],
)
def test_aclexec_is_reported_when_it_would_matter(options: list[Opt], warned: bool) -> None:
    message = aclexec_warning(plan_options(options))
    assert (message is not None) == warned
    if message:
        assert message.endswith("/bin/false")
