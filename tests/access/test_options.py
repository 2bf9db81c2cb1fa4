"""hosts_options(5) parsing and validation, as libwrap's process_options()."""

from __future__ import annotations

import pytest

from todokede.access.options import Option, check_value, fields, percent_x, process, split_option


class Source:
    def expansion(self, letter: str) -> str | None:
        return {"a": "10.0.0.1", "d": "sshd", "u": "bob;rm"}.get(letter)

    def daemon(self) -> str:
        return "sshd"

    # the rules here hold neither option: a call is a wrong parse
    def aclexec(self, command: str) -> None:
        raise AssertionError(f"aclexec {command!r}")

    def rfc931(self, timeout: float) -> None:
        raise AssertionError(f"rfc931 {timeout}")


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        (" allow\n", [" allow\n"]),
        (" spawn a\\:b : allow\n", [" spawn a:b ", " allow\n"]),
        (" allow :\n", [" allow ", "\n"]),
        ("a:", ["a"]),
    ],
)
def test_fields(text: str, parts: list[str]) -> None:
    assert fields(text)[0] == parts


@pytest.mark.parametrize(
    ("field", "key", "value"),
    [
        (" severity auth.notice ", "severity", "auth.notice"),
        ("severity=local0.warning", "severity", "local0.warning"),
        ("severity = x", "severity", "x"),
        ("allow", "allow", None),
        ("  ", "", None),
        ("a==b", "a", "=b"),
    ],
)
def test_split_option(field: str, key: str, value: str | None) -> None:
    assert split_option(field) == (key, value)


@pytest.mark.parametrize(
    ("name", "value", "error"),
    [
        ("umask", "022", None),
        ("umask", "999", 'bad umask value: "999"'),
        ("umask", "-0", None),
        ("linger", "5x", 'bad linger value: "5x"'),
        ("rfc931", "0", 'bad rfc931 timeout: "0"'),
        ("rfc931", "+5", None),
        ("nice", "-5x", 'bad nice value: "-5x"'),
        ("severity", "AUTH.NOTICE", None),
        ("severity", "syslog.info", 'bad syslog facility or severity: "syslog"'),
        ("severity", "auth.warn", 'bad syslog facility or severity: "warn"'),
        ("severity", "info", None),
        ("user", "nosuchuser-xyz", 'unknown user: "nosuchuser-xyz"'),
        ("user", "nobody.nosuchgroup-xyz", 'unknown group: "nosuchgroup-xyz"'),
        ("group", "nosuchgroup-xyz", 'unknown group: "nosuchgroup-xyz"'),
    ],
)
def test_check_value(name: str, value: str, error: str | None) -> None:
    assert check_value(Option(name, value)) == error


def test_process_expands_and_stops() -> None:
    out = process(" spawn echo %a %u : Deny\n", Source(), dry_run=False)
    assert out.verdict == "deny"
    assert [str(o) for o in out.options] == ["spawn echo 10.0.0.1 bob_rm", "Deny"]
    assert out.options[1].name == "deny"
    out = process(" twist x : allow\n", Source(), dry_run=False)
    assert out.verdict == "error"
    assert out.events[-1] == ("error", 'option "twist" must be at end')


def test_percent_x() -> None:
    warnings: list[str] = []
    assert percent_x("%d%%%q%", Source(), warnings) == "sshd%%"
    assert warnings == ["unrecognized %q"]
