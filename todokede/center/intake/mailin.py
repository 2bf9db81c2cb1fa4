"""Reports by e-mail: turn each message into a report awaiting triage.

A message may carry IPA's filled-in text form (``key: value`` lines in Japanese or
English, read by ``center.mailform``), free text, or an attached IODEF document.
Whatever it carries, the report keeps the original message as ``Evidence(kind="mail")``;
a message that cannot be read still becomes a report, with ``Triage.note`` saying why,
so that no mail is ever lost.

Sources: a Maildir, an mbox file (``read_mailbox``), or the SMTP listener in
``todokede.center.intake.smtpin``. ``ingest`` stores the reports; the idempotency key is the
message digest, so reading the same mailbox twice stores nothing twice.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import html as htmllib
import mailbox
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage, Message
from email.utils import parseaddr
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from todokede.center.exchange.iodef import from_iodef
from todokede.center.intake.mailform import (
    MAX_NARRATIVE,
    clean,
    parse_form,
    report_from_form,
    short,
)
from todokede.center.intake.schema import Evidence, Report, Triage
from todokede.errors import InputError, ReportError

if TYPE_CHECKING:
    from todokede.center.store import Store

MAX_MESSAGE = 10 * 1024 * 1024  # bytes accepted per message
MAX_EVIDENCE = 200_000  # characters of the original kept (Evidence.text's limit)
MANUAL = "manual triage: "  # Triage.note prefix for what a person must look at

# 1997-era Japanese mail: ISO-2022-JP above all; Shift_JIS from PCs, EUC-JP from Unix.
_CHARSETS = ("utf-8", "iso-2022-jp", "euc-jp", "cp932")


@dataclass
class Intake:
    """One message read: the report(s) it becomes, and the triage they start with."""

    reports: list[Report]
    triage: Triage
    kind: str  # "form", "free-text", "iodef", "unreadable"
    key: str  # sha256 of the message bytes: the idempotency key


# ---------------------------------------------------------------------------- decoding


def decode_bytes(data: bytes, declared: str | None = None) -> tuple[str, str | None]:
    """Text of ``data`` in its declared charset, else the first of the usual Japanese
    mail charsets that decodes it cleanly; (text, charset or None if nothing fitted)."""
    tried = []
    # JIS escape sequences settle it, whatever the header says: 1997's mailers often
    # declared us-ascii (or nothing) for ISO-2022-JP text, which is 7-bit.
    if b"\x1b$B" in data or b"\x1b$@" in data:
        tried.append("iso-2022-jp")
    if declared:
        tried.append(declared.lower())
    tried += [c for c in _CHARSETS if c not in tried]
    for charset in tried:
        try:
            return data.decode(charset), charset
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode("utf-8", "replace"), None


def _part_text(part: Message) -> tuple[str, str | None]:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return "", None
    return decode_bytes(payload, part.get_content_charset())


# ---------------------------------------------------------------------------- messages


def _iodef_parts(msg: Message) -> Iterator[bytes]:
    for part in msg.walk():
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        name = (part.get_filename() or "").lower()
        if ctype in ("application/iodef+xml", "application/xml", "text/xml") or name.endswith(
            ".xml"
        ):
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes) and b"IODEF-Document" in payload:
                yield payload


def _body(msg: Message) -> tuple[str, list[str]]:
    """The message's main text and notes about what could not be decoded."""
    notes = []
    plain = [p for p in msg.walk() if p.get_content_type() == "text/plain" and not p.get_filename()]
    if not plain and not msg.is_multipart() and msg.get_content_maintype() == "text":
        plain = [] if msg.get_content_type() == "text/html" else [msg]
    texts = []
    for part in plain:
        text, charset = _part_text(part)
        if charset is None:
            notes.append("a text part is in no known charset (decoded with replacement)")
        texts.append(text)
    if not texts and any(p.get_content_type() == "text/html" for p in msg.walk()):
        notes.append("the message has only an HTML part")
        for p in msg.walk():
            if p.get_content_type() == "text/html":
                html, _ = _part_text(p)
                texts.append(htmllib.unescape(re.sub(r"<[^>]*>", " ", html)))
    return "\n".join(texts), notes


