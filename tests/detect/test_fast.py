"""The C scanner (todokede/detect/_fast*.c) against its Python reference: the same findings,
counts, line numbers, queue contents and mail aggregates for the same input, whatever the
input."""

# ruff: noqa: E501 - real log lines are long
from __future__ import annotations

import copy
import os
import pickle
import struct
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import todokede.detect as detect
from todokede.detect import DetectConfig, Scanner
from todokede.detect.mailagg import MailAgg, Pair
from todokede.detect.queue import Msg, Queue, new_queue
from todokede.detect.state import State
from todokede.logs import auth, imap
from todokede.logs.syslog import Framer, YearRule

CORPUS = Path(__file__).parent.parent / "logs" / "corpus"
SAMPLES = Path(detect.__file__).parent.parent / "samples" / "logs" / "1997-09"
CONFIG = DetectConfig(local_nets=(), bounce_per_hour=2, bomb_min=2, learn_days=0.0001)


def _have_native() -> bool:
    try:
        from todokede.detect import _fast  # noqa: F401
    except ImportError:
        return False
    return True


def test_the_c_scanner_is_built_where_it_is_required() -> None:
    # scripts/test asks for it: a compiler error must not pass as the slower Python path
    if os.environ.get("TODOKEDE_REQUIRE_NATIVE") == "1":
        assert _have_native(), "todokede.detect._fast was not built"
    assert Scanner().state.native == _have_native()


native = pytest.mark.skipif(not _have_native(), reason="the C scanner was not built")


def run(data: bytes, mode: str, year: int = 2024) -> tuple[object, ...]:
    """Scan ``data`` as one file: 'native' (C), 'python' (the Python fast path) or
    'general' (every line through the parsers)."""
    sc = Scanner(CONFIG, year=year, native=mode == "native")
    sc.state.fast = mode != "general"
    sc._framers["log"] = Framer(YearRule.oldest(year, 1, 1))
    lines = data.split(b"\n")
    # two blocks of whole lines, as a file read in pieces gives them
    cut = len(lines) // 2
    first = b"\n".join(lines[:cut]) + (b"\n" if cut else b"")
    rest = b"\n".join(lines[cut:])
    for block in (first, rest):
        if block:
            sc.feed("log", block)
    granted = {k: list(v) for k, v in sc.state.granted.items()}
    queued = [
        (m.key, m.ts, m.service, m.host, m.addr, m.sender, m.size, m.rcpts, m.raw, m.sent_from)
        for m in sc.state.msgs.messages()
    ]
    logins = sorted(sc.state.logins)
    failed = {
        k: (a.count, a.first, a.last, a.lines, a.last_line, a.names, a.addrs, a.users)
        for k, a in sc.state.auth.items()
    }
    tries = dict(sc.state.tries)
    result = sc.result()
    return (
        queued,
        logins,
        [f.to_dict() for f in result.findings],
        result.lines,
        result.unparsed,
        result.unparsed_examples,
        granted,
        failed,
        tries,
    )


def corpus() -> list[bytes]:
    logs = [CORPUS / "closed.maillog", CORPUS / "open.maillog"]
    logs += sorted(p for p in SAMPLES.rglob("*") if p.is_file() and p.suffix != ".md")
    return [p.read_bytes() for p in logs]


@native
@pytest.mark.parametrize("index", range(len(corpus())))
def test_real_logs_give_the_same_results(index: int) -> None:
    data = corpus()[index]
    assert run(data, "native") == run(data, "python") == run(data, "general")


