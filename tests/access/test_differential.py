"""Differential test: generated rule files and queries, decided by todokede and by the
real tcpdmatch (see oracle.py); every line of output must agree."""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.access import shapes
from tests.access.oracle import Oracle
from todokede.access import HostsFileResolver, Rules, predict
from todokede.access.query import render
from todokede.errors import InputError

HOSTS = Path(__file__).parent / "etc-hosts"

DAEMONS = [
    "sshd",
    "imapd",
    "in.ftpd",
    "ALL",
    "all",
    "ssh*",
    "imap?",
    "known",
    "unknown",
    "sshd@10.0.0.1",
    "ALL@[::1]",
    "imapd@.example.com",
    "ALL@KNOWN",
    "0",
    "sshd@unknown",
]
CLIENTS = [
    "ALL",
    "LOCAL",
    "KNOWN",
    "UNKNOWN",
    "PARANOID",
    "unknown",
    "all",
    "10.0.0.1",
    "10.1.2.3",
    "10.0.0.",
    "10.",
    "192.168.",
    "192.168",
    "10.0.0.0/8",
    "10.0.0.0/255.0.0.0",
    "10.1.2.0/24",
    "10.1.2.3/24",
    "10.0.0.0/0",
    "10.0.0.0/33",
    "0.0.0.0/0.0.0.0",
    "10.1.2.3/32",
    "010.1.2.3/32",
    "10.1.2.*",
    "10.*.3",
    "1?.1.2.3",
    ".example.com",
    ".com",
    "example.com",
    "good.example.com",
    "GOOD.example.COM",
    "*.example.com",
    "good",
    "shorty",
    "first.example.com",
    "spoofed.example.com",
    ".lan.example.net",
    ".3",
    "[::1]",
    "[2001:db8::]/32",
    "[2001:db8::5]",
    "[2001:db8::]/129",
    "[::]/0",
    "[::ffff:10.1.2.3]",
    "root@ALL",
    "KNOWN@10.0.0.1",
    "UNKNOWN@ALL",
    "r*@10.",
    "@netgroup",
    "EXCEPT",
    "except",
    "{DIR}/list1",
    "{DIR}/missing",
    "{DIR}/list2",
]
OPTIONS = [
    "allow",
    "deny",
    "ALLOW",
    "spawn echo %a %h %n %u %c %s %d",
    "twist echo %d %A",
    "severity auth.notice",
    "severity foo.bar",
    "umask 022",
    "umask 999",
    "bogus",
    "allow : spawn x",
    "nice",
    "nice 5",
    "keepalive",
    "keepalive 3",
    "rfc931 0",
    "rfc931",
    "setenv X %u",
    "linger 5",
    "spawn",
    "spawn echo %z",
    "deny : allow",
    "spawn echo a\\:b : deny",
    "aclexec /bin/false : allow",
    "",
    "severity=local0.warning : allow",
    "banners {DIR}/banners : allow",
    "banners /nonexistent",
    "spawn %N %H %n %h",
    "group nogroup",
    "user nobody.nogroup",
    "SEVERITY mail.ERR",
]
QUERY_DAEMONS = [
    "sshd",
    "imapd",
    "in.ftpd",
    "other",
    "sshd@10.0.0.1",
    "imapd@10.1.2.3",
    "x@::1",
    "unknown",
    "sshd@10.9.9.9",
    "sshd@good.example.com",
    "sshd@spoofed.example.com",
    "imapd@numrev",
    "/usr/sbin/sshd",
    "rpcbind",
]
QUERY_CLIENTS = [
    "10.0.0.1",
    "10.1.2.3",
    "10.1.2.10",
    "10.7.7.2",
    "192.168.1.50",
    "10.9.9.9",
    "good.example.com",
    "good",
    "shorty",
    "spoofed.example.com",
    "numrev",
    "multi.example.com",
    "Mixed.Example.COM",
    "host50.lan.example.net",
    "unknown",
    "paranoid",
    "::1",
    "2001:db8::5",
    "v6host.example.com",
    "::ffff:10.1.2.3",
    "root@10.0.0.1",
    "bob@good.example.com",
    "nosuch.example.com",
]


