"""The SMTP open-relay battery.

All 16 MAIL FROM/RCPT TO pairs of nmap's ``smtp-open-relay`` script, then the tricks of
the older relay testers (quoted local parts, the percent hack, bang paths and source routes
through the target's own names, user@host@relay, a spoofed sender in the target's own
domain, ``localhost`` and unqualified senders). DATA is never sent: a test is "accepted"
when the server answers RCPT TO with 2xx, which is what every relay tester counts.

Speed: Postfix slows every reply by a second after 10 errors in a session and drops the
session at the 21st, so each connection runs at most ``per_session`` tests (RSET between
them) and several connections run at once.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

from todokede.errors import InputError, ProbeError
from todokede.probes.smtp import Reply, SMTPSession
from todokede.probes.wire import Limits

DEFAULT_TO_DOMAIN = "example.com"  # RFC 2606: reserved, no one is bothered by a test to it
LOCAL = "relaytest"
SENDER = "antispam"

Outcome = Literal["accepted", "refused", "inconclusive"]

_DOMAIN = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z0-9-]{2,63}")


def check_domain(domain: str, field: str) -> str:
    """A test domain goes into SMTP commands: only a plain DNS name will do."""
    if not _DOMAIN.fullmatch(domain) or len(domain) > 253:
        raise InputError(f"not a domain name: {domain!r}", field=field)
    return domain


@dataclass(frozen=True)
class RelayTest:
    id: str  # "nmap-1".."nmap-16", "classic-1".."
    technique: str
    mail_from: str  # the reverse-path as sent, with angle brackets: "<>", "<a@b>"
    rcpt_to: str  # the forward-path as sent, with angle brackets


@dataclass(frozen=True)
class TestResult:
    test: RelayTest
    outcome: Outcome
    stage: Literal["mail", "rcpt"]  # which command the reply answered
    code: int
    reply: str

    @property
    def accepted(self) -> bool:
        return self.outcome == "accepted"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.test.id,
            "technique": self.test.technique,
            "mail_from": self.test.mail_from,
            "rcpt_to": self.test.rcpt_to,
            "accepted": self.accepted,
            "outcome": self.outcome,
            "stage": self.stage,
            "code": self.code,
            "reply": self.reply,
        }


@dataclass
class RelayResult:
    host: str
    port: int
    banner: str
    to_domain: str
    from_domain: str
    starttls: bool
    tls: dict[str, str] | None
    tests: list[TestResult]
    connections: int
    elapsed: float
    software: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def open(self) -> bool:
        return any(t.accepted for t in self.tests)

    @property
    def verdict(self) -> Literal["open", "closed", "inconclusive"]:
        """Open when any test was accepted; inconclusive when too many answers were
        temporary failures or refusals of the test domain itself, not of relaying."""
        if self.open:
            return "open"
        unsure = sum(t.outcome == "inconclusive" for t in self.tests)
        return "inconclusive" if unsure * 4 > len(self.tests) else "closed"

    def to_dict(self) -> dict[str, Any]:
        accepted = [t for t in self.tests if t.accepted]
        return {
            "open": self.open,
            "verdict": self.verdict,
            "host": self.host,
            "port": self.port,
            "banner": self.banner,
            "software": self.software,
            "to_domain": self.to_domain,
            "from_domain": self.from_domain,
            "starttls": self.starttls,
            "tls": self.tls,
            "accepted": len(accepted),
            "total": len(self.tests),
            "nmap_accepted": sum(t.test.id.startswith("nmap-") for t in accepted),
            "connections": self.connections,
            "elapsed": round(self.elapsed, 3),
            "warnings": self.warnings,
            "tests": [t.to_dict() for t in self.tests],
        }


def _dedupe(tests: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    seen: set[tuple[str, str]] = set()
    out = []
    for technique, mail_from, rcpt_to in tests:
        if (mail_from, rcpt_to) not in seen:
            seen.add((mail_from, rcpt_to))
            out.append((technique, mail_from, rcpt_to))
    return out


def parent_domain(host: str | None) -> str | None:
    """``mx.example.co.jp`` -> ``example.co.jp``: the target's own mail domain, as the
    old testers guessed it (drop the first label when three or more remain)."""
    if host is None or host.startswith("["):
        return None
    labels = host.split(".")
    return ".".join(labels[1:]) if len(labels) >= 3 else None


def battery(
    ip: str,
    banner_host: str | None,
    *,
    to_domain: str = DEFAULT_TO_DOMAIN,
    from_domain: str | None = None,
) -> list[RelayTest]:
    """The tests in order: nmap's 16 (``nmap-N``) and then the classic extras."""
    d = check_domain(to_domain, "to_domain")
    f = check_domain(from_domain, "from_domain") if from_domain is not None else d
    lit = f"[IPv6:{ip}]" if ":" in ip else f"[{ip}]"
    b = banner_host or lit
    own = parent_domain(banner_host)
    nmap = [
        ("null sender", "<>", f"<{LOCAL}@{d}>"),
        ("outside sender", f"<{SENDER}@{d}>", f"<{LOCAL}@{d}>"),
        ("sender at the server's name", f"<{SENDER}@{b}>", f"<{LOCAL}@{d}>"),
        ("sender at the server's address", f"<{SENDER}@{lit}>", f"<{LOCAL}@{d}>"),
        ("percent hack via address", f"<{SENDER}@{lit}>", f"<{LOCAL}%{d}@{lit}>"),
        ("percent hack via name", f"<{SENDER}@{lit}>", f"<{LOCAL}%{d}@{b}>"),
        ("quoted local part", f"<{SENDER}@{lit}>", f'<"{LOCAL}@{d}">'),
        ("quoted percent", f"<{SENDER}@{lit}>", f'<"{LOCAL}%{d}">'),
        ("user@host@relay via address", f"<{SENDER}@{lit}>", f"<{LOCAL}@{d}@{lit}>"),
        ("quoted user@host via address", f"<{SENDER}@{lit}>", f'<"{LOCAL}@{d}"@{lit}>'),
        ("user@host@relay via name", f"<{SENDER}@{lit}>", f"<{LOCAL}@{d}@{b}>"),
        ("source route via address", f"<{SENDER}@{lit}>", f"<@{lit}:{LOCAL}@{d}>"),
        ("source route via name", f"<{SENDER}@{lit}>", f"<@{b}:{LOCAL}@{d}>"),
        ("bang path", f"<{SENDER}@{lit}>", f"<{d}!{LOCAL}>"),
        ("bang path via address", f"<{SENDER}@{lit}>", f"<{d}!{LOCAL}@{lit}>"),
        ("bang path via name", f"<{SENDER}@{lit}>", f"<{d}!{LOCAL}@{b}>"),
    ]
    plain = f"<{LOCAL}@{d}>"
    extra: list[tuple[str, str, str]] = []
    if f != d:
        extra.append(("sender in the chosen outside domain", f"<{SENDER}@{f}>", plain))
    if own:
        extra.append(("spoofed sender in the server's own domain", f"<{SENDER}@{own}>", plain))
        extra.append(("spoofed postmaster of the server's domain", f"<postmaster@{own}>", plain))
    extra += [
        ("localhost sender", "<spamtest@localhost>", plain),
        ("unqualified sender", f"<{SENDER}>", plain),
        ("unqualified postmaster sender", "<postmaster>", plain),
        ("trailing dot in the domain", f"<{SENDER}@{lit}>", f"<{LOCAL}@{d}.>"),
        ("upper-case domain", f"<{SENDER}@{lit}>", f"<{LOCAL}@{d.upper()}>"),
        ("unquoted unqualified percent", f"<{SENDER}@{lit}>", f"<{LOCAL}%{d}>"),
        ("percent hack via localhost", f"<{SENDER}@{lit}>", f"<{LOCAL}%{d}@localhost>"),
        ("double percent hack", f"<{SENDER}@{lit}>", f"<{LOCAL}%{d}%{b}@{lit}>"),
        ("quoted user@host via localhost", f"<{SENDER}@{lit}>", f'<"{LOCAL}@{d}"@localhost>'),
        ("bang path via localhost", f"<{SENDER}@{lit}>", f"<{d}!{LOCAL}@localhost>"),
        ("bang path through the server", f"<{SENDER}@{lit}>", f"<{b}!{d}!{LOCAL}>"),
        ("source route via localhost", f"<{SENDER}@{lit}>", f"<@localhost:{LOCAL}@{d}>"),
        ("two-hop source route", f"<{SENDER}@{lit}>", f"<@{lit},@{b}:{LOCAL}@{d}>"),
    ]
    if own:
        extra += [
            ("percent hack via own domain", f"<{SENDER}@{lit}>", f"<{LOCAL}%{d}@{own}>"),
            ("user@host@relay via own domain", f"<{SENDER}@{lit}>", f"<{LOCAL}@{d}@{own}>"),
            ("quoted user@host via own domain", f"<{SENDER}@{lit}>", f'<"{LOCAL}@{d}"@{own}>'),
            ("source route via own domain", f"<{SENDER}@{lit}>", f"<@{own}:{LOCAL}@{d}>"),
            ("bang path via own domain", f"<{SENDER}@{lit}>", f"<{d}!{LOCAL}@{own}>"),
        ]
    tests = [RelayTest(f"nmap-{i}", *t) for i, t in enumerate(nmap, 1)]
    seen = {(t.mail_from, t.rcpt_to) for t in tests}
    extra = [t for t in _dedupe(extra) if (t[1], t[2]) not in seen]
    tests += [RelayTest(f"classic-{i}", *t) for i, t in enumerate(extra, 1)]
    return tests


