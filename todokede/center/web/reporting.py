"""The reporter's pages: the report form (new, draft, fill from ``scan --json``), the list of
their own reports, one report with its additions, and sending an addition.

A draft is a stored report with status ``draft``: not received, not counted. Saving it
again replaces its content (``Store.update_report``); sending it sets the received date and
the status ``received`` in the same transaction.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from starlette.datastructures import FormData, UploadFile
from starlette.responses import Response

from todokede.center import taxonomy
from todokede.center.intake import forms
from todokede.center.intake.schema import ID_MAX, Addition, Evidence, StoredReport, Triage
from todokede.center.store.auth import User
from todokede.center.taxonomy import Lang
from todokede.center.web import analysis, i18n
from todokede.center.web.evidence import finding_rows
from todokede.center.web.shapes import Summary, without_note
from todokede.center.web.site import Ctx
from todokede.errors import AccessDenied, InputError, NotDraft, PageError, ReportError

MAX_FILE = 1_000_000  # bytes of one attached log file


def owned(ctx: Ctx, report_id: int, user: User) -> StoredReport:
    """A report the user may see; others' reports are "not found", not "forbidden",
    so ids cannot be probed."""
    owner = ctx.store.report_owner(report_id)
    if not user.may_read(owner):
        raise PageError(404, "not_found")
    return ctx.store.get_report(report_id, actor=user.name)


def my_reports(ctx: Ctx) -> Response:
    user = ctx.need_user()
    offset = _int(ctx.request.query_params.get("offset"), 0)
    reports, total = ctx.store.list_reports(
        owner=user.name, limit=50, offset=offset, newest_first=True
    )
    data = {"reports": [Summary.of(sr) for sr in reports], "total": total, "offset": offset}
    return ctx.answer("my_reports.html", data, reports=reports)


def new_form(ctx: Ctx) -> Response:
    values = forms.empty_values(ctx.lang)
    if ctx.as_json:  # the form's twin: what it asks, and the codes each choice takes
        return ctx.json({"values": values, **form_vocabulary(ctx.lang)})
    return _form_page(ctx, values, [], {}, None)


def form_vocabulary(lang: Lang) -> dict[str, Any]:
    """The report form's fields (name: label) and its choices (vocabulary: codes with
    their labels), in ``lang``."""
    return {
        "fields": {name: i18n.t(key, lang) for name, key in forms.FIELD_LABELS.items()},
        "choices": {
            vocabulary: [{"code": code, "label": term.label(lang)} for code, term in terms.items()]
            for vocabulary, terms in taxonomy.VOCABULARIES.items()
        },
    }


def new_post(ctx: Ctx) -> Response:
    user = ctx.need_user()
    form = ctx.form()
    return _save(ctx, user, form, None)


def edit_form(ctx: Ctx, report_id: int) -> Response:
    user = ctx.need_user()
    stored = owned(ctx, report_id, user)
    if stored.triage.status != "draft" or stored.owner != user.name:
        return ctx.redirect(f"/reports/{report_id}")
    values = forms.to_values(stored.report)
    return _form_page(ctx, values, list(stored.report.evidence), {}, stored)


def edit_post(ctx: Ctx, report_id: int) -> Response:
    user = ctx.need_user()
    form = ctx.form()
    stored = owned(ctx, report_id, user)
    if stored.owner != user.name:
        raise AccessDenied("only the report's owner may change it")
    if stored.triage.status != "draft":
        raise NotDraft(f"report {report_id} has been sent; add to it instead")
    return _save(ctx, user, form, stored)


def view(ctx: Ctx, report_id: int) -> Response:
    user = ctx.need_user()
    stored = owned(ctx, report_id, user)
    data: dict[str, Any] = {
        "report": stored if user.is_analyst else without_note(stored),
        "findings": finding_rows(stored.report, ctx.lang),
        "mine": stored.owner == user.name,
    }
    if user.is_analyst:
        data |= analysis.report_context(ctx, stored)
    return ctx.answer("report.html", data, sr=stored)


def add_addition(ctx: Ctx, report_id: int) -> Response:
    user = ctx.need_user()
    form = ctx.form()
    stored = owned(ctx, report_id, user)
    if stored.triage.status == "draft":
        raise PageError(409, "draft_no_addition")
    evidence = _new_evidence(form)
    text = str(form.get("addition.text") or "").strip()
    if not text and not evidence:
        raise InputError("empty addition")
    try:
        addition = Addition(at=datetime.now(UTC), text=text, evidence=evidence)
    except ValueError as exc:
        raise ReportError(str(exc), field="addition") from exc
    ctx.store.add_addition(report_id, addition, actor=user.name)
    ctx.flash("addition_saved")
    return ctx.redirect(f"/reports/{report_id}#additions")


def _save(ctx: Ctx, user: User, form: FormData, stored: StoredReport | None) -> Response:
    action = form.get("action")
    values = forms.read_values(form, form.getlist)
    evidence = forms.read_carried(form.get("carried_evidence"))
    remove = {v for v in form.getlist("evidence.remove") if isinstance(v, str)}
    evidence = [e for i, e in enumerate(evidence) if str(i) not in remove]
    if action == "fill":
        return _fill(ctx, form, values, evidence, stored)
    try:
        evidence += _new_evidence(form)
    except InputError as exc:  # too big: say so and keep everything typed
        return _form_page(ctx, values, evidence, {"evidence.text": str(exc)}, stored, status=422)
    values["evidence.text"] = values["evidence.source"] = ""
    report, errors = forms.to_report(values, evidence, stored.report if stored else None)
    if report is None:
        return _form_page(ctx, values, evidence, errors, stored, status=422)
    if forms.is_empty(report):
        empty = {"title": ctx.t("empty_report"), "narrative": ctx.t("empty_report")}
        return _form_page(ctx, values, evidence, empty, stored, status=422)
    sending = action == "send"
    if sending:
        report = report.model_copy(update={"received": datetime.now(UTC).date()})
    if stored is None:
        key = form.get("form_id")
        saved = ctx.store.add_report(
            report,
            owner=user.name,
            triage=Triage(status="received" if sending else "draft"),
            idempotency_key=key if isinstance(key, str) and key else None,
        )
    else:
        saved = ctx.store.update_report(stored.id, report, actor=user.name, send=sending)
    ctx.flash("sent" if sending else "draft_saved")
    if sending:
        return ctx.redirect(f"/reports/{saved.id}")
    return ctx.redirect(f"/reports/{saved.id}/edit")


def _fill(
    ctx: Ctx,
    form: FormData,
    values: forms.Values,
    evidence: list[Evidence],
    stored: StoredReport | None,
) -> Response:
    """The form again, filled from the pasted or attached ``scan --json`` findings."""
    scan_text = str(values.get("scan_json") or "")
    upload = form.get("scan_file")
    try:
        if isinstance(upload, UploadFile) and upload.filename:
            scan_text += "\n" + _read_upload(upload)
        findings = forms.parse_findings(scan_text)
        drafted = forms.draft(findings, ctx.lang) if findings else None
    except InputError as exc:
        return _form_page(ctx, values, evidence, {"scan_json": str(exc)}, stored)
    if drafted is None:
        return _form_page(ctx, values, evidence, {"scan_json": "no findings"}, stored)
    values = forms.merge(values, drafted)
    values["scan_json"] = ""
    notice = "filled_from_scan"
    return _form_page(ctx, values, evidence + drafted.evidence, {}, stored, notice)


def _form_page(
    ctx: Ctx,
    values: forms.Values,
    evidence: list[Evidence],
    errors: dict[str, str],
    stored: StoredReport | None,
    notice: str | None = None,
    status: int = 200,
) -> Response:
    return ctx.render(
        "report_form.html",
        status=status,
        v=values,
        evidence=evidence,
        carried=forms.carried(evidence),
        errors=errors,
        field_labels=forms.FIELD_LABELS,
        stored=stored,
        notice=notice,
        form_id=secrets.token_urlsafe(16),
        action=f"/reports/{stored.id}/edit" if stored else "/reports/new",
    )


def _read_upload(upload: UploadFile) -> str:
    data = upload.file.read(MAX_FILE + 1)
    if len(data) > MAX_FILE:
        raise ReportError(f"a file may have at most {MAX_FILE:,} bytes", source=upload.filename)
    return data.decode("utf-8", errors="replace").replace("\x00", "")


def _new_evidence(form: FormData) -> list[Evidence]:
    """The excerpt typed or pasted, and the attached file, as log evidence."""
    out: list[Evidence] = []
    prefix = "addition." if "addition.text" in form else ""
    text = str(form.get(f"{prefix}evidence.text") or "").replace("\x00", "")
    source = str(form.get(f"{prefix}evidence.source") or "").strip()[:300] or None
    try:
        if text.strip():
            out.append(Evidence(kind="log", source=source, text=text))
        upload = form.get(f"{prefix}evidence.file")
        if isinstance(upload, UploadFile) and upload.filename:
            content = _read_upload(upload)
            if content.strip():
                name = upload.filename[:300]
                out.append(Evidence(kind="log", source=source or name, text=content))
    except ValueError as exc:
        raise ReportError(str(exc), field="evidence") from exc
    return out


def _int(value: str | None, default: int) -> int:
    try:
        return min(max(0, int(value or default)), ID_MAX)
    except ValueError:
        return default