@st.composite
def token_list(draw: st.DrawFn, vocab: list[str]) -> str:
    toks = draw(st.lists(st.sampled_from(vocab), min_size=0, max_size=4))
    if draw(st.booleans()) and toks:
        toks.insert(draw(st.integers(0, len(toks))), "EXCEPT")
    sep = draw(st.sampled_from([" ", ", ", ",", "\t"]))
    return sep.join(toks)


@st.composite
def line(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["rule"] * 8 + ["comment", "blank", "nocolon", "indented", "cont"]))
    if kind == "comment":
        return "# a comment: ALL"
    if kind == "blank":
        return draw(st.sampled_from(["", "  ", "\t"]))
    if kind == "nocolon":
        return "sshd ALL"
    daemons = draw(token_list(DAEMONS))
    clients = draw(token_list(CLIENTS))
    text = f"{daemons}: {clients}"
    if draw(st.booleans()):
        text += " : " + draw(st.sampled_from(OPTIONS))
    if kind == "indented":
        text = " " + text
    if kind == "cont" and " " in text:
        i = text.index(" ")
        text = text[:i] + " \\\n " + text[i:]
    if draw(st.integers(0, 9)) == 0:
        text += "\r"
    return text


@st.composite
def table(draw: st.DrawFn) -> bytes:
    lines = draw(st.lists(line(), min_size=0, max_size=6))
    text = "\n".join(lines)
    if lines and draw(st.integers(0, 9)) != 0:
        text += "\n"  # usually; sometimes the last newline is missing
    return text.encode()


@st.composite
def query(draw: st.DrawFn) -> tuple[str, str]:
    return draw(st.sampled_from(QUERY_DAEMONS)), draw(st.sampled_from(QUERY_CLIENTS))


@pytest.fixture(scope="module")
def oracle(tmp_path_factory: pytest.TempPathFactory) -> Oracle:
    return Oracle(tmp_path_factory.mktemp("oracle"))