# Refusals of the test domain itself (unknown domain, null MX) say nothing about relaying.
_DOMAIN_REFUSAL = re.compile(
    r"\b[45]\.1\.(?:2|8|10)\b|domain not found|does not accept mail|host not found|"
    r"name service error",
    re.IGNORECASE,
)


def classify(reply: Reply) -> Outcome:
    if reply.ok:
        return "accepted"
    if reply.code < 500 or _DOMAIN_REFUSAL.search(reply.text):
        return "inconclusive"
    return "refused"


def software_of(banner: str) -> str | None:
    for name in ("Postfix", "Sendmail", "Exim", "Microsoft ESMTP", "qmail", "OpenSMTPD"):
        if name.lower() in banner.lower():
            return name
    return None


class _Runner:
    def __init__(
        self,
        host: str,
        port: int,
        limits: Limits,
        helo: str,
        starttls: bool,
    ) -> None:
        self.host, self.port, self.limits = host, port, limits
        self.helo, self.starttls = helo, starttls
        self.connections = 0
        self.tls: dict[str, str] | None = None
        self.deadline = float("inf")  # checked between tests, whatever cancellation does

    async def session(self) -> SMTPSession:
        s = await SMTPSession.open(self.host, self.port, self.limits)
        self.connections += 1
        try:
            await s.hello(self.helo)
            if self.starttls:
                await s.starttls(self.helo)
                self.tls = s.conn.tls
        except BaseException:
            await s.close()
            raise
        return s

    async def one(self, s: SMTPSession, test: RelayTest) -> TestResult | None:
        """Run one test; None when the server closed the session (421) and it must be
        retried on a new connection."""
        reply = await s.command(f"MAIL FROM:{test.mail_from}")
        if s.closed:
            return None
        if not reply.ok:
            await s.command("RSET")
            outcome: Outcome = "inconclusive" if reply.code < 500 else "refused"
            return TestResult(test, outcome, "mail", reply.code, reply.text)
        reply = await s.command(f"RCPT TO:{test.rcpt_to}")
        if s.closed:
            return None
        result = TestResult(test, classify(reply), "rcpt", reply.code, reply.text)
        await s.command("RSET")
        return result

    async def chunk(
        self, s: SMTPSession | None, tests: list[RelayTest], results: dict[str, TestResult]
    ) -> None:
        pending = deque(tests)
        retries = 0
        try:
            while pending:
                if time.monotonic() > self.deadline:
                    raise TimeoutError
                if s is None or s.closed:
                    if s is not None:
                        await s.close()
                    s = await self.session()
                result = await self.one(s, pending[0])
                if result is None:
                    retries += 1
                    if retries > 3:
                        raise ProbeError(
                            f"{self.host}:{self.port}: the server keeps closing the session (421)"
                        )
                    continue
                results[pending.popleft().id] = result
                retries = 0  # only a server that drops us before every test gives up
        finally:
            if s is not None:
                await s.close()