@native
def test_mixed_and_odd_lines() -> None:
    data = b"\n".join(
        [
            b"Sep  1 10:00:00 gw imapd[1]: connect from a.example (192.0.2.1)",
            b"Sep  1 10:00:01 gw imapd[2]: refused connect from b.example (192.0.2.2)",
            b"Sep  1 10:00:02 gw imapd[3]: connect from a.example (192.0.2.1)\r",
            b"2024-09-01T10:00:03+00:00 gw imapd[4]: connect from a.example (192.0.2.1)",
            b"Sep 01 10:00:04 gw imapd[5]: connect from a.example (192.0.2.1)",
            b"Sep 31 10:00:05 gw imapd[6]: connect from a.example (192.0.2.1)",
            b"Sep  1 24:00:06 gw imapd[7]: connect from a.example (192.0.2.1)",
            b"Sep 1  10:00:07 gw imapd[8]: connect from a.example (192.0.2.1)",
            b"",
            b"\r",
            b"garbage",
            b"Sep  1 10:00:08 mail postfix/smtpd[9]: AB12: client=x.example[192.0.2.9]",
            b"Sep  1 10:00:08 mail postfix/cleanup[9]: AB12: message-id=<1@x>",
            b"Sep  1 10:00:09 mail postfix/qmgr[9]: AB12: from=<a@x.example>, size=123456789012345678901234, nrcpt=2 (queue active)",
            b"Sep  1 10:00:10 mail postfix/smtp[9]: AB12: to=<r@y.example>, orig_to=<o@y.example>, relay=y[192.0.2.8]:25, delay=1, status=sent (ok)",
            b"Sep  1 10:00:10 mail postfix/smtp[9]: AB12: to=<s@y.example>, orig_to=<broken, relay=y, status=deferred (x)",
            b"Sep  1 10:00:11 mail postfix/local[9]: AB12: to=<root@mail.example>, relay=local, delay=1, status=sent (delivered)",
            b"Sep  1 10:00:11 mail postfix/smtp[9]: AB12: to=<r@y.example>, relay=y, status=bounced (again)",
            b"Sep  1 10:00:12 mail postfix/qmgr[9]: AB12: removed",
            b"Sep  1 10:00:13 mail postfix/smtpd[9]: AB12: client=again.example[192.0.2.10]",
            b"Sep  1 10:00:14 mail postfix/smtpd[9]: NOQUEUE: reject: RCPT from u[192.0.2.11]: 554 5.7.1 <v@w.example>: Relay access denied; from=<a@b> to=<v@w.example> proto=ESMTP helo=<u>",
            b"Sep  1 10:00:15 mail postfix/smtpd[9]: CD34: client=no-bracket.example",
            b"Sep  1 10:00:16 mail postfix/qmgr[9]: CD34: from=<a@x>, size=abc, nrcpt=1",
            b"Sep  1 10:00:17 mail postfix/qmgr[9]: CD34: from=<>, size=10",
            b"Sep  1 10:00:18 mail postfix/bounce[9]: CD34: sender non-delivery notification: EF56",
            b"Sep  1 10:00:19 mail postfix/local[9]: CD34: to=<postmaster@mail.example>, relay=local, status=sent (delivered)",
            b"Sep  1 10:00:20 mail postfix/qmgr[9]: \xff\xfe: removed",
            b"Sep  1 10:00:21 mail postfix/smtpd[9]: \xe3\x81\x82: client=\xe3\x81\x82[\xff]",
            b"Sep  1 10:00:22 mail sendmail[9]: x1: from=<a@b>, size=1, class=0, nrcpts=1, relay=c [192.0.2.3]",
            # "removed" is the whole rest, not only its end
            b"Sep  1 10:00:23 mail postfix/smtpd[9]: EF78: client=e.example[192.0.2.12]",
            b"Sep  1 10:00:24 mail postfix/qmgr[9]: EF78: rem: removed",
            b"Sep  1 10:00:24 mail postfix/smtp[9]: EF78: to=<t@far.example>, relay=far, status=sent (ok)",
            b"Sep  1 10:00:25 mail postfix/qmgr[9]: EF78: removed",
            # Debian's rsyslog, RFC 5424 and a PRI in front of either stamp
            b"2024-09-01T10:00:26.123456+09:00 mail postfix/smtpd[9]: GH90: client=g.example[192.0.2.13]",
            b"<22>1 2024-09-01T10:00:27.5Z mail postfix/qmgr 9 - - GH90: from=<s@g.example>, size=5, nrcpt=1",
            b"<22>2024-09-01T10:00:28+09:00 mail postfix/smtp[9]: GH90: to=<r@far.example>, relay=far, status=sent (ok)",
            b"<22>Sep  1 10:00:29 mail postfix/qmgr[9]: GH90: removed",
            b'<22>1 2024-09-01T10:00:30Z mail imapd 9 - [x@1 a="]"] \xef\xbb\xbfconnect from a.example (192.0.2.1)',
            b"Sep  1 10:00:31 mail sendmail[9]: x1: to=<q@far.example>,<r@far.example>, delay=00:00:01, mailer=esmtp, relay=far. [192.0.2.14], stat=Sent (ok)",
            b"Sep  1 10:00:32 mail sendmail[9]: x1: from=<a2@b>, size=2, class=0, nrcpts=1, relay=d [192.0.2.15]",
            # UW's fields are read in the first 2048 bytes of the message only
            b"Sep  1 10:00:33 mail imapd[9]: Login user=taro auth="
            + b"x" * 2100
            + b" host=h [192.0.2.50]",
            b"Sep  1 10:00:34 mail imapd[9]: Login user=hana auth="
            + b"x" * 1900
            + b" host=h [192.0.2.51]",
        ]
    )
    assert run(data, "native") == run(data, "python") == run(data, "general")


# -- fuzzing: lines built from the pieces the fast paths look at, with any bytes between --