def _language(text: str) -> str:
    return "ja" if re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", text) else "en"


def _header(msg: Message, name: str) -> str:
    try:
        value = msg.get(name)
        return "" if value is None else str(value)
    except (ValueError, TypeError, IndexError):  # broken encoded-words in hostile headers
        raw = msg.get_all(name, failobj=[])
        return " ".join(str(v) for v in raw)


def original_text(raw: bytes, charset: str | None = None) -> tuple[str, bool]:
    """The message as kept in evidence, decoded for reading (in the charset its text
    declares, else the first that fits) and bounded; (text, truncated)."""
    text, _ = decode_bytes(raw[: MAX_EVIDENCE * 4], charset)
    truncated = len(text) > MAX_EVIDENCE or len(raw) > MAX_EVIDENCE * 4
    return text[:MAX_EVIDENCE], truncated


def _validated(fields: dict[str, Any], notes: list[str]) -> Report:
    """A Report from ``fields``; a field that does not validate is dropped with a note."""
    for _ in range(len(fields) + 1):
        try:
            return Report.model_validate(fields)
        except ValidationError as exc:
            first = exc.errors()[0]
            top = str(first["loc"][0]) if first["loc"] else ""
            notes.append(f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}")
            if top not in fields or top == "evidence":
                break
            del fields[top]
    return Report.model_validate({"evidence": fields.get("evidence", [])})


def read_message(raw: bytes) -> Intake:
    """One message -> the report(s) it becomes. Never raises on content: an unreadable
    message becomes a report for manual triage."""
    key = hashlib.sha256(raw).hexdigest()
    notes: list[str] = []
    if len(raw) > MAX_MESSAGE:
        notes.append(f"message of {len(raw)} bytes is over the {MAX_MESSAGE}-byte limit")
    try:
        msg: Message = email.message_from_bytes(raw[:MAX_MESSAGE], policy=email.policy.default)
        hint = None if msg.is_multipart() else msg.get_content_charset()
    except Exception as exc:  # the email package can fail in many ways on hostile input
        msg, hint = EmailMessage(), None
        notes.append(f"not a readable e-mail message: {type(exc).__name__}: {exc}")
    original, truncated = original_text(raw, hint)
    if truncated:
        notes.append(f"original message kept truncated to {MAX_EVIDENCE} characters")
    message_id = short(_header(msg, "Message-ID")) or None
    evidence = Evidence(kind="mail", source=message_id or "mail", text=original)
    subject = short(_header(msg, "Subject"))
    sender_name, sender_email = parseaddr(_header(msg, "From"))
    sender = {k: short(v) for k, v in (("name", sender_name), ("email", sender_email)) if v}

    reports: list[Report] = []
    kind = "free-text"
    for payload in _iodef_parts(msg):
        try:
            reports += from_iodef(payload)
            kind = "iodef"
        except ReportError as exc:
            notes.append(f"attached IODEF document does not validate: {exc}")
    try:
        body, body_notes = _body(msg)
    except Exception as exc:  # a hostile MIME structure must not lose the mail
        body, body_notes = "", [f"body not readable: {type(exc).__name__}: {exc}"]
    notes += body_notes
    if reports:
        # The IODEF ReportTime is the sender's claim: the center dates the report.
        reports = [
            r.model_copy(
                update={"received": None, "evidence": [*r.evidence, evidence]}
                if len(r.evidence) < 200
                else {"received": None}
            )
            for r in reports
        ]
    else:
        report, kind = _from_body(body, subject, sender, evidence, notes)
        reports = [report]
    note = None
    if notes or kind == "unreadable":
        note = clean(MANUAL + "; ".join(notes or ["nothing could be read"]), MAX_NARRATIVE)
    return Intake(reports=reports, triage=Triage(status="received", note=note), kind=kind, key=key)