async def relay_battery(
    host: str,
    port: int = 25,
    *,
    to_domain: str = DEFAULT_TO_DOMAIN,
    from_domain: str | None = None,
    starttls: bool = False,
    limits: Limits | None = None,
    total: float = 120.0,
    per_session: int = 8,
    concurrency: int = 4,
) -> RelayResult:
    """Run the battery against ``host``; ProbeError when the server cannot be checked."""
    limits = limits or Limits()
    check_domain(to_domain, "to_domain")
    from_domain = check_domain(from_domain, "from_domain") if from_domain is not None else to_domain
    started = time.monotonic()
    runner = _Runner(host, port, limits, from_domain, starttls)
    runner.deadline = started + total
    results: dict[str, TestResult] = {}
    stopped: str | None = None  # why the battery ended early, when it did
    tests: list[RelayTest] = []
    try:
        async with asyncio.timeout(total):
            first = await runner.session()
            banner = first.greeting.text
            try:
                addr = first.conn.writer.get_extra_info("peername")[0]
                tests = battery(
                    addr,
                    first.banner_host,
                    to_domain=to_domain,
                    from_domain=from_domain,
                )
            except BaseException:
                await first.close()
                raise
            chunks = deque(tests[i : i + per_session] for i in range(0, len(tests), per_session))

            async def worker(s: SMTPSession | None) -> None:
                while chunks:
                    await runner.chunk(s, chunks.popleft(), results)
                    s = None

            try:
                async with asyncio.TaskGroup() as group:
                    group.create_task(worker(first))
                    for _ in range(min(concurrency, len(chunks)) - 1):
                        group.create_task(worker(None))
            except* ProbeError as eg:
                stopped = str(eg.exceptions[0])
            except* TimeoutError:
                raise TimeoutError from None
    except TimeoutError:
        stopped = f"{host}:{port}: the relay battery did not finish within {total:g} s"
    if stopped is not None and not any(r.accepted for r in results.values()):
        raise ProbeError(stopped)
    # An accepted relay is proof enough: a server that then fails is still open.
    ordered = [results[t.id] for t in tests if t.id in results]
    result = RelayResult(
        host=host,
        port=port,
        banner=banner,
        to_domain=to_domain,
        from_domain=from_domain,
        starttls=starttls,
        tls=runner.tls,
        tests=ordered,
        connections=runner.connections,
        elapsed=time.monotonic() - started,
        software=software_of(banner),
    )
    if stopped is not None:
        result.warnings.append(f"stopped after {len(ordered)} of {len(tests)} tests: {stopped}")
    if result.verdict == "inconclusive":
        result.warnings.append(
            "most tests got temporary failures or refusals of the test domain itself; "
            "choose an outside domain the server can resolve with --to-domain"
        )
    return result


