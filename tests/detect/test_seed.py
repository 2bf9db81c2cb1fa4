"""The September 1997 logs bundled for the demo: the seed's cases come out as findings.

Expected findings live beside this file in seed_expected.json (and are described in
todokede/samples/logs/1997-09/README.md); the seed's own facts are checked here directly.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import todokede
from todokede.detect import DetectConfig, scan_paths

SAMPLES = Path(todokede.__file__).parent / "samples" / "logs" / "1997-09"
EXPECTED = json.loads((Path(__file__).parent / "seed_expected.json").read_text())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_findings_as_annotated(name: str) -> None:
    result = scan_paths([SAMPLES / name], year=1997)
    want = EXPECTED[name]
    assert (result.lines, result.unparsed) == (want["lines"], want["unparsed"])
    got = [
        {k: v for k, v in f.to_dict().items() if k not in ("evidence", "details")}
        for f in result.findings
    ]
    assert got == want["findings"]


def test_nine_refused_imap_attempts_from_unknown_hosts() -> None:
    result = scan_paths([SAMPLES / "site-imap" / "messages"], year=1997)
    probes = [f for f in result.findings if f.kind == "access-probe" and f.service == "imapd"]
    assert sum(f.count for f in probes) == 9
    assert all(f.outcome == "refused" for f in probes)
    assert min(f.to_dict()["first_seen"] for f in probes) >= "1997-08-10"
    assert max(f.to_dict()["last_seen"] for f in probes) <= "1997-09-20"
    text = json.dumps([f.to_dict() for f in result.findings])
    assert "daigaku.example" not in text and "172.16." not in text  # no internal host named
    for f in probes:
        assert all("refused connect from" in line for line in f.evidence)


def test_relay_abuse_and_the_hundred_megabytes_to_root() -> None:
    result = scan_paths([SAMPLES / "site-relay" / "maillog"], year=1997)
    relayed = [f for f in result.findings if f.kind == "relay-abuse" and f.outcome == "relayed"]
    assert sum(f.count for f in relayed) == 400  # messages, not recipients
    assert all(
        s.endswith("us-provider.example") or s.startswith("198.51.100.")
        for f in relayed
        for s in f.sources
    )
    assert sum(f.details["recipients"] for f in relayed) > 400 * 10
    storm = [f for f in result.findings if f.kind == "bounce-storm"]
    assert len(storm) == 1 and storm[0].targets == ["root"]
    assert 90e6 <= storm[0].details["bytes"] <= 110e6
    assert storm[0].evidence and all("to=root" in e for e in storm[0].evidence)


def test_happy_today_mail_bomb() -> None:
    result = scan_paths([SAMPLES / "site-bomb" / "maillog"], year=1997)
    bombs = [f for f in result.findings if f.kind == "mail-bomb"]
    assert [(b.count, b.targets) for b in bombs] == [(3200, ["sachiko@shosha.example"])]
    # where the traffic came from (to block at the router), not the forgeable sender
    assert bombs[0].sources == ["mailhost.today-mail.example", "203.0.113.99"]
    assert bombs[0].details["sender"] == "happy@today-mail.example"
    assert bombs[0].to_dict()["first_seen"].startswith("1997-09-21T09:")


def test_thresholds_are_the_users() -> None:
    strict = DetectConfig(bomb_min=5000, probe_min=2)
    bomb = scan_paths([SAMPLES / "site-bomb" / "maillog"], year=1997, config=strict)
    assert not [f for f in bomb.findings if f.kind == "mail-bomb"]
    imap = scan_paths([SAMPLES / "site-imap" / "messages"], year=1997, config=strict)
    assert [f.count for f in imap.findings] == [2, 2]


def test_year_changes_only_the_dates() -> None:
    a = scan_paths([SAMPLES / "site-bomb" / "maillog"], year=1997).findings[0].to_dict()
    b = scan_paths([SAMPLES / "site-bomb" / "maillog"], year=2003).findings[0].to_dict()
    assert a["first_seen"].startswith("1997-09-21") and b["first_seen"].startswith("2003-09-21")
    assert a["count"] == b["count"]


def test_bundled_logs_are_what_the_generator_writes(tmp_path: Path) -> None:
    generator = Path(__file__).resolve().parents[2] / "bench" / "genlogs.py"
    subprocess.run([sys.executable, str(generator), "seed", str(tmp_path)], check=True, timeout=120)
    for name in EXPECTED:
        assert (tmp_path / name).read_bytes() == (SAMPLES / name).read_bytes(), name
