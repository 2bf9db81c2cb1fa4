# ruff: noqa: E501 - real log lines are long
from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import pytest

import todokede.detect as detect
from tests.conftest import need
from todokede.detect import DetectConfig, Scanner, scan_paths, state
from todokede.detect.findings import iso
from todokede.errors import ConfigError
from todokede.logs import f2b
from todokede.logs.window import Window

CORPUS = Path(__file__).parent.parent / "logs" / "corpus"
SAMPLES = Path(detect.__file__).parent.parent / "samples" / "logs" / "1997-09"
SANDBOX = DetectConfig(local_nets=(), local_domains=("sandbox.example",))


def strip(f: detect.Finding) -> dict[str, object]:
    return {k: v for k, v in f.to_dict().items() if k != "evidence"}


def kinds(findings: list[detect.Finding]) -> list[tuple[str, str, int]]:
    return [(f.kind, f.outcome, f.count) for f in findings]


def test_real_postfix_closed_relay() -> None:
    result = scan_paths([CORPUS / "closed.maillog"], year=2026, config=SANDBOX)
    assert result.unparsed == 0
    refused = [f for f in result.findings if f.kind == "relay-abuse"]
    assert len(refused) == 1 and refused[0].outcome == "refused"
    assert refused[0].count == sum(
        1
        for line in (CORPUS / "closed.maillog").read_text().splitlines()
        if "Relay access denied" in line
    )
    assert "nmap.scanme.org" in refused[0].targets
    assert not [f for f in result.findings if f.kind != "relay-abuse"]


def test_real_postfix_open_relay() -> None:
    result = scan_paths([CORPUS / "open.maillog"], year=2026, config=SANDBOX)
    relayed = [f for f in result.findings if f.kind == "relay-abuse" and f.outcome == "relayed"]
    assert len(relayed) == 1 and relayed[0].service == "postfix/smtpd"
    assert relayed[0].sources == ["localhost", "127.0.0.1"]
    # messages whose sender and some recipient are both outside sandbox.example
    assert 40 <= relayed[0].count <= relayed[0].details["recipients"]
    storm = [f for f in result.findings if f.kind == "bounce-storm"]
    assert len(storm) == 1 and storm[0].targets == ["root"]
    assert storm[0].count >= 20 and storm[0].details["bytes"] > 0


def test_loopback_is_local_by_default() -> None:
    result = scan_paths([CORPUS / "open.maillog"], year=2026)
    assert not [f for f in result.findings if f.kind == "relay-abuse"]


def test_local_domains_are_inferred_from_local_deliveries() -> None:
    inferred = scan_paths([CORPUS / "open.maillog"], year=2026, config=DetectConfig(local_nets=()))
    assert kinds(inferred.findings) == kinds(
        scan_paths([CORPUS / "open.maillog"], year=2026, config=SANDBOX).findings
    )


def test_fast_path_agrees_with_the_parsers(tmp_path: Path) -> None:
    for name in ("closed.maillog", "open.maillog"):
        a, b = Scanner(SANDBOX, year=2026), Scanner(SANDBOX, year=2026)
        b.state.fast = False
        data = (CORPUS / name).read_bytes()
        a.feed(CORPUS / name, data)
        b.feed(CORPUS / name, data)
        assert [f.to_dict() for f in a.findings()] == [f.to_dict() for f in b.findings()]


def test_parallel_ranges_agree_with_one_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = tmp_path / "maillog"
    first = (CORPUS / "open.maillog").read_bytes() + b"garbage line\n"
    rest = (CORPUS / "closed.maillog").read_bytes() + (
        SAMPLES / "site-relay" / "maillog"
    ).read_bytes()
    big.write_bytes(first + rest)
    monkeypatch.setattr(detect, "PARALLEL_MIN", 0)
    one = scan_paths([big], year=2026, config=DetectConfig(local_nets=(), jobs=1))
    for jobs in (2, 3, 7):
        many = scan_paths([big], year=2026, config=DetectConfig(local_nets=(), jobs=jobs))
        # the same findings; evidence may be other lines of the same incident
        assert [strip(f) for f in one.findings] == [strip(f) for f in many.findings]
        text = big.read_text(errors="replace")
        assert all(line in text for f in many.findings for line in f.evidence)
        assert (one.lines, one.unparsed) == (many.lines, many.unparsed)
        assert one.unparsed_examples == many.unparsed_examples
    assert one.lines == (first + rest).count(b"\n") and one.unparsed == 1
    assert one.unparsed_examples[0][1] == first.count(b"\n")
    assert {f.kind for f in one.findings} == {"relay-abuse", "bounce-storm"}