def probe_relay(host: str, port: int = 25, **kwargs: Any) -> RelayResult:
    """Synchronous :func:`relay_battery`."""
    return asyncio.run(relay_battery(host, port, **kwargs))


ADVICE: dict[str, list[str]] = {
    "Postfix": [
        "mynetworks = 127.0.0.0/8 [::1]/128   (only hosts you administer; "
        "never 0.0.0.0/0 or a whole provider's range)",
        "smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, "
        "reject_unauth_destination",
        "relay_domains =   (only domains you are a backup MX for)",
        "then: postfix reload; check with: postconf -n | grep -E "
        "'mynetworks|relay'  or  todokede probe relay --config main.cf",
    ],
    "Sendmail": [
        "8.9 and later refuse relaying by default: remove FEATURE(`promiscuous_relay'), "
        "FEATURE(`relay_entire_domain'), FEATURE(`loose_relay_check') and "
        "FEATURE(`relay_based_on_MX') from the .mc file and rebuild sendmail.cf",
        "list only your own hosts in /etc/mail/relay-domains or in the access map "
        "(Connect:192.0.2 RELAY), then restart sendmail",
        "8.8 and older: install the check_rcpt anti-relay rulesets or upgrade",
    ],
    "Exim": [
        "hostlist relay_from_hosts = localhost   (plus only the networks you administer)",
        "domainlist relay_to_domains =   (only domains you are a backup MX for)",
        "in acl_check_rcpt keep: accept hosts = +relay_from_hosts, then "
        "require message = relay not permitted / domains = +local_domains : +relay_to_domains",
    ],
}


def advice_for(software: str | None) -> list[tuple[str, list[str]]]:
    """What to change, the detected software first (all three when unknown)."""
    names = list(ADVICE)
    if software in ADVICE:
        names.remove(software)
        names.insert(0, software)
    return [(name, ADVICE[name]) for name in names]
