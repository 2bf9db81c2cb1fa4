"""The guard's SQLite state: bans survive reopening, expire on time, and 100,000 stay fast."""

from __future__ import annotations

from pathlib import Path

import pytest

from todokede.guard.state import State


def test_bans_survive_reopening(tmp_path: Path) -> None:
    s = State(tmp_path / "g.db")
    s.ban("sshd", "192.0.2.1", 100.0, 600.0, 5)
    s.ban("sshd", "192.0.2.2", 100.0, -1, 3)
    s.close()
    s = State(tmp_path / "g.db")
    bans = {b.addr: b for b in s.active("sshd")}
    assert bans["192.0.2.1"].expires == 700.0 and bans["192.0.2.1"].failures == 5
    assert bans["192.0.2.2"].expires is None
    assert s.banned("sshd", "192.0.2.1", 699.0) and not s.banned("sshd", "192.0.2.1", 700.0)
    assert not s.banned("imap", "192.0.2.1", 100.0)


@pytest.mark.parametrize(
    ("now", "expired", "left"),
    [(699.0, [], {"a", "b", "c"}), (700.0, ["a"], {"b", "c"}), (10_000.0, ["a", "b"], {"c"})],
)
def test_expiry(tmp_path: Path, now: float, expired: list[str], left: set[str]) -> None:
    s = State(tmp_path / "g.db")
    s.ban("j", "a", 100.0, 600.0, 1)
    s.ban("j", "b", 100.0, 900.0, 1)
    s.ban("j", "c", 100.0, -1, 1)
    assert sorted(b.addr for b in s.expire(now)) == expired
    assert {b.addr for b in s.active()} == left
    assert s.expire(now) == []


def test_repeat_offenders_are_remembered_after_unban(tmp_path: Path) -> None:
    s = State(tmp_path / "g.db")
    assert s.previous_bans("j", "a") == 0
    s.ban("j", "a", 0.0, 10.0, 1)
    s.expire(20.0)
    s.ban("j", "a", 30.0, 10.0, 1)
    assert s.previous_bans("j", "a") == 2
    assert [b.jail for b in s.unban(None, "a")] == ["j"]
    assert s.unban(None, "a") == []


def test_reports_are_recorded_once(tmp_path: Path) -> None:
    s = State(tmp_path / "g.db")
    assert s.report_status("k") is None
    s.set_report("k", "j", "a", 0.0, "pending", "/r/k.json")
    assert s.pending_reports() == [("k", "j", "a", "/r/k.json")]
    s.set_report("k", "j", "a", 1.0, "sent", "/r/k.json")
    assert s.report_status("k") == "sent" and s.pending_reports() == []


def test_a_hundred_thousand_bans(tmp_path: Path) -> None:
    s = State(tmp_path / "g.db")
    with s.db:
        s.db.executemany(
            "INSERT INTO bans VALUES ('j', ?, 0, ?, 1)",
            ((f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", 1000.0 + i) for i in range(100_000)),
        )
    assert s.count() == 100_000
    plan = s.db.execute(
        "EXPLAIN QUERY PLAN SELECT 1 FROM bans WHERE jail = ? AND addr = ?", ("j", "x")
    ).fetchall()
    assert "USING PRIMARY KEY" in str(plan)
    plan = s.db.execute(
        "EXPLAIN QUERY PLAN SELECT * FROM bans WHERE expires IS NOT NULL AND expires <= 5"
    ).fetchall()
    assert "bans_expires" in str(plan)
    s.ban("j", "192.0.2.9", 0.0, 5000.0, 3)
    assert s.banned("j", "192.0.2.9", 1.0)
    assert [b.addr for b in s.expire(1000.5)] == ["10.0.0.0"]


def test_a_batch_commits_once_and_keeps_its_bans(tmp_path: Path) -> None:
    s = State(tmp_path / "g.db")
    other = State(tmp_path / "g.db")
    with s.batch():
        s.ban("j", "a", 0.0, 60.0, 1)
        s.ban("j", "b", 0.0, 60.0, 1)
        assert other.count() == 0  # not yet committed
    assert other.count() == 2
    with pytest.raises(KeyboardInterrupt), s.batch():
        s.ban("j", "c", 0.0, 60.0, 1)  # its actions have run: it is in force
        raise KeyboardInterrupt
    assert {b.addr for b in other.active()} == {"a", "b", "c"}
    with s.batch():
        pass  # no ban: no transaction, nothing locked
    other.ban("j", "d", 0.0, 60.0, 1)
    assert s.count() == 4