STAMPS = [
    b"Sep  1 10:00:00",
    b"Sep  1 10:00:01",
    b"Sep 01 10:00:02",
    b"Feb 30 10:00:00",
    b"Sep  1 23:59:60",
    b"Sep  1 24:00:00",
    b"Sep 1  10:00:00",
    b"Dec 31 23:59:59",
    b"Jan  1 00:00:00",
    b"Sep 39 10:00:00",
    b"Xyz  1 10:00:00",
    b"2024-09-01T10:00:00+00:00",
    b"2024-09-01T10:00:01.123456+09:00",
    b"2024-09-01T10:00:02Z",
    b"2024-09-01T10:00:03",
    b"2024-02-29T23:59:60.5-05:00",
    b"2023-02-29T10:00:00+00:00",
    b"2024-13-01T10:00:00",
    b"0000-01-01T00:00:00",
    b"2024-09-01 10:00:00",
    b"2024-9-01T10:00:00+00:00",
    b"<13>Sep  1 10:00:04",
    b"<13>2024-09-01T10:00:04.5+09:00",
    b"<999999>Sep  1 10:00:04",
    b"<13><14>Sep  1 10:00:04",
]
TAGS = [
    b"postfix/smtpd[1]",
    b"postfix/qmgr[2]",
    b"postfix/local[3]",
    b"postfix/smtp[4]",
    b"postfix/virtual",
    b"imapd[5]",
    b"in.ftpd",
    b"sendmail[6]",
    b"sm-mta[7]",
    b"ipop3d[8]",
    b"dovecot",
    b"imap-login",
    b"named[9]",
    b"CRON[10]",
    b"kernel",
    b"a b",
    b"sshd[11]",
    b"sshd-session[12]",
    b"in.sshd",
]
LOGINS = [
    b"Failed password for root from 203.0.113.5 port 4022 ssh2",
    b"Failed password for invalid user admin from 2001:db8::5 port 22 ssh2",
    b"Failed publickey for git from 192.0.2.1 port 5 ssh2: RSA SHA256:x",
    b"Failed none for invalid user x from 192.0.2.1 port 5 ssh2",
    b"message repeated 3 times: [ Failed password for root from 203.0.113.5 port 4022 ssh2]",
    b"[ID 800047 auth.info] Failed keyboard-interactive for root from 192.0.2.2 port 1 ssh2",
    b"Invalid user oracle from 203.0.113.6 port 41234",
    b"pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.5  user=root",
    b"error: maximum authentication attempts exceeded for root from 203.0.113.5 port 41234 ssh2 [preauth]",
    b"Connection closed by invalid user admin 203.0.113.7 port 41234 [preauth]",
    b"Disconnected from authenticating user root 203.0.113.8 port 41234 [preauth]",
    b"Connection closed by 192.0.2.1 port 22 [preauth]",
    b"User root from 203.0.113.9 not allowed because not listed in AllowUsers",
    b"error: PAM: Authentication failure for root from 203.0.113.10",
    b"Accepted password for taro from 192.0.2.1 port 22 ssh2",
    b"pam_unix(sshd:session): session opened for user taro(uid=1000) by (uid=0)",
    b"Login failed user=taro auth=taro host=dial.example [192.0.2.40]",
    b"Login excessive login failures user=taro auth=taro host=dial.example [192.0.2.41]",
    b"imap-login: Disconnected (auth failed, 3 attempts in 12 secs): user=<taro>, method=PLAIN, rip=192.0.2.42, lip=10.0.0.1",
    b"Aborted login (auth failed, 1 attempts in 2 secs): user=<x>, rip=192.0.2.48",
    b"auth-worker(304): Info: pam(kenji,192.0.2.43,<abc>): unknown user",
    b"auth: passwd-file(taro,192.0.2.44): Password mismatch",
    b"auth: Info: new auth connection",
    b"warning: unknown[192.0.2.45]: SASL LOGIN authentication failed: UGFzc3dvcmQ6",
    b"warning: dial.example[192.0.2.46]: SASL PLAIN authentication failed: , sasl_username=taro",
    b"warning: x[192.0.2.47]: SASL LOGIN authentication failed: Connection lost to authentication server",
    b"Q1: to=<r@far.example>, relay=far[192.0.2.3]:25, status=deferred (SASL authentication failed; server far said: 535)",
    b"Q1: client=c.example[192.0.2.1], warning: unknown[192.0.2.49]: SASL LOGIN authentication failed: x",
    b"S1: AUTH failure (LOGIN): authentication failure (-13) SASL(-13): authentication failure: checkpass failed, user=taro, relay=dial.example.net [192.0.2.77]",
    b"S1: from=<AUTH failure@x>, size=1, relay=d [192.0.2.15]",
]
BODIES = [
    b"Q1: client=c.example[192.0.2.1]",
    b"Q2: client=[192.0.2.2]",
    b"Q1: from=<s@out.example>, size=100, nrcpt=1",
    b"Q2: from=<>, size=5",
    b"Q1: to=<r@far.example>, relay=far[192.0.2.3]:25, status=sent (ok)",
    b"Q2: to=<root@here.example>, orig_to=<postmaster>, relay=local, status=sent (ok)",
    b"Q1: to=<r@far.example>, status=deferred",
    b"Q1: removed",
    b"Q2: removed",
    b"connect from h.example (192.0.2.4)",
    b"connect from 192.0.2.5",
    b"refused connect from h.example (192.0.2.6)",
    b"refused connect from ppp7.isp.example",
    b"refused connect from root@h.example (192.0.2.6)",
    b"refused connect from 192.0.2.7 (192.0.2.7)",
    b"refused connect from 192.0.2.8",
    b"refused connect from 1.2.3.4.5 (x",
    b"refused connect from 2001:db8::1 (2001:db8::1)",
    b"refused connect from fe80::a:B.1",
    b"refused connect from UNKNOWN (192.0.2.9)",
    b"refused connect from paranoid@Paranoid ()",
    b"refused connect from a@ (192.0.2.10)",
    b"refused connect from  (192.0.2.11)",
    b"refused connect from h\xe9.example (192.0.2.12)",
    b"refused connect from h.example\t(192.0.2.13)",
    b"NOQUEUE: reject: RCPT from u[192.0.2.7]: 554 <v@w>: Relay access denied; to=<v@w>",
    b"S1: from=<a@out.example>, size=1523, class=0, nrcpts=2, msgid=<x@y>, proto=SMTP, relay=u@dial.example. [192.0.2.4]",
    b"S1: from=a@out.example, size=12, relay=dial.example",
    b"S1: from=<a@x>, size=, size=7, relay=[192.0.2.5]",
    b"S1: from=<>, size=99999999999999999999999, relay=x [1",
    b"S1: to=<b@far.example>,<c@far.example>, delay=00:00:03, xdelay=00:00:01, mailer=esmtp, relay=mx.far.example. [198.51.100.2], stat=Sent (OK)",
    b"S1: to=root, ctladdr=<root> (0/0), delay=00:00:01, mailer=local, stat=Sent",
    b"S1: to=< d@far.example >,, delay=1, mailer=*file*, stat=Deferred: x",
    b"S1: to=<b@far.example>, delay=1, mailer=esmtp, stat=queued, stat=Sent",
    b"S1: to=<b@far.example>, delay=1, mailer=smtp, relay=x, mailer=y, stat=Host unknown",
    b"S1: S2: return to sender: unknown user",
    b"S1: S2: postmaster notify: x",
    b"S1: lost input channel from x",
    b"ruleset=check_rcpt, arg1=<v@w>, relay=u [192.0.2.8], reject=550 5.7.1 <v@w>... Relaying denied",
    b"S1: ruleset=check_rcpt, arg1=v@w, relay=u, reject=550 nope",
    b"Login user=taro host=pc1.example [172.16.1.1]",
    b"Login user=taro auth=x host=pc1.example [172.16.1.2",
    b"Authenticated user=ab host=  [192.0.2.9]",
    b"Logout user=taro host=pc1.example [172.16.1.1]",
    b"Login failed user=" + b"A" * 70 + b" host=bad.example [192.0.2.66]",
    b"Login user=\x90\x90\x90\x90\xeb host=bad.example [192.0.2.67]",
    b"Command stream end of file, while reading line user=x host=y",
    b"\x01\x02\x03\x04 junk",
    b"imap-login: Login: user=<tester>, method=PLAIN, rip=192.0.2.1, lip=127.0.0.1",
    b"Info: Login: user=<t>, rip=zz, rip=2001:db8::1",
    b"imap-login: Disconnected: Input buffer full (no auth attempts): rip=192.0.2.70",
    # failed logins (todokede/logs/auth.py), and lines of the same programs that are not
    *LOGINS,
]


