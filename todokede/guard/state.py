"""The guard's state in SQLite: bans (which survive restarts and expire on time), how often
each address was banned (for growing ban times), and the reports made (never twice).

One file, WAL mode, so that ``guard ban``/``unban``/``status`` can work beside a running guard.
Lookups go through the primary key and expiry through an index on ``expires``: 100,000
bans cost a few megabytes and each ban or unban stays a single-row statement.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from todokede.errors import StoreError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS bans (
    jail TEXT NOT NULL,
    addr TEXT NOT NULL,
    banned_at REAL NOT NULL,
    expires REAL,               -- NULL: until unbanned
    failures INTEGER NOT NULL,
    PRIMARY KEY (jail, addr)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS bans_expires ON bans (expires) WHERE expires IS NOT NULL;
CREATE TABLE IF NOT EXISTS offenders (
    jail TEXT NOT NULL,
    addr TEXT NOT NULL,
    bans INTEGER NOT NULL,
    last REAL NOT NULL,
    PRIMARY KEY (jail, addr)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS reports (
    key TEXT PRIMARY KEY,       -- also the idempotency key sent to the center
    jail TEXT NOT NULL,
    addr TEXT NOT NULL,
    made REAL NOT NULL,
    status TEXT NOT NULL,       -- drafted | pending | sent
    detail TEXT NOT NULL DEFAULT ''
);
"""


@dataclass(frozen=True)
class Ban:
    jail: str
    addr: str
    banned_at: float
    expires: float | None
    failures: int

    def left(self, now: float) -> float | None:
        """Seconds until the ban ends (None: never)."""
        return None if self.expires is None else max(0.0, self.expires - now)


class State:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._batch = "off"  # off | pending | open (see batch())
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"{self.path}: cannot open the guard state: {exc}") from None

    def close(self) -> None:
        self.db.close()

    def _run(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        try:
            return self.db.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {exc}") from None

    # -- bans --------------------------------------------------------------------------

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """The bans made inside share one transaction (begun at the first of them): a
        block of failing lines that bans many addresses commits once. Each ban's actions
        have run when it is made, so an error or a signal that ends the block still
        commits the bans made before it: the state never forgets a ban in force."""
        if self._batch != "off":
            yield
            return
        self._batch = "pending"
        try:
            yield
        except BaseException:
            if self._batch == "open":
                with contextlib.suppress(sqlite3.Error):
                    self.db.execute("COMMIT")
            raise
        else:
            if self._batch == "open":
                self._run("COMMIT")
        finally:
            self._batch = "off"

    def ban(self, jail: str, addr: str, now: float, seconds: float, failures: int) -> Ban:
        """Record a ban (replacing an older one of the same address in the jail)."""
        expires = None if seconds < 0 else now + seconds
        try:
            if self._batch == "off":
                with self.db:
                    self.db.execute("BEGIN IMMEDIATE")
                    self._record(jail, addr, now, expires, failures)
            else:
                if self._batch == "pending":
                    self.db.execute("BEGIN IMMEDIATE")
                    self._batch = "open"
                self._record(jail, addr, now, expires, failures)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {exc}") from None
        return Ban(jail, addr, now, expires, failures)

    def _record(
        self, jail: str, addr: str, now: float, expires: float | None, failures: int
    ) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO bans VALUES (?, ?, ?, ?, ?)",
            (jail, addr, now, expires, failures),
        )
        self.db.execute(
            "INSERT INTO offenders VALUES (?, ?, 1, ?) ON CONFLICT (jail, addr) "
            "DO UPDATE SET bans = bans + 1, last = excluded.last",
            (jail, addr, now),
        )

    def unban(self, jail: str | None, addr: str) -> list[Ban]:
        """Remove the bans of ``addr`` (in one jail, or in all); the bans removed."""
        where, args = ("jail = ? AND addr = ?", (jail, addr)) if jail else ("addr = ?", (addr,))
        found = self._bans(f"WHERE {where}", args)
        self._run(f"DELETE FROM bans WHERE {where}", args)  # noqa: S608 - fixed fragments
        return found

    def expire(self, now: float) -> list[Ban]:
        """Remove and return the bans whose time is up."""
        found = self._bans("WHERE expires IS NOT NULL AND expires <= ?", (now,))
        if found:
            self._run("DELETE FROM bans WHERE expires IS NOT NULL AND expires <= ?", (now,))
        return found

    def active(self, jail: str | None = None) -> list[Ban]:
        if jail is None:
            return self._bans("ORDER BY banned_at", ())
        return self._bans("WHERE jail = ? ORDER BY banned_at", (jail,))

    def banned(self, jail: str, addr: str, now: float) -> bool:
        rows = self._run(
            "SELECT 1 FROM bans WHERE jail = ? AND addr = ? AND (expires IS NULL OR expires > ?)",
            (jail, addr, now),
        )
        return bool(rows)

    def count(self, jail: str | None = None) -> int:
        if jail is None:
            rows = self._run("SELECT count(*) FROM bans")
        else:
            rows = self._run("SELECT count(*) FROM bans WHERE jail = ?", (jail,))
        return int(rows[0][0])

    def previous_bans(self, jail: str, addr: str) -> int:
        rows = self._run("SELECT bans FROM offenders WHERE jail = ? AND addr = ?", (jail, addr))
        return int(rows[0][0]) if rows else 0

    def _bans(self, tail: str, args: tuple[object, ...]) -> list[Ban]:
        rows = self._run(
            f"SELECT jail, addr, banned_at, expires, failures FROM bans {tail}",  # noqa: S608
            args,
        )
        return [Ban(*row) for row in rows]

    # -- reports -----------------------------------------------------------------------

    def report_status(self, key: str) -> str | None:
        rows = self._run("SELECT status FROM reports WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    def set_report(
        self, key: str, jail: str, addr: str, now: float, status: str, detail: str
    ) -> None:
        self._run(
            "INSERT INTO reports VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (key) "
            "DO UPDATE SET status = excluded.status, detail = excluded.detail",
            (key, jail, addr, now, status, detail),
        )

    def pending_reports(self) -> list[tuple[str, str, str, str]]:
        """(key, jail, addr, detail) of the reports still to be sent."""
        rows = self._run("SELECT key, jail, addr, detail FROM reports WHERE status = 'pending'")
        return [(str(k), str(j), str(a), str(d)) for k, j, a, d in rows]
