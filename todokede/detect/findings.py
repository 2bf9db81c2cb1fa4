"""From what a scan remembered to findings: the five kinds and their JSON shape."""

from __future__ import annotations

import copy
import heapq
import itertools
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from todokede.detect.config import DEFAULT_LOCAL_NETS, DetectConfig
from todokede.detect.mailagg import MailAgg, Nets, Pair
from todokede.detect.state import Agg, State
from todokede.logs import tcpd
from todokede.logs.events import Event
from todokede.logs.syslog import Framer
from todokede.logs.tcpd import looks_like_address
from todokede.logs.text import decode

KINDS = ("access-probe", "relay-abuse", "bounce-storm", "mail-bomb", "exploit-attempt")


def iso(ts: int) -> str:
    """The log's wall-clock time as ISO 8601 (no offset: syslog times are local)."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S")


@dataclass
class Finding:
    kind: str
    service: str
    sources: list[str]
    count: int
    first_seen: int
    last_seen: int
    outcome: str
    evidence: list[str]
    targets: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of ``scan --json`` (one line per finding)."""
        return {
            "kind": self.kind,
            "service": self.service,
            "sources": list(self.sources),
            "count": self.count,
            "first_seen": iso(self.first_seen),
            "last_seen": iso(self.last_seen),
            "outcome": self.outcome,
            "evidence": list(self.evidence),
            "targets": list(self.targets),
            "details": dict(self.details),
        }

    def key(self) -> tuple[str, str, tuple[str, ...], str]:
        """Identity of a finding while it grows (``--follow`` reports it again when it does)."""
        return self.kind, self.service, tuple(self.sources), self.outcome


class Site:
    """The site's own networks and domains: configured, or inferred from the log."""

    def __init__(self, config: DetectConfig, state: State, seen_domains: set[str]) -> None:
        nets = config.local_nets if config.local_nets is not None else DEFAULT_LOCAL_NETS
        self.nets = Nets(nets)
        if config.local_domains is not None:
            domains = {d.lower().lstrip(".") for d in config.local_domains}
        else:
            domains = set(seen_domains)
        self.domains = domains
        # a few domains: one endswith() in C instead of a set lookup per label
        self._suffixes = tuple("." + d for d in domains) if len(domains) <= 64 else None
        self.names = state.names
        # a big log names the same few thousand hosts and domains over and over
        self._domain_memo: dict[str, bool] = {}

    def addr_local(self, addr: str) -> bool:
        return addr in self.nets

    def domain_local(self, domain: str) -> bool:
        known = self._domain_memo.get(domain)
        if known is None:
            d = domain.lower().rstrip(".").strip("[]")
            if d[-1:].isdigit() or ":" in d:
                known = self.addr_local(d) if looks_like_address(d) else self._under(d)
            else:
                known = self._under(d)
            self._domain_memo[domain] = known
        return known

    def _under(self, d: str) -> bool:
        """Is ``d`` one of the site's domains or under one? (one set lookup per label)"""
        domains = self.domains
        if self._suffixes is not None:
            return d in domains or d.endswith(self._suffixes)
        while True:
            if d in domains:
                return True
            dot = d.find(".")
            if dot < 0:
                return False
            d = d[dot + 1 :]

    def host_local(self, name: str, addr: str) -> bool:
        if addr:
            return self.addr_local(addr)
        if name:
            known = self.names.get(name.lower())
            if known:
                return self.addr_local(known)
            return self.domain_local(name)
        return False


def _sources(agg: Agg) -> list[str]:
    return sorted(agg.names) + sorted(agg.addrs)