ISO = [s for s in STAMPS if s[:1].isdigit()] + [b"-", b"2024-09-01T10:00:00.1+09:00x"]
SD = [b"-", b'[x@1 a="b]\\"c"]', b"[a][b]", b"[a] ", b"[unterminated", b"-x", b"", b'[q a="\\']


@st.composite
def lines(draw: st.DrawFn) -> bytes:
    if draw(st.integers(0, 3)) == 0:  # RFC 5424: <PRI>1 TS HOST APP PROCID MSGID SD MSG
        app = draw(st.sampled_from([b"-", *(t.partition(b"[")[0] for t in TAGS)]))
        parts = [
            draw(st.sampled_from([b"<34>1 ", b"<34>2 ", b"<34>1  "])) + draw(st.sampled_from(ISO)),
            b" " + draw(st.sampled_from([b"mail", b"-", b"m\xffx"])),
            b" " + app + b" " + draw(st.sampled_from([b"-", b"42"])) + b" -",
            b" " + draw(st.sampled_from(SD)) + b" " + draw(st.sampled_from([b"", b"\xef\xbb\xbf"])),
            draw(st.sampled_from(BODIES)),
        ]
    else:
        parts = [
            draw(st.sampled_from(STAMPS)),
            b" " + draw(st.sampled_from([b"mail ", b"gw ", b"m\xffx ", b""])),
            draw(st.sampled_from(TAGS)),
            b": ",
            draw(st.sampled_from(BODIES)),
        ]
    # now and then a piece is replaced by arbitrary bytes, or bytes are inserted
    if draw(st.booleans()):
        i = draw(st.integers(0, len(parts) - 1))
        parts[i] = draw(st.binary(max_size=12))
    line = b"".join(parts)
    if draw(st.integers(0, 4)) == 0:
        at = draw(st.integers(0, len(line)))
        line = line[:at] + draw(st.binary(max_size=6)) + line[at:]
    return line + draw(st.sampled_from([b"", b"\r"]))