def sendmail_log(seed: int, messages: int, start: int = 0) -> bytes:
    """A sendmail 8.8 log whose messages cross any cut into byte ranges: alias expansion
    (more to= lines than nrcpts), deferred recipients sent much later, queue ids used again
    (once their message has all its lines: a late line of a message whose id was taken
    again would belong to the new one in one pass, but to the old one when a cut falls
    between them), a to= line without a message, notices and their bounces, a bomb."""
    rnd = random.Random(seed)
    out: list[tuple[int, str]] = []
    t = 1_000_000 + start

    def line(at: int, qid: str, text: str) -> None:
        out.append((at, f"mail sendmail[{100 + at % 900}]: {qid}: {text}"))

    done: list[str] = []  # queue ids of messages that have all their lines
    for n in range(messages):
        t += 7
        qid = f"AAA{n:05d}"
        if done and rnd.random() < 0.2:
            qid = done.pop(rnd.randrange(len(done)))  # used again
        outside = rnd.random() < 0.5
        client = (
            "relay=mx.far.example [192.0.2.9]" if outside else "relay=pc1.here.example [10.0.0.1]"
        )
        sender = "<spam@far.example>" if outside else f"<u{n % 5}@here.example>"
        shape = rnd.choice(["plain", "alias", "deferred", "late", "bomb", "notice"])
        if shape == "bomb":
            sender, client = "<angry@far.example>", "relay=mx.far.example [192.0.2.9]"
        line(t, qid, f"from={sender}, size={100 + n}, class=0, nrcpts=1, proto=SMTP, {client}")
        if shape == "alias":
            for user in ("taro", "hanako", "root"):
                line(
                    t + 1, qid, f"to={user}, ctladdr=staff, delay=00:00:01, mailer=local, stat=Sent"
                )
        elif shape in ("deferred", "late"):
            rcpt = f"<r{n % 3}@dest{n % 4}.example>"
            line(
                t + 1,
                qid,
                f"to={rcpt}, delay=00:00:01, mailer=esmtp, relay=mx.dest.example [192.0.2.20], stat=Deferred: Connection timed out",
            )
            # sent (or, for "late", tried again) far later: past any cut
            later = t + 1 + rnd.randint(200, 4000) * 7
            stat = "Sent (ok)" if shape == "deferred" else "Deferred: again"
            line(
                later,
                qid,
                f"to={rcpt}, delay=01:00:00, mailer=esmtp, relay=mx.dest.example [192.0.2.20], stat={stat}",
            )
        elif shape == "notice":
            bounce = f"BBB{n:05d}"
            line(
                t + 1,
                qid,
                "to=<nobody@here.example>, delay=00:00:01, mailer=local, stat=User unknown",
            )
            line(t + 2, qid, f"{bounce}: return to sender: User unknown")
            line(
                t + 3,
                bounce,
                "from=<>, size=900, class=0, nrcpts=1, proto=SMTP, relay=localhost [127.0.0.1]",
            )
            line(t + 3, bounce, "to=root, delay=00:00:00, mailer=local, stat=Sent")
        else:
            rcpt = "<kenji@here.example>" if shape == "bomb" else f"<x{n % 7}@far{n % 3}.example>"
            mailer = "local" if shape == "bomb" else "esmtp"
            line(t + 1, qid, f"to={rcpt}, delay=00:00:01, mailer={mailer}, stat=Sent")
        if shape not in ("deferred", "late"):
            done.append(qid)
    # lines after the end: a retry of a queue id no message holds any more
    line(t + 10, "ZZZ00001", "to=<late@far.example>, delay=9:00:00, mailer=esmtp, stat=Sent")
    out.sort(key=lambda x: x[0])
    return "".join(f"{_jan_stamp(at)} {text}\n" for at, text in out).encode()