def build(state: State, config: DetectConfig, *, consume: bool = False) -> list[Finding]:
    """Findings from what the state holds; ``consume`` lets it use up the state (one-shot)."""
    mail = _mail_agg(state, consume)
    site = Site(config, state, mail.local_domains)
    out: list[Finding] = []
    out += _access(state, config, site)
    out += _logins(state, config, site)
    out += _mail(state, mail, config, site, consume)
    for (service, _key), agg in state.exploits.items():
        if agg.count >= config.exploit_min:
            out.append(
                Finding(
                    "exploit-attempt",
                    service,
                    _sources(agg) or ["unknown"],
                    agg.count,
                    agg.first,
                    agg.last,
                    "attempted",
                    agg.evidence(),
                    sorted(agg.targets),
                    {"users": sorted(agg.users)} if agg.users else {},
                )
            )
    for (name, _key), agg in state.failures.items():
        if agg.count >= config.failure_min:
            details: dict[str, Any] = {"filter": name}
            if agg.users:
                details["users"] = sorted(agg.users)
            out.append(
                Finding(
                    "access-probe",
                    name,
                    _sources(agg),
                    agg.count,
                    agg.first,
                    agg.last,
                    "failed",
                    agg.evidence(),
                    sorted(agg.targets),
                    details,
                )
            )
    out.sort(key=lambda f: (f.first_seen, KINDS.index(f.kind), f.service, f.sources))
    return out


def _granted(state: State) -> list[tuple[str, Event, int, int, int, bytes]]:
    """Granted connections: (service, first event, first ts, last ts, count, first line)."""
    framers = {src: Framer(rule) for src, rule in state.rules.items()}
    out = []
    for (_prog, _client), seen in state.granted.items():
        count, first_line, first_src, last_line, last_src = seen
        assert isinstance(first_line, bytes) and isinstance(last_line, bytes)
        assert isinstance(first_src, str) and isinstance(last_src, str)
        assert isinstance(count, int)
        f1 = framers[first_src].frame(first_line)
        f2 = framers[last_src].frame(last_line)
        if f1 is None or f2 is None:
            continue
        ev = tcpd.parse(f1[0], f1[2], f1[4])
        if ev is None:
            continue
        if ev.host and ev.addr:
            state.names.setdefault(ev.host.lower(), ev.addr)
        out.append((ev.service, ev, f1[0], f2[0], count, first_line))
    return out


def _access(state: State, config: DetectConfig, site: Site) -> list[Finding]:
    granted = _granted(state)
    out = []
    for (service, _key), agg in state.refused.items():
        if agg.count < config.probe_min:
            continue
        name = next(iter(agg.names), "")
        addr = next(iter(agg.addrs), "")
        if site.host_local(name, addr):
            continue  # the site's own hosts are not "unknown hosts"
        out.append(
            Finding(
                "access-probe",
                service,
                _sources(agg),
                agg.count,
                agg.first,
                agg.last,
                "refused",
                agg.evidence(),
                sorted(agg.targets),
                {"users": sorted(agg.users)} if agg.users else {},
            )
        )
    if not config.new_hosts:
        return out
    span: dict[str, list[int]] = {}
    for service, _ev, first, last, _n, _raw in granted:
        s = span.setdefault(service, [first, last])
        s[0], s[1] = min(s[0], first), max(s[1], last)
    for (service, _key), agg in state.refused.items():
        s = span.setdefault(service, [agg.first, agg.last])
        s[0], s[1] = min(s[0], agg.first), max(s[1], agg.last)
    window = int(config.learn_days * 86400)
    for service, ev, first, last, count, raw in granted:
        start, end = span[service]
        if first <= start + window or end - start <= window:
            continue
        if site.host_local(ev.host, ev.addr):
            continue
        out.append(
            Finding(
                "access-probe",
                service,
                [s for s in (ev.host, ev.addr) if s],
                count,
                first,
                last,
                "granted",
                [decode(raw)],
                [],
                {"new_host": True, "learned_until": iso(start + window)},
            )
        )
    return out


