"""The store: every query the center makes, as a named method of ``Store``, on SQLite or
PostgreSQL. Nothing outside this package imports SQLAlchemy.

``Store.open(url)`` connects and brings the schema up to date (the Alembic migrations in
``center/migrations``). The parts, one module each: connection and transactions
(``database``), the tables (``tables``) and the rows a report maps to (``rows``), the
reports (``reports``), triage, drafts and additions (``changes``), users and tokens
(``users``, ``auth``), web sessions (``logins``), incidents (``incidents``), published
months (``publications``), the inbox's filters (``filters``), the statistics' counts and
the history of published cases novelty compares with (``statistics``), the inbox's other
questions (``inbox``) and the audit log (``audit``).
"""

from todokede.center.store.audit import AuditEntry
from todokede.center.store.auth import User
from todokede.center.store.incidents import Incident
from todokede.center.store.publications import Revision
from todokede.center.store.reports import NewReport, Store

__all__ = ["AuditEntry", "Incident", "NewReport", "Revision", "Store", "User"]