@native
@settings(
    max_examples=int(os.environ.get("FUZZ", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.lists(lines(), max_size=40))
def test_fuzzed_lines_give_the_same_results(rows: list[bytes]) -> None:
    data = b"\n".join(rows)
    assert run(data, "native") == run(data, "python") == run(data, "general")


# -- the queue itself -------------------------------------------------------------------


def record() -> tuple[list[tuple[object, ...]], object]:
    calls: list[tuple[object, ...]] = []
    return calls, lambda *fields: calls.append(fields)


def queues() -> tuple[
    tuple[Queue, list[tuple[object, ...]]], tuple[object, list[tuple[object, ...]]]
]:
    py_calls, py_done = record()
    c_calls, c_done = record()
    return (Queue(py_done), py_calls), (new_queue(c_done), c_calls)  # type: ignore[arg-type]


OPS = st.lists(
    st.tuples(
        st.sampled_from(["postfix", "removed", "take-put", "retire-take"]),
        st.sampled_from([b"Q1", b"Q2", b"Q3"]),
        st.sampled_from(
            [
                b"client=c.example[192.0.2.1]",
                b"client=d.example[192.0.2.2]",
                b"from=<s@out.example>, size=100, nrcpt=1",
                b"from=<>, size=7",
                b"to=<r@far.example>, relay=far, status=sent (ok)",
                b"to=<r@far.example>, relay=far, status=deferred (later)",
                b"to=<t@here>, relay=local, status=sent (ok)",
                b"to=<x\xffy@far.example>, orig_to=<o>, relay=far, status=bounced",
            ]
        ),
        st.integers(0, 100),
    ),
    max_size=30,
)


def apply(q: object, ops: list[tuple[str, bytes, bytes, int]]) -> None:
    for op, qid, rest, ts in ops:
        if op == "postfix":
            q.postfix(ts, b"mail", b"postfix/smtp", qid, rest[:3], rest, b"raw " + rest)  # type: ignore[attr-defined]
        elif op == "removed":
            q.removed(b"mail", qid)  # type: ignore[attr-defined]
        elif op == "take-put":
            m = q.take((b"mail", qid))  # type: ignore[attr-defined]
            if m is not None:
                m.raw.append(b"more")
                q.put(m)  # type: ignore[attr-defined]
        else:
            m = q.take((b"mail", qid))  # type: ignore[attr-defined]
            if m is not None:
                q.retire(m)  # type: ignore[attr-defined]


@native
@settings(max_examples=int(os.environ.get("FUZZ", "300")), deadline=None)
@given(OPS, OPS)
def test_queue_operations_merge_and_transfer_agree(
    first: list[tuple[str, bytes, bytes, int]], second: list[tuple[str, bytes, bytes, int]]
) -> None:
    (py, py_calls), (c, c_calls) = queues()
    (py2, _), (c2, _) = queues()
    apply(py, first)
    apply(c, first)
    apply(py2, second)
    apply(c2, second)
    assert py.messages() == c.messages()  # type: ignore[attr-defined]
    assert py2.messages() == c2.messages()  # type: ignore[attr-defined]
    # the C queue goes to the parent process packed, the Python one pickled
    c3 = new_queue(lambda *fields: None)
    c3.load(c2.dump())  # type: ignore[attr-defined, union-attr]
    py3 = pickle.loads(pickle.dumps(py2.messages()))
    assert c3.messages() == py3
    py.merge(py2)
    c.merge(c3)  # type: ignore[attr-defined]
    assert py.messages() == c.messages()  # type: ignore[attr-defined]
    assert len(c3) == len(py2) == 0
    py.fold(lambda *fields: py_calls.append(fields), True)
    c.fold(lambda *fields: c_calls.append(fields), True)  # type: ignore[attr-defined]
    assert py_calls == c_calls
    assert len(py) == len(c) == 0  # type: ignore[arg-type]


@native
@settings(max_examples=int(os.environ.get("FUZZ", "300")), deadline=None)
@given(OPS, st.sets(st.sampled_from([b"Q1", b"Q2", b"Q3", b"Q4"])))
def test_folding_all_but_some_tags_agrees(
    ops: list[tuple[str, bytes, bytes, int]], kept: set[bytes]
) -> None:
    (py, py_calls), (c, c_calls) = queues()
    apply(py, ops)
    apply(c, ops)
    for q in (py, c):
        every, no_sender, no_client = (
            sorted(memoryview(t).cast("Q"))
            for t in q.tags()  # type: ignore[attr-defined]
        )
        msgs = q.messages()  # type: ignore[attr-defined]
        tag = q.tag  # type: ignore[attr-defined]
        assert every == sorted(tag(m.key) for m in msgs)
        assert no_sender == sorted(tag(m.key) for m in msgs if m.sender is None)
        assert no_client == sorted(tag(m.key) for m in msgs if not (m.host or m.addr))
        assert len({tag((b"mail", k)) for k in (b"Q1", b"Q2", b"Q3", b"Q4")}) == 4
    assert py_calls == c_calls
    py_calls.clear()
    c_calls.clear()
    py.fold(lambda *f: py_calls.append(f), True, {py.tag((b"mail", k)) for k in kept})
    c.fold(lambda *f: c_calls.append(f), True, {c.tag((b"mail", k)) for k in kept})  # type: ignore[attr-defined]
    assert py_calls == c_calls
    assert py.messages() == c.messages()  # type: ignore[attr-defined]
    assert {m.key[1] for m in py.messages()} <= kept
    assert not {f[0][1] for f in py_calls} & kept  # type: ignore[index]  # a Done call's key


@native
def test_queue_dump_keeps_any_text() -> None:
    _, done = record()
    q = new_queue(done)  # type: ignore[arg-type]
    m = Msg((b"h\x00st", b"\xff"), 5, "postfix/smtpd")
    m.host, m.addr, m.sender, m.size = "\udcff lone surrogate", "", None, 10**30
    m.rcpts = [("r\u3042", "local", "sent", "", -1)]
    m.raw = [b"\x00\xff raw"]
    m.sent_from = True
    q.put(m)
    copy = new_queue(done)  # type: ignore[arg-type]
    copy.load(q.dump())  # type: ignore[union-attr]
    assert copy.messages() == [m]


@native
@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x01",
        b"\x01\x00\x00\x00\x00\x00\x00\x00",
        b"\x01" + b"\x00" * 7 + b"\xff" * 8,
        # a whole record whose fields are not what a record packs
        b"\x01" + b"\x00" * 7 + (b"\x00" * 16) + struct.pack("=qqq", 1, 1, 6) + b"hqjunk",
    ],
)
def test_a_damaged_dump_is_an_error_not_a_crash(data: bytes) -> None:
    q = new_queue(lambda *a: None)
    with pytest.raises(ValueError, match="queue dump"):
        q.load(data)  # type: ignore[union-attr]
    assert len(q) == 0


# -- the fold: MailAgg.add in C (_fast.Fold) against MailAgg.add in Python --------------

TEXTS = st.sampled_from(["", "x@out.example", "y@Far.Example", "\u00fc@\u00dcn\u00ef.example"])
SENDERS = st.sampled_from(
    [
        None,
        "",
        "<>",
        "MAILER-DAEMON",
        "mailer-daemon@here.example",
        "Double-Bounce@here.example",
        "s@out.example",
        "t@OUT.example",
        "u@here.example",
        "dave@sub.here.example",
        "no-at-sign",
        "\u212aelvin@out.example",  # KELVIN SIGN lowers to an ASCII k
        "m\u0130@out.example",  # lowers to two characters
    ]
)
RCPTS = st.tuples(
    st.sampled_from(
        [
            "r@far.example",
            "R@FAR.example",
            "root@here.example",
            "postmaster",
            "q@sub.here.example",
            "\u00e9@d\u00e9.example",
            "x@",
            "nodomain",
        ]
    ),
    st.sampled_from(["local", "smtp", "relay"]),
    st.sampled_from(["sent", "deferred", "bounced"]),
    st.sampled_from(["", "root@here.example", "Postmaster@x"]),
    st.integers(0, 5000),
)


@st.composite
def messages(draw: st.DrawFn) -> Msg:
    key = (b"mail", draw(st.sampled_from([b"Q1", b"Q2", b"Q3", b"Q4"])))
    m = Msg(key, draw(st.integers(0, 5000)), draw(st.sampled_from(["postfix/smtpd", "sendmail"])))
    m.host = draw(st.sampled_from(["", "c.example", "\u00e7.example"]))
    m.addr = draw(st.sampled_from(["", "192.0.2.1", "10.0.0.1", "198.51.100.7"]))
    m.sender = draw(SENDERS)
    m.size = draw(st.sampled_from([0, 7, 10**30]))
    m.rcpts = draw(st.lists(RCPTS, max_size=5))
    m.raw = draw(st.lists(st.sampled_from([b"line one", b"line \xff two", b""]), max_size=3))
    return m