def _logins(state: State, config: DetectConfig, site: Site) -> list[Finding]:
    """Failed logins: the tries of each client outside the site (or, for a client whose
    lines name no try, those lines: see :mod:`todokede.logs.auth`)."""
    out = []
    for key, agg in state.auth.items():
        tries = state.tries.get(key, 0)
        count = tries or agg.count
        if count < config.login_min:
            continue
        if site.host_local(min(agg.names, default=""), min(agg.addrs, default="")):
            continue
        details: dict[str, Any] = {"tries": tries, "lines": agg.count}
        if agg.users:
            details["users"] = sorted(agg.users)
        out.append(
            Finding(
                "access-probe",
                key[0],
                _sources(agg) or ["unknown"],
                count,
                agg.first,
                agg.last,
                "failed",
                agg.evidence(),
                sorted(agg.targets),
                details,
            )
        )
    return out


def _mail_agg(state: State, consume: bool) -> MailAgg:
    """The state's mail aggregates plus the messages still open (sendmail logs, messages whose
    "removed" line is not in the log)."""
    agg = state.mail if consume else copy.deepcopy(state.mail)
    state.msgs.fold(state.folder(agg), consume)
    return agg


def _by_count(item: tuple[str, int]) -> tuple[int, str]:
    return -item[1], item[0]


def _first_sdom(entry: tuple[int, str, list[bytes]]) -> tuple[int, str]:
    return entry[0], entry[1]


def _mail(
    state: State, agg: MailAgg, config: DetectConfig, site: Site, consume: bool = False
) -> list[Finding]:
    out: list[Finding] = []
    # first, so that a one-shot scan lets go of the pairs (a spam run leaves a pair per
    # recipient) before the relay tables are tallied; listed last, in their order
    bombs = _bombs(agg.multi_pairs(consume), config)
    for relay in agg.relays.values():
        if (relay.addrs and all(site.addr_local(a) for a in relay.addrs)) or (
            not relay.addrs and all(site.domain_local(n) for n in relay.names)
        ):
            continue  # --local-net named this client's network after all
        # a spam run leaves tens of thousands of domains here: one pass, the memo read
        # inline, plain dicts (a Counter's += calls Python for every new key)
        memo, domain_local = site._domain_memo, site.domain_local
        by_status = relay.by_status
        if isinstance(by_status, dict):
            rcpts = 0
            status: dict[str, int] = {}
            domains: dict[str, int] = {}
            for (domain, st), k in by_status.items():
                local = memo.get(domain)
                if local is None:
                    local = domain_local(domain)
                if not local:
                    rcpts += k
                    status[st] = status.get(st, 0) + k
                    domains[domain] = domains.get(domain, 0) + k
        else:  # the C scanner's table: the same pass, in C
            rcpts, status, domains = by_status.tally(memo, domain_local)
        if not rcpts:
            continue
        count = last = 0
        earliest: int | None = None
        with_raw: list[tuple[int, str, list[bytes]]] = []
        for sdom, entry in relay.by_sender.items():
            local = memo.get(sdom)
            if local is None:
                local = domain_local(sdom)
            if local:
                continue
            n, s_first, s_last, s_raw = entry
            count += n
            # the earliest time that is not 0, as the old walk in time order found it
            if s_first and (earliest is None or s_first < earliest):
                earliest = s_first
            last = max(last, s_last)
            if s_raw:
                with_raw.append((s_first, sdom, s_raw))
        # evidence: the raw lines of the earliest sender domains, each giving one at least
        raw: list[bytes] = []
        for _f, _d, s_raw in heapq.nsmallest(config.evidence, with_raw, key=_first_sdom):
            raw.extend(s_raw[: config.evidence - len(raw)])
        first = earliest or 0
        if count < config.relay_min:
            continue
        out.append(
            Finding(
                "relay-abuse",
                relay.service,
                sorted(relay.names) + sorted(relay.addrs),
                count,
                first,
                last,
                "relayed",
                [decode(r) for r in raw],
                # the 20 most frequent, equal counts by name: not in the order the messages
                # were folded, which depends on how the file was cut into byte ranges
                [d for d, _ in heapq.nsmallest(20, domains.items(), key=_by_count)],
                {
                    "recipients": rcpts,
                    "delivery": dict(status),
                    "senders": sorted(relay.senders),
                    "target_domains": len(domains),
                },
            )
        )
    for (service, _key), agg_r in state.rejects.items():
        if agg_r.count >= config.relay_refused_min:
            out.append(
                Finding(
                    "relay-abuse",
                    service,
                    _sources(agg_r),
                    agg_r.count,
                    agg_r.first,
                    agg_r.last,
                    "refused",
                    agg_r.evidence(),
                    sorted(agg_r.targets)[:20],
                    {"attempts": agg_r.count},
                )
            )
    out += _storms(agg.bounces, agg.bounce_raw, config)
    out += bombs
    return out