@pytest.mark.peer
@pytest.mark.root
@pytest.mark.slow
@settings(
    max_examples=int(os.environ.get("TODOKEDE_DIFF_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
@given(
    allow=table(),
    deny=table(),
    queries=st.lists(query(), min_size=1, max_size=4),
)
def test_agrees_with_tcpdmatch(
    oracle: Oracle,
    tmp_path_factory: pytest.TempPathFactory,
    allow: bytes,
    deny: bytes,
    queries: list[tuple[str, str]],
) -> None:
    case = tmp_path_factory.mktemp("case")
    allow, deny = (t.replace(b"{DIR}", str(case).encode()) for t in (allow, deny))
    (case / "hosts.allow").write_bytes(allow)
    (case / "hosts.deny").write_bytes(deny)
    (case / "list1").write_text(f"10.0.0.1 .example.com\n[2001:db8::5]  {case}/list2\n")
    (case / "list2").write_text("# 10.9.9.9 192.168.\n")
    (case / "banners").mkdir()
    (case / "banners" / "sshd").write_text("hello %a %d\nbye\n")
    shutil.copy(HOSTS, case / "etc-hosts")
    rules = Rules.load(case, resolver=HostsFileResolver(case / "etc-hosts"))
    for (daemon, client), (expected, rc) in zip(queries, oracle.run(case, queries), strict=True):
        where = f"query {daemon} {client}\n--- hosts.allow\n{allow!r}\n--- hosts.deny\n{deny!r}"
        if rc != 0:
            with pytest.raises(InputError):
                predict(rules, daemon, client)
            continue
        assert expected and expected[-1].startswith("access:"), where
        got = render(predict(rules, daemon, client))
        assert until_credentials_change(got) == until_credentials_change(expected), where


def until_credentials_change(lines: list[str]) -> list[str]:
    """The output up to the end of the first address block that applied a ``user`` or
    ``group`` option. Debian's tcpdmatch really calls setgid/setuid for them, dry run or
    not, so the blocks of the client's further addresses are decided by a process that
    may no longer read the files: that is tcpdmatch's side effect, not libwrap's decision."""
    for i, line in enumerate(lines):
        if line.startswith(("option:   user ", "option:   group ")):
            end = lines.index("", i) if "" in lines[i:] else len(lines)
            return lines[:end]
    return lines


PIECES = [
    "sshd",
    "ALL",
    "10.0.0.1",
    "10.0.0.",
    ":",
    ": ",
    " ",
    ",",
    "\t",
    "\n",
    "\r\n",
    "\\\n",
    "\\",
    "#",
    "[",
    "]",
    "[::1]",
    "EXCEPT",
    "allow",
    "deny",
    "spawn x",
    "\0",
    "x" * 700,
    "except",
    "twist y",
    "=",
    "keepalive",
]


@pytest.mark.peer
@pytest.mark.root
@pytest.mark.slow
@settings(
    max_examples=int(os.environ.get("TODOKEDE_DIFF_EXAMPLES", "150")) // 2,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
@given(
    allow=st.lists(st.sampled_from(PIECES), max_size=25).map(lambda p: "".join(p).encode()),
    deny=st.lists(st.sampled_from(PIECES), max_size=12).map(lambda p: "".join(p).encode()),
    queries=st.lists(
        st.sampled_from([("sshd", "10.0.0.1"), ("x", "10.0.0.9"), ("sshd", "::1")]),
        min_size=1,
        max_size=3,
    ),
)
def test_odd_bytes_agree_with_tcpdmatch(
    oracle: Oracle,
    tmp_path_factory: pytest.TempPathFactory,
    allow: bytes,
    deny: bytes,
    queries: list[tuple[str, str]],
) -> None:
    case = tmp_path_factory.mktemp("bytes")
    (case / "hosts.allow").write_bytes(allow)
    (case / "hosts.deny").write_bytes(deny)
    shutil.copy(HOSTS, case / "etc-hosts")
    rules = Rules.load(case, resolver=HostsFileResolver(case / "etc-hosts"))
    for (daemon, client), (expected, _rc) in zip(queries, oracle.run(case, queries), strict=True):
        got = render(predict(rules, daemon, client))
        assert got == expected, f"{daemon} {client}\n{allow!r}\n{deny!r}"


@pytest.mark.parametrize(
    ("lines", "kept"),
    [
        (["client:   address  10.7.7.1", "access:   denied"], 2),
        (["matched:  hosts.deny line 2", "option:   user nobody", "access:   denied", "", "x"], 3),
        (["option:   group nogroup", "access:   granted"], 2),
        (["option:   umask 022", "access:   granted", "", "access:   denied"], 4),
    ],
)
def test_until_credentials_change(lines: list[str], kept: int) -> None:
    assert until_credentials_change(lines) == lines[:kept]


@pytest.mark.peer
@pytest.mark.root
@pytest.mark.slow
@settings(
    max_examples=max(4, int(os.environ.get("TODOKEDE_DIFF_EXAMPLES", "150")) // 12),
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
@given(
    seed=st.integers(0, 2**32 - 1),
    size=st.sampled_from([5, 10, 50, 300, 2000, 6000]),
)
def test_real_site_shapes_agree_with_tcpdmatch(
    oracle: Oracle, tmp_path_factory: pytest.TempPathFactory, seed: int, size: int
) -> None:
    """Rule files as sites write them, up to thousands of rules: the indexed engine
    against libwrap itself."""
    rng = random.Random(seed)
    allow, deny = shapes.make_tables(size, rng)
    queries = shapes.make_queries(24, rng, (allow, deny))
    case = tmp_path_factory.mktemp("shapes")
    (case / "hosts.allow").write_text(allow)
    (case / "hosts.deny").write_text(deny)
    shutil.copy(HOSTS, case / "etc-hosts")
    rules = Rules.load(case, resolver=HostsFileResolver(case / "etc-hosts"))
    for (daemon, client), (expected, rc) in zip(queries, oracle.run(case, queries), strict=True):
        assert rc == 0, (daemon, client, expected)
        got = render(predict(rules, daemon, client))
        assert got == expected, f"seed {seed}, {size} rules: {daemon} {client}"