def _from_body(
    body: str, subject: str, sender: dict[str, str], evidence: Evidence, notes: list[str]
) -> tuple[Report, str]:
    """The report a message's text gives, a filled-in form or free text, and which."""
    fields, rest = parse_form(body)
    kind = "free-text"
    data: dict[str, Any]
    # Two known keys make a form; one "key: value" line is just prose.
    if len(fields) >= 2:
        kind = "form"
        data = report_from_form(fields, notes=notes)
        if "narrative" not in data and rest and any(line.strip() for line in rest):
            data["narrative"] = clean("\n".join(rest).strip(), MAX_NARRATIVE)
    else:
        data = {"narrative": clean(body.strip(), MAX_NARRATIVE)} if body.strip() else {}
        if not body.strip():
            kind = "unreadable"
            notes.append("no readable text in the message")
    data.setdefault("title", subject or None)
    data.setdefault("language", _language(body or subject))
    if sender and "reporter" not in data:
        data["reporter"] = sender
    elif sender:
        for k, v in sender.items():
            data["reporter"].setdefault(k, v)
    # 届出年月日 is the day the center takes the message in: the Date: header and a
    # form's own date are the sender's claims (kept in the evidence, not used).
    data.pop("received", None)
    data["evidence"] = [evidence]
    if len(body) > MAX_NARRATIVE and kind == "free-text":
        notes.append(f"narrative truncated to {MAX_NARRATIVE} characters")
    return _validated(data, notes), kind


# ---------------------------------------------------------------------------- mailboxes


def read_mailbox(path: Path) -> Iterator[tuple[str, bytes]]:
    """(key, raw bytes) of every message in a Maildir (a directory with cur/new/tmp) or an
    mbox file. The mailbox is only read, never changed."""
    if path.is_dir():
        if not all((path / d).is_dir() for d in ("cur", "new", "tmp")):
            raise InputError("not a Maildir (no cur/, new/ and tmp/)", source=str(path))
        md = mailbox.Maildir(path, factory=None, create=False)
        for key in sorted(md.iterkeys()):
            yield key, md.get_bytes(key)
        return
    if not path.is_file():
        raise InputError("no such Maildir or mbox file", source=str(path))
    with path.open("rb") as fh:
        head = fh.read(5)
    if head and head != b"From ":
        raise InputError(
            "not an mbox file (it does not begin with a 'From ' line)", source=str(path)
        )
    box = mailbox.mbox(path, factory=None, create=False)
    try:
        for key in box.iterkeys():
            yield str(key), box.get_bytes(key)
    finally:
        box.close()


@dataclass(frozen=True)
class Ingested:
    key: str  # the mailbox key or SMTP queue id
    report_ids: tuple[int, ...]
    kind: str
    manual: bool


def ingest_message(store: Store, raw: bytes, *, key: str = "") -> Ingested:
    """Read one message and store its report(s); the same message twice is stored once."""
    intake = read_message(raw)
    ids = []
    for i, report in enumerate(intake.reports):
        stored = store.add_report(
            report, triage=intake.triage, idempotency_key=f"mail:{intake.key}:{i}"
        )
        ids.append(stored.id)
    return Ingested(
        key=key, report_ids=tuple(ids), kind=intake.kind, manual=intake.triage.note is not None
    )


def ingest(
    store: Store,
    messages: Iterable[tuple[str, bytes]],
    *,
    progress: Callable[[Ingested], None] | None = None,
) -> list[Ingested]:
    """Store a report for every message."""
    done = []
    for key, raw in messages:
        result = ingest_message(store, raw, key=key)
        done.append(result)
        if progress is not None:
            progress(result)
    return done