def plain(agg: MailAgg) -> tuple[object, ...]:
    """Everything an aggregate holds, with dict and set orders where they matter."""
    pairs = [
        (k, v if isinstance(v, int) else (v.service, v.times, v.raw, v.last_raw))
        for k, v in agg.pairs.items()
    ]
    relays = [
        (
            k,
            r.service,
            r.names,
            r.addrs,
            r.senders,
            list(r.by_sender.items()),
            list(r.by_status.items()),
        )
        for k, r in agg.relays.items()
    ]
    bounces = [(k, list(h.items())) for k, h in agg.bounces.items()]
    # a deep copy: a later merge changes the sets and lists it would otherwise share
    return copy.deepcopy((agg.local_domains, relays, bounces, list(agg.bounce_raw.items()), pairs))


def folded(msgs: list[Msg], native: bool, own: tuple[str, ...] | None, notice: bool) -> State:
    state = State(native=native, nets=("10.0.0.0/8",), own_domains=own)
    if notice:
        state.notices.add((b"mail", b"Q2"))
    for m in msgs:
        state.msgs.retire(m)
    return state


@native
@settings(max_examples=int(os.environ.get("FUZZ", "300")), deadline=None)
@given(
    st.lists(messages(), max_size=12),
    st.lists(messages(), max_size=12),
    st.sampled_from([None, ("here.example",)]),
    st.booleans(),
)
def test_the_c_fold_agrees_with_mailagg_add(
    first: list[Msg], second: list[Msg], own: tuple[str, ...] | None, notice: bool
) -> None:
    py, c = folded(first, False, own, notice), folded(first, True, own, notice)
    assert isinstance(c.mail.pairs, _fast_pairs_type())
    assert all(type(r.by_status).__name__ == "Tally" for r in c.mail.relays.values())
    assert plain(py.mail) == plain(c.mail)
    # the next byte range's aggregates, as the parent process gets them (pickled), merged
    py2, c2 = folded(second, False, own, notice), folded(second, True, own, notice)
    c2_mail = pickle.loads(pickle.dumps(c2.mail))
    assert plain(c2_mail) == plain(py2.mail)
    kept, before = c.mail.copy(), plain(c.mail)
    py.mail.merge(py2.mail)
    c.mail.merge(c2_mail)
    assert plain(py.mail) == plain(c.mail)
    assert [(k, p.times) for k, p in py.mail.multi_pairs()] == [
        (k, p.times) for k, p in c.mail.multi_pairs()
    ]
    assert plain(kept) == before  # a copy of the C table is a copy, not a view


def _fast_pairs_type() -> type:
    from todokede.detect import _fast

    return _fast.Pairs


@native
def test_the_c_fold_is_the_one_the_queue_runs() -> None:
    # a Fold called from Python is MailAgg.add; the queue runs it in C: both give this
    state = State(native=True, nets=())
    m = Msg((b"mail", b"Q1"), 100, "postfix/smtpd")
    m.host, m.addr, m.sender = "c.example", "192.0.2.1", "s@out.example"
    m.rcpts = [("r@far.example", "smtp", "sent", "", 101)] * 2
    m.raw = [b"raw"]
    fold = state.folder(state.mail)
    assert type(fold).__name__ == "Fold"
    state.msgs.retire(m)
    fold(m.key, m.ts, m.service, m.host, m.addr, m.sender, m.size, m.rcpts, m.raw)
    pair = state.mail.pairs.get("postfix/smtpd\0s@out.example\0r@far.example")
    assert isinstance(pair, Pair) and pair.times == [100, 100]
    relay = state.mail.relays["192.0.2.1"]
    assert dict(relay.by_status.items()) == {("far.example", "sent"): 4}
    assert relay.by_sender["out.example"][:3] == [2, 100, 101]


@native
def test_damaged_pickles_of_the_tables_are_errors_not_crashes() -> None:
    from todokede.detect import _fast

    with pytest.raises(ValueError, match="damaged pairs"):
        _fast.Pairs(Pair, b"\x01" * 20, [])
    with pytest.raises(ValueError, match="damaged pairs"):
        _fast.Pairs(Pair, b"\x00" * 8 + b"\x01\x00\x00\x00\x01k", [])
    with pytest.raises(ValueError, match="damaged tally"):
        _fast.Tally(b"\x01" * 8 + b"\x05\x00\x00\x00\x00\x00\x00\x00abc")


# -- found by fuzzing the C scanner under AddressSanitizer (regressions) ------------------


@native
def test_a_size_too_long_for_int_stops_no_path() -> None:
    # int() refuses more than 4300 digits: the queue left such a from= line to the general
    # parser, which reads the size as 0, and so does sendmail's
    digits = b"9" * 5000
    data = b"\n".join(
        [
            b"Sep  1 10:00:00 mail postfix/smtpd[1]: Q1: client=c.example[192.0.2.1]",
            b"Sep  1 10:00:01 mail postfix/qmgr[2]: Q1: from=<>, size=" + digits + b", nrcpt=1",
            b"Sep  1 10:00:02 mail postfix/local[3]: Q1: to=<root@mail.example>, relay=local, status=sent (ok)",
            b"Sep  1 10:00:03 mail postfix/qmgr[2]: Q1: removed",
            b"Sep  1 10:00:04 mail postfix/qmgr[2]: Q2: from=<a@b>, size="
            + b"1" * 700
            + b", nrcpt=1",
            b"Sep  1 10:00:05 mail sendmail[6]: x1: from=<a@b>, size="
            + digits
            + b", class=0, nrcpts=1, relay=c [192.0.2.3]",
        ]
    )
    assert run(data, "native") == run(data, "python") == run(data, "general")


