"""The IMAP check of the seed's advice: "make sure the server is IMAP4rev1 or later".

It reads the greeting, asks CAPABILITY (again after STARTTLS where offered), asks ID
where the server supports it, and logs out. It sends no exploit traffic: no LOGIN, no
AUTHENTICATE, nothing over-long."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from todokede.errors import ProbeError
from todokede.probes.wire import MAX_REPLY_LINES, Connection, Limits, printable, within

MAX_LITERAL = 65536

TlsMode = Literal["auto", "none", "starttls", "tls"]

_GREETING = re.compile(r"^\* (OK|PREAUTH|BYE)\b ?(.*)$", re.IGNORECASE)
_CODE_CAPS = re.compile(r"^\[CAPABILITY ([^\]]*)\]", re.IGNORECASE)
_LITERAL = re.compile(rb"\{(\d+)\+?\}$")
_ID_TOKEN = re.compile(r'"((?:[^"\\]|\\.)*)"|(NIL)|([^\s()"]+)', re.IGNORECASE)
# UW imapd of the 1997-98 advisories (CA-97.09, CA-98.09) greeted "IMAP4 v10.x"/"IMAP4rev1 v10.x".
_UW_OLD = re.compile(r"\bIMAP4(?:rev1)? v(\d+)\.(\d+)", re.IGNORECASE)
# Protocol names as old servers announced them in their greeting.
_GREETING_PROTOCOL = re.compile(r"\b(IMAP4rev2|IMAP4rev1|IMAP4|IMAP2bis|IMAP2)\b", re.IGNORECASE)


@dataclass
class ImapResult:
    host: str
    port: int
    tls_mode: str
    greeting: str
    greeting_status: str
    capabilities: list[str]
    capabilities_after_starttls: list[str] | None = None
    id: dict[str, str | None] | None = None
    tls: dict[str, str] | None = None
    elapsed: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def imap4rev1(self) -> bool:
        """IMAP4rev1 or later (IMAP4rev2 counts), by CAPABILITY or failing that the greeting."""
        caps = {c.upper() for c in self.all_capabilities}
        return bool(caps & {"IMAP4REV1", "IMAP4REV2"}) or self.greeting_protocol in (
            "IMAP4rev1",
            "IMAP4rev2",
        )

    @property
    def imap4rev2(self) -> bool:
        return "IMAP4REV2" in {c.upper() for c in self.all_capabilities}

    @property
    def all_capabilities(self) -> list[str]:
        return self.capabilities + (self.capabilities_after_starttls or [])

    @property
    def greeting_protocol(self) -> str | None:
        m = _GREETING_PROTOCOL.search(self.greeting)
        if m is None:
            return None
        return {"imap4rev2": "IMAP4rev2", "imap4rev1": "IMAP4rev1", "imap4": "IMAP4"}.get(
            m.group(1).lower(), m.group(1).upper().replace("BIS", "bis")
        )

    @property
    def protocol(self) -> str:
        """The best protocol level the server shows."""
        if self.imap4rev2:
            return "IMAP4rev2"
        caps = {c.upper() for c in self.all_capabilities}
        if "IMAP4REV1" in caps:
            return "IMAP4rev1"
        if "IMAP4" in caps:
            return "IMAP4"
        return self.greeting_protocol or "unknown"

    @property
    def starttls_offered(self) -> bool:
        return "STARTTLS" in {c.upper() for c in self.capabilities}

    @property
    def server(self) -> str | None:
        """Server software as the server names itself (ID first, then the greeting)."""
        if self.id:
            name = self.id.get("name")
            if name:
                version = self.id.get("version")
                return f"{name} {version}" if version else name
        text = _CODE_CAPS.sub("", self.greeting).strip()
        for known in ("Dovecot", "Cyrus", "Courier", "UW", "Microsoft Exchange", "Zimbra"):
            if known.lower() in text.lower():
                return known
        return None

    @property
    def findings(self) -> list[str]:
        out = []
        if not self.imap4rev1:
            out.append(
                f"speaks {self.protocol}, not IMAP4rev1 or later: replace it with a current "
                "IMAP4rev1 server, and until then let only known hosts reach it with "
                "tcp_wrappers (todokede wrap) — JPCERT/CC 97-0004"
            )
        uw = _UW_OLD.search(self.greeting)
        if uw and int(uw.group(1)) <= 10:
            out.append(
                f"greets like UW imapd v{uw.group(1)}.{uw.group(2)}, the release line of the "
                "1997-98 buffer overflows in LOGIN and AUTHENTICATE (CA-97.09, CA-98.09): "
                "make sure it is patched or upgrade it"
            )
        caps = {c.upper() for c in self.capabilities}
        if self.tls_mode != "tls" and "LOGINDISABLED" not in caps:
            out.append(
                "accepts LOGIN before TLS (no LOGINDISABLED): passwords can cross the "
                "network in clear"
            )
        if self.tls_mode in ("auto", "none") and not self.starttls_offered:
            out.append("no STARTTLS: logins cross the network unencrypted")
        return out + self.notes

    @property
    def verdict(self) -> str:
        if self.imap4rev1:
            return f"{self.protocol}: meets the advice (IMAP4rev1 or later)"
        return f"{self.protocol}: does not meet the advice (IMAP4rev1 or later)"

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "port": self.port,
            "tls_mode": self.tls_mode,
            "greeting": self.greeting,
            "greeting_status": self.greeting_status,
            "capabilities": self.capabilities,
            "capabilities_after_starttls": self.capabilities_after_starttls,
            "id": self.id,
            "server": self.server,
            "protocol": self.protocol,
            "imap4rev1": self.imap4rev1,
            "imap4rev2": self.imap4rev2,
            "starttls": self.starttls_offered,
            "tls": self.tls,
            "verdict": self.verdict,
            "findings": self.findings,
            "elapsed": round(self.elapsed, 3),
        }


@dataclass(frozen=True)
class Response:
    status: str  # OK, NO, BAD
    text: str
    untagged: list[str]


class _Client:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.n = 0

    async def line(self) -> str:
        """One response line, with literals ({N}) read and inlined, as printable text."""
        raw = await self.conn.readline()
        total = len(raw)
        while (m := _LITERAL.search(raw)) is not None:
            size = int(m.group(1))
            total += size
            if total > MAX_LITERAL:
                raise ProbeError(f"{self.conn.where}: response longer than {MAX_LITERAL} bytes")
            try:
                data = await self.conn.reader.readexactly(size)
            except asyncio.IncompleteReadError:
                raise ProbeError(f"{self.conn.where}: server closed the connection") from None
            # inline the literal as a quoted string so one parser reads both forms
            quoted = data.replace(b"\\", b"\\\\").replace(b'"', b'\\"')
            raw = raw[: m.start()] + b'"' + quoted + b'"' + await self.conn.readline()
        return printable(raw)

    async def command(self, command: str) -> Response:
        self.n += 1
        tag = f"t{self.n}"
        await self.conn.send(f"{tag} {command}")
        try:
            return await within(self._response(tag), self.conn.limits.reply)
        except TimeoutError:
            raise ProbeError(
                f"{self.conn.where}: no complete answer to {command.split()[0]} within "
                f"{self.conn.limits.reply:g} s"
            ) from None

    async def _response(self, tag: str) -> Response:
        untagged: list[str] = []
        while True:
            line = await self.line()
            if line.startswith(tag + " "):
                status, _, text = line[len(tag) + 1 :].partition(" ")
                if status.upper() not in ("OK", "NO", "BAD"):
                    raise ProbeError(f"{self.conn.where}: not an IMAP response: {line[:200]!r}")
                return Response(status.upper(), text, untagged)
            if not (line.startswith("* ") or line.startswith("+")):
                raise ProbeError(f"{self.conn.where}: not an IMAP response: {line[:200]!r}")
            if line.upper().startswith("* BYE"):
                raise ProbeError(f"{self.conn.where}: server said goodbye: {line[:200]}")
            untagged.append(line)
            if len(untagged) > MAX_REPLY_LINES:
                raise ProbeError(f"{self.conn.where}: answer longer than {MAX_REPLY_LINES} lines")


def _capabilities(response: Response) -> list[str]:
    caps: list[str] = []
    for line in response.untagged:
        if line.upper().startswith("* CAPABILITY "):
            caps += line.split()[2:]
    return caps


def parse_id(line: str) -> dict[str, str | None] | None:
    """``* ID ("name" "Dovecot" "version" "2.3")`` -> {"name": "Dovecot", ...}."""
    body = line[len("* ID") :].strip()
    if body.upper() == "NIL":
        return None
    values = [
        m.group(1) if m.group(1) is not None else (None if m.group(2) else m.group(3))
        for m in _ID_TOKEN.finditer(body)
    ]
    out: dict[str, str | None] = {}
    for key, value in zip(values[::2], values[1::2], strict=False):
        if key is not None:
            out[key.replace('\\"', '"').replace("\\\\", "\\")] = value
    return out or None


async def imap_probe(
    host: str,
    port: int | None = None,
    *,
    tls: TlsMode = "auto",
    limits: Limits | None = None,
    total: float = 60.0,
) -> ImapResult:
    """Probe an IMAP server. ``tls``: ``auto`` uses STARTTLS where offered, ``starttls``
    requires it, ``tls`` connects with implicit TLS (imaps), ``none`` never uses TLS."""
    limits = limits or Limits()
    port = port or (993 if tls == "tls" else 143)
    started = time.monotonic()
    try:
        async with asyncio.timeout(total):
            return await _probe(host, port, tls, limits, started)
    except TimeoutError:
        raise ProbeError(
            f"{host}:{port}: the IMAP check did not finish within {total:g} s"
        ) from None


async def _probe(host: str, port: int, tls: TlsMode, limits: Limits, started: float) -> ImapResult:
    conn = await Connection.open(host, port, limits, tls=tls == "tls")
    client = _Client(conn)
    try:
        try:
            greeting = await within(client.line(), limits.reply)
        except TimeoutError:
            raise ProbeError(f"{conn.where}: no greeting within {limits.reply:g} s") from None
        m = _GREETING.match(greeting)
        if m is None:
            raise ProbeError(f"{conn.where}: not an IMAP greeting: {greeting[:200]!r}")
        status = m.group(1).upper()
        if status == "BYE":
            raise ProbeError(f"{conn.where}: server refused the session: {greeting[:200]}")
        result = ImapResult(host, port, tls, greeting, status, [], tls=conn.tls)
        response = await client.command("CAPABILITY")
        if response.status == "OK":
            result.capabilities = _capabilities(response)
        else:
            code = _CODE_CAPS.match(m.group(2))
            if code:
                result.capabilities = code.group(1).split()
            result.notes.append(
                f"CAPABILITY answered {response.status} {response.text[:100]}: "
                "the server predates IMAP4"
            )
        caps = {c.upper() for c in result.capabilities}
        if "ID" in caps:
            response = await client.command("ID NIL")
            for line in response.untagged:
                if line.upper().startswith("* ID"):
                    result.id = parse_id(line)
        if tls == "starttls" and "STARTTLS" not in caps:
            raise ProbeError(f"{conn.where}: server does not offer STARTTLS")
        if tls in ("auto", "starttls") and "STARTTLS" in caps:
            response = await client.command("STARTTLS")
            if response.status != "OK":
                if tls == "starttls":
                    raise ProbeError(f"{conn.where}: STARTTLS refused: {response.text[:200]}")
                result.notes.append(f"STARTTLS offered but refused: {response.text[:200]}")
            else:
                try:
                    await conn.start_tls()
                except ProbeError as exc:
                    if tls == "starttls":
                        raise
                    result.notes.append(str(exc))
                    result.elapsed = time.monotonic() - started
                    return result
                result.tls = conn.tls
                response = await client.command("CAPABILITY")
                result.capabilities_after_starttls = (
                    _capabilities(response) if response.status == "OK" else []
                )
        # the server says BYE as it should, or does not care: either way we are done
        with contextlib.suppress(ProbeError, TimeoutError):
            await within(client.command("LOGOUT"), 2.0)
        result.elapsed = time.monotonic() - started
        return result
    finally:
        await conn.close()


def probe_imap(host: str, port: int | None = None, **kwargs: Any) -> ImapResult:
    """Synchronous :func:`imap_probe`."""
    return asyncio.run(imap_probe(host, port, **kwargs))
