"""Mail messages folded into small aggregates as soon as they are complete.

Postfix says when a message is done (``QID: removed``); the scanner then folds it into a
:class:`MailAgg` and forgets it, so memory holds the messages in flight, not the whole log.
What depends on the whole log (the site's own domains, inferred from local deliveries) is
decided only when findings are built: relay candidates are kept per (sender domain, recipient
domains) so that the decision can still be made then.

This module is the reference. With the C scanner (``native``) the same aggregates are filled
by ``_fast.Fold`` straight from the queue's records, and the two tables a spam run makes big
(the sender-recipient pairs, a relay's recipient domains) are compact C tables,
``_fast.Pairs`` and ``_fast.Tally``, that answer what this module and the findings ask of the
dicts they stand for.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from todokede.detect.queue import Rcpt

try:
    from todokede.detect import _fast
except ImportError:  # built without a C compiler: the Python path
    _fast = None  # type: ignore[assignment]

NULL_SENDERS = frozenset({"", "<>", "mailer-daemon"})
RAW_PER_KEY = 4
SENDERS = 10


def is_null_sender(sender: str | None) -> bool:
    s = (sender or "").lower()
    return s in NULL_SENDERS or s.startswith(("mailer-daemon@", "double-bounce@"))


class Nets:
    """Address -> inside the site? (memoized: a log repeats its hosts)."""

    def __init__(self, nets: tuple[str, ...]) -> None:
        self.nets = [ipaddress.ip_network(n, strict=False) for n in nets]
        self._memo: dict[str, bool] = {}

    def __contains__(self, addr: str) -> bool:
        known = self._memo.get(addr)
        if known is None:
            try:
                ip = ipaddress.ip_address(addr.strip("[]"))
                known = any(ip in n for n in self.nets if n.version == ip.version)
            except ValueError:
                known = False
            self._memo[addr] = known
        return known


class Relay:
    """Mail from one outside client that went out again through a non-local transport.

    Kept per sender domain and per recipient domain, not per message, so that a spam run to
    thousands of random domains stays small; whether a domain is the site's own is decided
    when the findings are built (a message counts when its sender's domain is outside; the
    recipients and targets count only outside domains).
    """

    __slots__ = ("addrs", "by_sender", "by_status", "names", "senders", "service")

    def __init__(self, service: str, by_status: _fast.Tally | None = None) -> None:
        self.service = service
        self.names: set[str] = set()
        self.addrs: set[str] = set()
        # sender domain -> [messages, first, last, raw lines]
        self.by_sender: dict[str, list[Any]] = {}
        # (recipient domain, status) -> recipients; with the C scanner the same in a compact
        # table (_fast.Tally: get, [key] =, items, merge, tally)
        self.by_status: dict[tuple[str, str], int] | _fast.Tally = (
            {} if by_status is None else by_status
        )
        self.senders: set[str] = set()

    def merge(self, other: Relay) -> None:
        self.names |= other.names
        self.addrs |= other.addrs
        self.senders = set(sorted(self.senders | other.senders)[:SENDERS])
        for key, c in other.by_sender.items():
            mine = self.by_sender.get(key)
            if mine is None:
                self.by_sender[key] = c
            else:
                mine[0] += c[0]
                mine[1], mine[2] = min(mine[1], c[1]), max(mine[2], c[2])
                mine[3].extend(c[3][: RAW_PER_KEY - len(mine[3])])
        table, theirs = self.by_status, other.by_status
        if isinstance(table, dict) or isinstance(theirs, dict):
            for skey, n in theirs.items():
                table[skey] = table.get(skey, 0) + n
        else:
            table.merge(theirs)  # the same steps, in C


class Pair:
    """Messages from one sender to one recipient. Most pairs are one message: those stay a
    bare timestamp in :attr:`MailAgg.pairs` until a second message comes (and the raw line
    of the first is not kept: a bomb has plenty more)."""

    __slots__ = ("last_raw", "raw", "service", "times")

    def __init__(self, service: str, times: list[int]) -> None:
        self.service = service
        self.times = times
        self.raw: list[bytes] = []
        self.last_raw = b""

    def add(self, ts: int, raw: bytes) -> None:
        self.times.append(ts)
        if len(self.raw) < RAW_PER_KEY:
            self.raw.append(raw)
        else:
            self.last_raw = raw

    def merge(self, other: Pair) -> None:
        self.times.extend(other.times)
        self.raw.extend(other.raw[: RAW_PER_KEY - len(self.raw)])
        if other.last_raw or other.raw:
            self.last_raw = other.last_raw or other.raw[-1]


class MailAgg:
    def __init__(self, own_domains: tuple[str, ...] | None = None, *, native: bool = False) -> None:
        # the site's domains when the user named them (else they are inferred at the end)
        self.own_domains = tuple(d.lower().lstrip(".") for d in own_domains or ())
        self.local_domains: set[str] = set()  # recipients' domains delivered locally
        self.relays: dict[str, Relay] = {}
        self.bounces: dict[tuple[str, str], dict[int, list[int]]] = {}
        self.bounce_raw: dict[tuple[str, str], list[bytes]] = {}
        # the C scanner's compact tables, when it was built (and asked for)
        self.native = native and _fast is not None
        # "service\0sender\0recipient" -> time of its only message, or a Pair; with the C
        # scanner the same in a compact table (_fast.Pairs: get, [key] =, items, multi)
        self.pairs: dict[str, int | Pair] | _fast.Pairs = (
            _fast.Pairs(Pair) if self.native and _fast is not None else {}
        )

    def new_relay(self, service: str) -> Relay:
        return Relay(service, _fast.Tally() if self.native and _fast is not None else None)

    def multi_pairs(self, consume: bool = False) -> list[tuple[str, Pair]]:
        """The pairs of two messages or more (the others cannot be mail bombs), in order;
        ``consume`` lets go of the pairs table (this aggregate is used up)."""
        pairs = self.pairs
        if isinstance(pairs, dict):
            multi = [(k, p) for k, p in pairs.items() if not isinstance(p, int)]
        else:
            multi = pairs.multi()
        if consume:
            pairs.clear()  # in place: the queue's fold callback holds the table too
        return multi

    def add(
        self,
        service: str,
        ts: int,
        host: str,
        addr: str,
        sender: str | None,
        size: int,
        rcpts: list[Rcpt],
        raw_lines: list[bytes],
        bounce: bool,
        nets: Nets,
        admins: frozenset[str],
    ) -> None:
        """Fold one complete message in (the fields of a :class:`~todokede.detect.queue.Msg`;
        ``bounce``: a notice of the mail server's own, known by its queue id)."""
        if sender is None and not rcpts:
            return
        for rcpt, via, status, _orig, _ts in rcpts:
            if via == "local" and status == "sent" and "@" in rcpt:
                self.local_domains.add(rcpt.rpartition("@")[2].lower())
        if bounce or not sender or (sender[0] in "dDmM<" and is_null_sender(sender)):
            self._bounce(service, size, rcpts, raw_lines, admins)
            return
        raw = raw_lines[0] if raw_lines else b""
        # mail bombs come over the network: mail submitted on the host itself (cron, scripts
        # mailing root every minute) has no client and is not counted
        # each recipient once, in their order (the order of the pairs table)
        names = dict.fromkeys(r[0] for r in rcpts) if len(rcpts) > 1 else [r[0] for r in rcpts]
        pairs = self.pairs
        for rcpt in names if (host or addr) else ():
            key = f"{service}\0{sender}\0{rcpt}"
            pair = pairs.get(key)
            if pair is None:
                pairs[key] = ts
            elif isinstance(pair, int):
                p = pairs[key] = Pair(service, [pair])
                p.add(ts, raw)
            else:
                pair.add(ts, raw)
        if not (host or addr) or (addr and addr in nets):
            return
        remote = [r for r in rcpts if r[1] != "local" and not self._own(r[0])]
        if not remote or "@" not in sender or self._own(sender):
            return
        src = addr or host
        relay = self.relays.get(src)
        if relay is None:
            relay = self.relays[src] = self.new_relay(service)
        if host:
            relay.names.add(host)
        if addr:
            relay.addrs.add(addr)
        if sender not in relay.senders:
            # a sample that does not depend on the order of reading: the first names
            relay.senders.add(sender)
            if len(relay.senders) > SENDERS:
                relay.senders.remove(max(relay.senders))
        sdom = sender.rpartition("@")[2].lower()
        entry = relay.by_sender.get(sdom)
        last = max(r[4] for r in remote)
        if entry is None:
            relay.by_sender[sdom] = [1, ts, last, list(raw_lines[:RAW_PER_KEY])]
        else:
            entry[0] += 1
            entry[1], entry[2] = min(entry[1], ts), max(entry[2], last)
            if len(entry[3]) < RAW_PER_KEY:
                entry[3].extend(raw_lines[: RAW_PER_KEY - len(entry[3])])
        by_status = relay.by_status
        for r in remote:
            dkey = (r[0].rpartition("@")[2].lower(), r[2])
            by_status[dkey] = by_status.get(dkey, 0) + 1

    def _own(self, address: str) -> bool:
        if not self.own_domains:
            return False
        d = address.rpartition("@")[2].lower().rstrip(".")
        return any(d == o or d.endswith("." + o) for o in self.own_domains)

    def _bounce(
        self,
        service: str,
        size: int,
        rcpts: list[Rcpt],
        raw_lines: list[bytes],
        admins: frozenset[str],
    ) -> None:
        for rcpt, via, _status, orig, ts in rcpts:
            who = (orig or rcpt).partition("@")[0].lower()
            local = rcpt.partition("@")[0].lower()
            if via == "local" and (who in admins or local in admins):
                if service.startswith("postfix/"):
                    service = "postfix/local"
                hours = self.bounces.setdefault((service, local), {})
                hour = ts - ts % 3600
                cell = hours.get(hour)
                if cell is None:
                    hours[hour] = [1, size, ts, ts]
                else:
                    cell[0] += 1
                    cell[1] += size
                    cell[2], cell[3] = min(cell[2], ts), max(cell[3], ts)
                raw = self.bounce_raw.setdefault((service, local), [])
                if len(raw) < RAW_PER_KEY:
                    raw.extend(raw_lines[-1:])
                return

    def merge(self, other: MailAgg) -> None:
        self.local_domains |= other.local_domains
        for key, relay in other.relays.items():
            have_relay = self.relays.get(key)
            if have_relay is None:
                self.relays[key] = relay
            else:
                have_relay.merge(relay)
        for bkey, hours in other.bounces.items():
            have = self.bounces.setdefault(bkey, {})
            for hour, c in hours.items():
                cell = have.get(hour)
                if cell is None:
                    have[hour] = list(c)
                else:
                    cell[0] += c[0]
                    cell[1] += c[1]
                    cell[2], cell[3] = min(cell[2], c[2]), max(cell[3], c[3])
        for bkey, raw in other.bounce_raw.items():
            have_raw = self.bounce_raw.setdefault(bkey, [])
            have_raw.extend(raw[: RAW_PER_KEY - len(have_raw)])
        pairs = self.pairs
        if not isinstance(pairs, dict):
            if isinstance(other.pairs, dict):
                raise TypeError("merging a MailAgg of the Python path into one of C")
            pairs.merge(other.pairs)  # the same steps, in C
            return
        for pkey, pair in other.pairs.items():
            mine = pairs.get(pkey)
            if mine is None:
                pairs[pkey] = pair
                continue
            if isinstance(mine, int):
                if isinstance(pair, int):
                    pairs[pkey] = Pair(pkey.partition("\0")[0], [mine, pair])
                    continue
                pair.times.insert(0, mine)
                pairs[pkey] = pair
            elif isinstance(pair, int):
                mine.times.append(pair)
            else:
                mine.merge(pair)

    def copy(self) -> MailAgg:
        """A copy that :meth:`add` and :meth:`merge` may change without touching this one."""
        import copy

        return copy.deepcopy(self)