@native
@pytest.mark.parametrize(
    "tag",
    [b"x[", b"[5]", b"x[5", b"\x00[", b"postfix/smtp[", b"postfix/smtp x", b"postfix/smtp[4"],
)
def test_the_fast_paths_read_a_tag_as_the_framer_does(tag: bytes) -> None:
    # "prog[pid]" only when the tag ends with "]", and a tag with a space is no tag
    data = b"\n".join(
        [
            b"Sep  1 10:00:00 mail " + tag + b": connect from h.example (192.0.2.4)",
            b"Sep  1 10:00:00 mail postfix/smtpd[1]: Q1: client=c.example[192.0.2.1]",
            b"Sep  1 10:00:00 mail " + tag + b": Q1: from=<s@out.example>, size=1, nrcpt=1",
            b"Sep  1 10:00:01 mail "
            + tag
            + b": Q1: to=<r@far.example>, relay=far, status=sent (ok)",
            b"Sep  1 10:00:01 mail postfix/qmgr[4]: Q1: removed",
        ]
    )
    assert run(data, "native") == run(data, "python") == run(data, "general")


@native
def test_a_host_ending_in_a_colon_is_a_tag_to_every_path() -> None:
    data = b"Sep  1 10:00:00 imapd: x: connect from h.example (192.0.2.4)\n" * 3
    assert run(data, "native") == run(data, "python") == run(data, "general")


@native
def test_a_connection_the_bulk_pass_leaves_keeps_its_place() -> None:
    # "Sep 01" is no stamp to the bulk regex: counted after the others, it was the last
    odd = b"Sep 01 10:00:02 mail imapd[5]: connect from h.example (192.0.2.4)"
    usual = b"Sep  1 10:00:00 mail imapd[5]: connect from h.example (192.0.2.4)"
    data = b"\n".join([odd, usual, usual, usual])
    assert run(data, "native") == run(data, "python") == run(data, "general")


@native
def test_damaged_tables_with_huge_counts_are_errors_not_undefined() -> None:
    from todokede.detect import _fast

    entry = struct.pack("=qII", 2**63 - 1, 1, 2) + b"xok"
    with pytest.raises(OverflowError):
        _fast.Tally(entry + entry)
    big = _fast.Tally(entry)
    with pytest.raises(OverflowError):
        big.merge(big)
    small = _fast.Tally(struct.pack("=qII", 5, 1, 2) + b"yok")
    small.merge(big)
    with pytest.raises(OverflowError):
        small.tally({}, lambda d: False)
    # neither half of a key is UTF-8: an error, not one made with another pending
    bad = _fast.Tally(struct.pack("=qII", 1, 1, 1) + b"\xff\xff")
    with pytest.raises(UnicodeDecodeError):
        bad.items()
    with pytest.raises(ValueError, match="damaged pairs"):
        _fast.Pairs(Pair, struct.pack("=qIB", 1, 1, 1) + b"k", [5])  # type: ignore[list-item]  # not a Pair, on purpose


@native
@pytest.mark.parametrize(
    "head",
    [
        struct.pack("=qqqqqq", 1, 0, 0, 2**63 - 1, 1, 0),  # lengths whose sum overflows
        struct.pack("=qqqqqq", 1, 0, 0, 1, 2**63 - 1, 0),
        struct.pack("=q", -1) + b"junk",
    ],
)
def test_a_dump_with_overflowing_lengths_is_an_error(head: bytes) -> None:
    q = new_queue(lambda *a: None)
    with pytest.raises(ValueError, match="queue dump"):
        q.load(head)  # type: ignore[union-attr]


@native
def test_a_dump_with_bytes_after_its_messages_is_an_error() -> None:
    q = new_queue(lambda *a: None)
    q.put(Msg((b"mail", b"Q1"), 1, "postfix/smtpd"))
    with pytest.raises(ValueError, match="queue dump"):
        new_queue(lambda *a: None).load(q.dump() + b"x")  # type: ignore[union-attr]


@native
def test_a_dump_with_text_that_is_not_utf8_is_an_error() -> None:
    q = new_queue(lambda *a: None)
    m = Msg((b"mail", b"Q1"), 1, "postfix/smtpd")
    m.rcpts = [("AAAA", "BBBB", "sent", "", 1)]
    q.put(m)
    bad = new_queue(lambda *a: None)
    bad.load(q.dump().replace(b"AAAA", b"\xff" * 4).replace(b"BBBB", b"\xff" * 4))  # type: ignore[union-attr]
    with pytest.raises(UnicodeDecodeError):
        bad.messages()


def _changes_the_queue_when_called(q: object, calls: list[tuple[object, ...]]) -> object:
    def done(*fields: object) -> None:
        calls.append(fields)
        if len(calls) == 1:
            q.clear()  # type: ignore[attr-defined]
            for i in range(20):
                q.put(Msg((b"mail", b"N%d" % i), 0, "x" * 100))  # type: ignore[attr-defined]

    return done


@native
@pytest.mark.parametrize("consume", [False, True])
def test_done_may_change_the_queue_while_it_folds(consume: bool) -> None:
    # the C fold went on with the records that done() had freed
    results = []
    for q in (Queue(lambda *a: None), new_queue(lambda *a: None)):
        for i in range(50):
            m = Msg((b"mail", b"Q%d" % i), i, "postfix/smtpd")
            m.sender, m.rcpts = f"s{i}@x", [(f"r{i}@y", "smtp", "sent", "", i)]
            q.put(m)
        calls: list[tuple[object, ...]] = []
        q.fold(_changes_the_queue_when_called(q, calls), consume)  # type: ignore[arg-type]
        results.append((calls, [m.key for m in q.messages()]))
    assert results[0] == results[1]


# -- the same lines in every framing ------------------------------------------------------