def _jan_stamp(at: int) -> str:
    return iso(at).replace("1970-01-", "Jan ").replace("T", " ")


SENDMAIL = DetectConfig(local_nets=("10.0.0.0/8",), bomb_min=3, bounce_per_hour=2)


def _scan_files(
    paths: list[Path], jobs: int, native: bool, final: bool = True
) -> list[dict[str, object]]:
    sc = Scanner(SENDMAIL.with_overrides(jobs=jobs), year=1970, native=native)
    for n, p in enumerate(paths):
        sc.scan(p, final=final and n == len(paths) - 1)
    return [f.to_dict() for f in sc.result().findings]


def _but_evidence(findings: list[dict[str, object]]) -> list[dict[str, object]]:
    # a mail bomb's sources are the clients named in its evidence lines
    return [
        {
            k: v
            for k, v in f.items()
            if k != "evidence" and (k, f["kind"]) != ("sources", "mail-bomb")
        }
        for f in findings
    ]


@pytest.mark.parametrize(("seed", "fold_last"), [(0, 0), (1, 0), (2, 0), (0, 1 << 30)])
def test_messages_no_later_range_changes_are_folded_early_as_the_end_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int, fold_last: int
) -> None:
    # the first byte range of the last file folds the messages no later range changes
    # before the others are merged, and the last range those no earlier range continues
    # (fold_last 0: whenever it has any; 1 << 30: never); the findings are those of
    # folding them all at the end (final=False)
    monkeypatch.setattr(detect, "PARALLEL_MIN", 0)
    monkeypatch.setattr(detect, "FOLD_LAST", fold_last)
    log = tmp_path / "maillog"
    log.write_bytes(sendmail_log(seed, 400))
    one = _scan_files([log], 1, True)
    assert {f["kind"] for f in one} >= {"relay-abuse", "mail-bomb", "bounce-storm"}
    assert one == _scan_files([log], 1, False)
    for jobs in (2, 3, 7):
        many = _scan_files([log], jobs, True)
        assert many == _scan_files([log], jobs, False)  # the C scanner and Python, evidence and all
        assert _but_evidence(many) == _but_evidence(_scan_files([log], jobs, True, final=False))