def _storms(
    bounces: dict[tuple[str, str], dict[int, list[int]]],
    evidence: dict[tuple[str, str], list[bytes]],
    config: DetectConfig,
) -> list[Finding]:
    out = []
    for (service, admin), hours in bounces.items():
        stormy = sorted(
            h
            for h, c in hours.items()
            if c[0] >= config.bounce_per_hour or c[1] >= config.bounce_bytes_per_hour
        )
        if not stormy:
            continue
        total = sum(hours[h][0] for h in stormy)
        size = sum(hours[h][1] for h in stormy)
        out.append(
            Finding(
                "bounce-storm",
                service,
                [],
                total,
                min(hours[h][2] for h in stormy),
                max(hours[h][3] for h in stormy),
                "delivered",
                [decode(r) for r in evidence[(service, admin)]],
                [admin],
                {
                    "bytes": size,
                    "hours": [
                        {"hour": iso(h), "notices": hours[h][0], "bytes": hours[h][1]}
                        for h in stormy
                    ],
                    "notices_all_hours": sum(c[0] for c in hours.values()),
                },
            )
        )
    return out


# the client of a message in the line kept for it: sendmail's from= ("relay=name [addr]")
# and Postfix's smtpd client= ("client=name[addr]")
_CLIENT = re.compile(rb"(?:, relay=|: client=)([^\s\[,]*) ?\[([^\]]*)\]")


def _clients(raw: list[bytes]) -> list[str]:
    """Host names, then addresses, of the clients named in a bomb's kept lines (the pair
    keeps the lines of its first messages and its last)."""
    names: set[str] = set()
    addrs: set[str] = set()
    for line in raw:
        m = _CLIENT.search(line)
        if m is None:
            continue
        name, addr = decode(m.group(1)), decode(m.group(2))
        if name and name != "unknown":
            names.add(name)
        if addr:
            addrs.add(addr.removeprefix("IPv6:"))
    return sorted(names) + sorted(addrs)


def _bombs(pairs: list[tuple[str, Pair]], config: DetectConfig) -> list[Finding]:
    out = []
    for key, pair in pairs:
        if len(pair.times) < config.bomb_min:
            continue
        service, sender, rcpt = key.split("\0", 2)
        times = sorted(pair.times)
        gap = config.bomb_gap
        # the runs without a pause longer than the gap: where each ends (a pair of a busy
        # log has thousands of times; one pass of C-level iteration over them)
        ends = [i for i, (a, b) in enumerate(itertools.pairwise(times), 1) if b - a > gap]
        start = 0
        for i in [*ends, len(times)]:
            n = i - start
            if n >= config.bomb_min:
                raw = pair.raw[: config.evidence - 1] + ([pair.last_raw] if pair.last_raw else [])
                span = max(times[i - 1] - times[start], 1)
                out.append(
                    Finding(
                        "mail-bomb",
                        service or pair.service,
                        _clients(raw),
                        n,
                        times[start],
                        times[i - 1],
                        "delivered",
                        [decode(r) for r in raw],
                        [rcpt],
                        {"per_hour": round(n * 3600 / span, 1), "sender": sender or "<>"},
                    )
                )
            start = i
    return out
