"""The reporting center, by stage. Each package's ``__init__`` says what it owns.

    intake/       how reports come in: the report model (schema), the web form, e-mail
                  and SMTP intake, submission, a report drafted from a scan's findings
    store/        every query, as a named method of ``Store`` (SQLite, PostgreSQL); the
                  only package that imports SQLAlchemy; ``migrations/`` beside it
    publication/  what the public sees: what a published month contains, its frozen
                  revisions, the monthly publication, statistics, figures, novelty,
                  advisories
    exchange/     partner centers: IODEF, STIX, CSV
    web/          the HTTP shell: routes, templates, the JSON API
    taxonomy      the shared vocabularies (methods, damage, causes, targets...)
    months        the month, ``YYYY-MM``: its one validation

The demo, which runs the whole product, is ``todokede.demo``.
"""