@pytest.mark.parametrize("seed", range(3))
def test_sendmail_messages_continued_in_the_next_file_are_not_folded_early(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    # deferred messages sent after the log was rotated: the first file's ranges must not
    # fold them before the second file is read
    monkeypatch.setattr(detect, "PARALLEL_MIN", 0)
    whole = sendmail_log(seed, 400).splitlines(keepends=True)
    older, newer = tmp_path / "maillog.1", tmp_path / "maillog"
    older.write_bytes(b"".join(whole[: len(whole) // 2]))
    newer.write_bytes(b"".join(whole[len(whole) // 2 :]))
    one = _but_evidence(_scan_files([older, newer], 1, True))
    assert any(f["details"].get("delivery", {}).get("sent") for f in one)  # type: ignore[attr-defined]
    for jobs in (2, 3):
        many = _scan_files([older, newer], jobs, True)
        assert many == _scan_files([older, newer], jobs, False)
        assert _but_evidence(many) == _but_evidence(
            _scan_files([older, newer], jobs, True, final=False)
        )


def test_rotated_set_reads_as_one_log(tmp_path: Path) -> None:
    lines = (CORPUS / "open.maillog").read_bytes().splitlines(keepends=True)
    third = len(lines) // 3
    (tmp_path / "maillog.2.gz").write_bytes(gzip.compress(b"".join(lines[:third])))
    (tmp_path / "maillog.1").write_bytes(b"".join(lines[third : 2 * third]))
    (tmp_path / "maillog").write_bytes(b"".join(lines[2 * third :]))
    whole = scan_paths([CORPUS / "open.maillog"], year=2026, config=SANDBOX)
    parts = scan_paths(
        [tmp_path / "maillog", tmp_path / "maillog.1", tmp_path / "maillog.2.gz"],
        year=2026,
        config=SANDBOX,
    )
    assert kinds(parts.findings) == kinds(whole.findings)


TCPD = """\
Mar  1 09:00:00 gw imapd[1]: connect from pc1.lab.example (10.0.0.1)
Mar  2 09:00:00 gw imapd[2]: connect from partner.example (198.51.100.20)
Mar  9 09:00:00 gw imapd[3]: connect from pc1.lab.example (10.0.0.1)
Mar 10 03:00:00 gw imapd[4]: connect from new.example (203.0.113.50)
Mar 10 03:00:05 gw imapd[5]: connect from new.example (203.0.113.50)
Mar 10 04:00:00 gw imapd[6]: connect from pc9.lab.example (10.0.0.9)
Mar 11 09:00:00 gw imapd[7]: connect from partner.example (198.51.100.20)
"""


def test_hosts_never_seen_before(tmp_path: Path) -> None:
    log = tmp_path / "messages"
    log.write_text(TCPD)
    result = scan_paths([log], year=2024)
    assert [(f.sources, f.count, f.outcome) for f in result.findings] == [
        (["new.example", "203.0.113.50"], 2, "granted")
    ]
    assert result.findings[0].details["new_host"] is True
    assert not scan_paths([log], year=2024, config=DetectConfig(new_hosts=False)).findings
    assert not scan_paths([log], year=2024, config=DetectConfig(learn_days=30)).findings


def test_exploit_attempts(tmp_path: Path) -> None:
    log = tmp_path / "messages"
    log.write_bytes(
        b"Sep 20 01:00:00 mail imapd[9]: Login failure user="
        + b"\x90" * 40
        + b"\xeb\x1f^\x89v"
        + b" host=evil.example [192.0.2.66]\n"
        + b"Sep 20 01:00:09 mail imapd[9]: Login failed user="
        + b"A" * 80
        + b" auth=x host=evil.example [192.0.2.66]\n"
        + b"Sep 20 02:00:00 mail imapd[9]: Login user=taro host=pc1 [10.0.0.1]\n"
    )
    result = scan_paths([log], year=1997)
    assert [(f.kind, f.service, f.count, f.sources) for f in result.findings] == [
        ("exploit-attempt", "imapd", 2, ["evil.example", "192.0.2.66"])
    ]
    assert len(result.findings[0].evidence) == 2
    json.dumps(result.findings[0].to_dict())


@pytest.mark.parametrize(
    ("failregex", "lines", "finding", "users", "unparsed"),
    [
        # syslog lines; fail2ban cuts the date out and leaves the space after it: the \s*
        (
            r"^\s*\S+ app\[\d+\]: auth failure for <F-USER>\S+</F-USER> from <HOST>$",
            [
                "2024-03-01T10:00:00+09:00 h app[1]: auth failure for bob from 192.0.2.9",
                "2024-03-01T10:00:03+09:00 h app[1]: auth failure for eve from 192.0.2.9",
                "2024-03-01T10:00:04+09:00 h app[1]: auth ok for bob from 192.0.2.10",
            ],
            ("app", ["192.0.2.9"], 2, "2024-03-01T10:00:00", "2024-03-01T10:00:03"),
            ["bob", "eve"],
            0,
        ),
        # exim's own log: no syslog framing, the filter's date detection finds the time;
        # the line no filter matches is not syslog either: unparsed, as without filters
        (
            r"^ \S+ authenticator failed for \S+ \[<ADDR>\]:",
            [
                "2013-06-02 09:05:48 login authenticator failed for (x) [203.0.113.7]: 535",
                "2013-06-02 09:05:49 H=(x) [203.0.113.7] rejected EHLO",
                "2013-06-02 10:00:00 plain authenticator failed for (y) [203.0.113.7]: 535",
            ],
            ("app", ["203.0.113.7"], 2, "2013-06-02T09:05:48", "2013-06-02T10:00:00"),
            None,
            1,
        ),
    ],
)
def test_fail2ban_filter_findings(
    tmp_path: Path,
    failregex: str,
    lines: list[str],
    finding: tuple[object, ...],
    users: list[str] | None,
    unparsed: int,
) -> None:
    (tmp_path / "app.conf").write_text(f"[Definition]\nfailregex = {failregex}\n")
    log = tmp_path / "log"
    log.write_text("\n".join(lines) + "\n")
    result = scan_paths([log], config=DetectConfig(filters=(tmp_path / "app.conf",)))
    assert [
        (f.service, f.sources, f.count, iso(f.first_seen), iso(f.last_seen))
        for f in result.findings
    ] == [finding]
    f = result.findings[0]
    assert (f.kind, f.outcome, f.details.get("users")) == ("access-probe", "failed", users)
    assert (result.lines, result.unparsed) == (len(lines), unparsed)


def test_bounce_storm_per_hour_threshold(tmp_path: Path) -> None:
    lines = []
    for i in range(30):
        minute = i * 2
        lines.append(
            f"Mar  1 10:{minute:02d}:00 mx postfix/qmgr[2]: Q{i:04d}A: from=<>, size=1000, nrcpt=1 (queue active)"
        )
        lines.append(
            f"Mar  1 10:{minute:02d}:01 mx postfix/local[3]: Q{i:04d}A: to=<root@site.example>, orig_to=<postmaster>, "
            "relay=local, delay=0.1, delays=0/0/0/0, dsn=2.0.0, status=sent (delivered to mailbox)"
        )
    log = tmp_path / "maillog"
    log.write_text("\n".join(lines) + "\n")
    storm = scan_paths([log], year=2024).findings
    assert [(f.kind, f.count, f.targets, f.details["bytes"]) for f in storm] == [
        ("bounce-storm", 30, ["root"], 30000)
    ]
    assert not scan_paths([log], year=2024, config=DetectConfig(bounce_per_hour=31)).findings


def test_config_from_toml(tmp_path: Path) -> None:
    p = tmp_path / "scan.toml"
    p.write_text(
        '[scan]\nlocal_nets = ["192.0.2.0/24"]\nbomb_min = 5\nlearn_days = 2\n'
        'filters = ["f.conf", "sshd[mode=aggressive]", "d/g.local[x=1]"]\nfilter_dirs = ["fd"]\n'
    )
    cfg = DetectConfig.from_toml(p)
    assert cfg.local_nets == ("192.0.2.0/24",) and cfg.bomb_min == 5 and cfg.learn_days == 2.0
    # files are relative to the TOML file, names stay names
    assert cfg.filters == (
        tmp_path / "f.conf",
        "sshd[mode=aggressive]",
        tmp_path / "d/g.local[x=1]",
    )
    assert cfg.filter_dirs == (tmp_path / "fd",)


def test_filters_in_parallel_ranges_agree_with_one_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a filter without state between lines lets byte ranges be read apart; one with state
    # (F-MLFID) makes the file be read in one pass
    (tmp_path / "plain.conf").write_text(
        "[Definition]\nfailregex = ^\\s*\\S+ \\S+: connect from <ADDR>$\n"
    )
    # the address comes on a connection's first line, the failure (and user) on a later one
    (tmp_path / "conn.conf").write_text(
        "[Definition]\nfailregex = ^\\s*\\S+ <F-MLFID>\\S+</F-MLFID>: "
        "(?:<F-NOFAIL>connect</F-NOFAIL> from <ADDR>|bad password for <F-USER>\\S+</F-USER>)$\n"
    )
    lines = []
    for i in range(4000):
        t = f"Mar  1 1{i // 3600 % 10}:{i // 60 % 60:02d}:{i % 60:02d}"
        lines.append(f"{t} h app[{i}]: connect from 198.51.100.{i % 7}")
        lines.append(f"{t} h app[{i}]: bad password for u{i % 3}")
    log = tmp_path / "log"
    log.write_text("\n".join(lines) + "\n")
    monkeypatch.setattr(detect, "PARALLEL_MIN", 0)
    for name in ("plain", "conn"):
        cfg = DetectConfig(filters=(tmp_path / f"{name}.conf",), jobs=1)
        one = scan_paths([log], year=2024, config=cfg).findings
        many = scan_paths([log], year=2024, config=cfg.with_overrides(jobs=3)).findings
        assert [strip(f) for f in one] == [strip(f) for f in many]
        assert sorted((f.sources[0], f.count) for f in one) == [
            (f"198.51.100.{k}", sum(1 for i in range(4000) if i % 7 == k)) for k in range(7)
        ]
        assert all(f.details.get("users") == ["u0", "u1", "u2"] for f in one) == (name == "conn")


@pytest.mark.parametrize(
    "text",
    [
        "bomb_min = 'x'",
        "nosuch = 1",
        "local_nets = ['not a net']",
        "bomb_min = 0",
        "[scan",
        "admins = 'root'",
    ],
)
def test_bad_config(tmp_path: Path, text: str) -> None:
    p = tmp_path / "scan.toml"
    p.write_text(text)
    with pytest.raises(ConfigError):
        DetectConfig.from_toml(p)


def test_truncated_gzip_keeps_what_was_read(tmp_path: Path) -> None:
    lines = b"".join(
        b"Sep  1 10:%02d:%02d h imapd[1]: refused connect from 192.0.2.%d (192.0.2.%d)\n"
        % (i // 60, i % 60, i % 250 + 1, i % 250 + 1)
        for i in range(3000)
    )
    packed = gzip.compress(lines, compresslevel=1)
    cut = tmp_path / "messages.1.gz"
    cut.write_bytes(packed[: len(packed) // 2])
    result = scan_paths([cut], year=1997)
    assert 0 < result.lines < 3000
    assert result.findings and "skipped" in result.warnings[0]


def test_bulk_connection_counting_agrees_with_the_parsers(tmp_path: Path) -> None:
    rows = []
    for i in range(600):
        day, sec = 1 + i // 60, i % 60
        host = (
            f"pc{i % 7}.lab.example (10.0.0.{i % 7})"
            if i % 50
            else f"far{i}.example (192.0.2.{i % 250})"
        )
        rows.append(f"Mar {day:2d} 10:00:{sec:02d} gw imapd[{i}]: connect from {host}")
        if i % 97 == 0:
            rows.append(
                f"Mar {day:2d} 10:00:{sec:02d} gw in.telnetd[{i}]: refused connect from 203.0.113.{i % 200}"
            )
        if i == 300:
            rows += [
                "garbage in the middle",
                "Mar  6 10:00:00 mx postfix/smtpd[9]: connect from x[192.0.2.1]",
                "Mar  6 10:00:01 gw imapd[9]: connect from crlf.example (198.51.100.1)\r",
                "Mar  6 10:00:02 gw imapd[9]: connect from odd\rline.example (198.51.100.2)",
            ]
    log = tmp_path / "messages"
    log.write_bytes(("\n".join(rows) + "\n").encode())
    fast, slow = (
        Scanner(DetectConfig(learn_days=2), year=2024),
        Scanner(DetectConfig(learn_days=2), year=2024),
    )
    slow.state.fast = False
    fast.scan(log)
    slow.scan(log)
    assert fast.state.granted == slow.state.granted
    a, b = fast.result(), slow.result()
    assert [f.to_dict() for f in a.findings] == [f.to_dict() for f in b.findings]
    assert (a.lines, a.unparsed, a.unparsed_examples) == (b.lines, b.unparsed, b.unparsed_examples)
    assert a.unparsed_examples[0][1] == rows.index("garbage in the middle") + 1
    assert any(f.outcome == "granted" for f in a.findings) and any(
        f.outcome == "refused" for f in a.findings
    )


AUTH_LINES = [
    "Mar  1 00:00:01 h sshd[1]: Invalid user admin from 203.0.113.7 port 4022",
    "Mar  1 00:00:01 h CRON[2]: pam_unix(cron:session): session opened for user root by (uid=0)",
    "Mar  1 00:00:02 h sshd[1]: Failed password for invalid user admin from 203.0.113.7 port"
    " 4022 ssh2",
    "Mar  1 00:00:02 h systemd-logind[3]: New session 7 of user taro.",
    "Mar  1 00:00:03 h sshd[4]: pam_unix(sshd:auth): authentication failure; logname= uid=0 "
    "euid=0 tty=ssh ruser= rhost=198.51.100.9  user=root",
    "Mar  1 00:00:03 h sshd[4]: Failed password for root from 198.51.100.9 port 22 ssh2",
    "Mar  1 00:00:04 h sshd[4]: Connection closed by authenticating user root 198.51.100.9 port"
    " 22 [preauth]",
    "",
    "# a comment",
    "Mar  1 00:00:05 h sudo[5]: taro : TTY=pts/0 ; COMMAND=/bin/ls\r",
    "Mar  1 00:00:05 h su[6]: pam_unix(su:session): session opened for user \u592a\u90ce",
    "no date: Failed password for root from 192.0.2.1 port 1 ssh2",
    "2024-03-01T00:00:06 h sshd[7]: Failed password for root from 192.0.2.2 port 1 ssh2",
    "2024-03-01T00:00:06 h CRON[8]: pam_unix(cron:session): session closed for user root",
    "[Mar  1 00:00:07] h sshd[9]: Failed password for root from 192.0.2.3 port 1 ssh2",
    "Mar  1 00:00:08 h sshd[10]: Received disconnect from 192.0.2.4 port 2:11: Bye [preauth]",
]


@pytest.mark.parametrize("framed", [False, True])
@pytest.mark.parametrize("seed", range(6))
def test_filters_pass_over_lines_without_needles_as_one_by_one(
    seed: int, framed: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # lines no failregex can match are passed over in bulk: the findings are those of
    # reading every line through the filter, whatever lines come between (odd ones too).
    # framed: every line with a needle is syslog, so that the built-in parsers read the
    # blocks as without filters; else some are not (and the filter matches them)
    need(str(f2b.FILTER_DIR / "sshd.conf"))
    rnd = random.Random(seed)
    pool = [ln for ln in AUTH_LINES if not framed or ln[:1] not in ("n", "[")]
    lines = [rnd.choice(pool) for _ in range(3000)]
    if framed:
        lines[rnd.randrange(3000)] = "garbage without a needle"
    log = tmp_path / "auth.log"
    log.write_bytes("\n".join(lines).encode("utf-8") + b"\n")
    cfg = DetectConfig(filters=("sshd",), jobs=1)
    bulk = scan_paths([log], year=2024, config=cfg)
    monkeypatch.setattr(state, "_needles", lambda filters: None)
    one = scan_paths([log], year=2024, config=cfg)
    assert bulk.findings and [strip(f) for f in bulk.findings] == [strip(f) for f in one.findings]
    assert (bulk.lines, bulk.unparsed, bulk.unparsed_examples) == (
        one.lines,
        one.unparsed,
        one.unparsed_examples,
    )
    # and the Python path (no C loop) reads the blocks alike
    monkeypatch.undo()
    python = Scanner(cfg, year=2024, native=False)
    python.scan(log)
    py = python.result()
    assert [strip(f) for f in py.findings] == [strip(f) for f in one.findings]
    assert (py.lines, py.unparsed, py.unparsed_examples) == (
        one.lines,
        one.unparsed,
        one.unparsed_examples,
    )


@pytest.mark.parametrize("since", [None, "2024-03-01 00:00:03", "2024-03-01 00:00:06"])
def test_filters_leave_the_login_parsers_their_lines_in_a_window(
    tmp_path: Path, since: str | None
) -> None:
    # the needles choose what the filters read, not what the built-in parsers read; a
    # window keeps the failures of both inside it
    need(str(f2b.FILTER_DIR / "sshd.conf"))
    log = tmp_path / "auth.log"
    log.write_bytes("\n".join(AUTH_LINES * 3).encode("utf-8") + b"\n")
    window = Window.parse(since, None)
    filtered = scan_paths(
        [log], year=2024, config=DetectConfig(filters=("sshd",), jobs=1), window=window
    )
    plain = scan_paths([log], year=2024, config=DetectConfig(jobs=1), window=window)
    builtin = [strip(f) for f in filtered.findings if "filter" not in f.details]
    assert builtin == [strip(f) for f in plain.findings]
    assert any(f.outcome == "failed" for f in plain.findings)
    by_filter = [f for f in filtered.findings if f.details.get("filter") == "sshd"]
    assert by_filter
    if window is not None and window.since is not None:
        assert min(f.first_seen for f in by_filter) >= window.since
    assert (filtered.lines, filtered.unparsed) == (plain.lines, plain.unparsed - 3)