def reframe(data: bytes, framing: str, year: int = 1997) -> bytes:
    """BSD-stamped lines written as rsyslog (RFC 3339, with a fraction and an offset) or
    RFC 5424 would write them; lines the framer does not read are left as they are."""
    framer = Framer(YearRule.oldest(year, 1, 1))
    out = []
    for n, line in enumerate(data.split(b"\n")):
        f = framer.frame(line)
        if f is None or framing == "bsd":
            out.append(line)
            continue
        ts, host, prog, pid, msg = f
        stamp = datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S").encode()
        if framing == "rfc3339":
            tag = prog + (b"[" + pid + b"]" if pid else b"")
            out.append(stamp + b".%06d+09:00 " % n + host + b" " + tag + b": " + msg)
        else:
            fields = [host or b"-", prog or b"-", pid or b"-", b"-", b"-"]
            out.append(b"<22>1 " + stamp + b"Z " + b" ".join(fields) + b" " + msg)
    return b"\n".join(out)


def but_evidence(result: tuple[object, ...]) -> list[dict[str, object]]:
    findings = result[2]
    assert isinstance(findings, list)
    return [{k: v for k, v in f.items() if k != "evidence"} for f in findings]


FRAMED = [
    (SAMPLES / "site-imap" / "messages", 1997),
    (SAMPLES / "site-relay" / "maillog", 1997),
    (SAMPLES / "site-bomb" / "maillog", 1997),
    (CORPUS / "closed.maillog", 2024),
    (CORPUS / "open.maillog", 2024),
]


@native
@pytest.mark.parametrize(
    ("log", "year"), FRAMED, ids=[p.parent.name + "/" + p.name for p, _ in FRAMED]
)
@pytest.mark.parametrize("framing", ["rfc3339", "rfc5424"])
def test_the_findings_are_the_same_whatever_the_framing(log: Path, year: int, framing: str) -> None:
    bsd = log.read_bytes()
    other = reframe(bsd, framing, year)
    assert other != bsd
    want = run(bsd, "general", year=year)
    got = run(other, "native", year=year)
    assert got == run(other, "general", year=year)
    assert but_evidence(got) == but_evidence(want)
    assert got[3:5] == want[3:5]  # lines, unparsed


@native
@pytest.mark.parametrize("prog", sorted(imap.PROGRAMS | {b"imapd2", b"in.ftpd", b"xdovecot"}))
def test_the_c_loop_knows_every_imap_program(prog: bytes) -> None:
    # the C loop keeps its own list of imap.PROGRAMS: a name added there and not in C
    # would have its logins skipped
    data = b"\n".join(
        [
            b"Sep  1 10:00:00 mail " + prog + b"[1]: Login user=taro host=pc1.example [172.16.1.1]",
            b"Sep  1 10:00:01 mail " + prog + b"[1]: Login: user=<t>, rip=192.0.2.1, lip=10.0.0.1",
            b"Sep  1 10:00:02 mail " + prog + b": imap-login: Login: user=<u>, rip=192.0.2.2",
        ]
    )
    got = run(data, "native")
    assert got == run(data, "general")
    assert got[1] != [] or prog not in imap.PROGRAMS  # logins


@native
def test_the_c_loop_keeps_the_lists_of_the_login_parsers() -> None:
    # the C loop skips the lines of sshd that auth.sshd does not read by their beginnings,
    # and knows the login programs by name: its copies must be the Python lists
    from todokede.detect import _fast

    assert set(_fast.SSHD_PROGRAMS) == auth.SSHD
    assert _fast.SSHD_WRAPPED == auth.SSHD_WRAPPED
    assert _fast.SSHD_STARTS == auth.SSHD_STARTS
    assert set(_fast.IMAP_PROGRAMS) == imap.PROGRAMS


@native
@pytest.mark.parametrize("prog", sorted(auth.SSHD | {b"sshd2", b"ssh"}))
def test_the_c_loop_hands_over_every_sshd_failure(prog: bytes) -> None:
    data = b"\n".join(
        b"Sep  1 10:00:%02d gw %s[1]: %s" % (n, prog, body) for n, body in enumerate(LOGINS)
    )
    got = run(data, "native")
    assert got == run(data, "general")
    assert bool(got[7]) == (prog in auth.SSHD)  # failed logins


# fail2ban's annotated sample logs of the login programs (Debian package fail2ban)
F2B_SAMPLES = Path("/usr/lib/python3/dist-packages/fail2ban/tests/files/logs")


@native
@pytest.mark.parametrize(
    "name",
    ["sshd", "dovecot", "uwimap-auth", "postfix", "sendmail-auth"],
)
def test_fail2ban_sample_logs_give_the_same_results(name: str) -> None:
    if not (F2B_SAMPLES / name).exists():
        pytest.skip(f"fail2ban's sample logs are not installed ({F2B_SAMPLES})")
    data = b"\n".join(
        line for line in (F2B_SAMPLES / name).read_bytes().splitlines() if not line.startswith(b"#")
    )
    got = run(data, "native")
    assert got == run(data, "python") == run(data, "general")
    assert got[7]  # failed logins read


@st.composite
def sshd_messages(draw: st.DrawFn) -> bytes:
    """Messages that begin like those auth.sshd reads, or nearly."""
    head = draw(st.sampled_from(auth.SSHD_WRAPPED + auth.SSHD_STARTS))
    cut = draw(st.integers(0, len(head)))
    if draw(st.booleans()):
        head = head[:cut] + draw(st.binary(max_size=2)) + head[cut + 1 :]
    tail = draw(
        st.sampled_from(
            [b"", b"root from 203.0.113.5 port 22 ssh2", b"x 192.0.2.1 port 2 [preauth]", *LOGINS]
        )
    )
    return head + tail


@native
@settings(max_examples=int(os.environ.get("FUZZ", "300")), deadline=None)
@given(st.lists(st.tuples(st.sampled_from(sorted(auth.SSHD)), sshd_messages()), max_size=20))
def test_fuzzed_sshd_lines_give_the_same_results(rows: list[tuple[bytes, bytes]]) -> None:
    data = b"\n".join(b"Sep  1 10:00:00 gw %s[1]: %s" % row for row in rows)
    assert run(data, "native") == run(data, "python") == run(data, "general")
