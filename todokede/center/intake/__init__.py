"""Intake: how reports come in and what they are.

The report model (``schema``: ``Report``, ``Triage``, ``StoredReport``), the reporter's web
form read into a report (``forms``), reports by e-mail (``mailin``: Maildir, mbox, a pipe;
``mailform``: IPA's text form; ``smtpin``: the SMTP listener), submission to a center's API
(``submit``) and a report drafted from a scan's findings (``draft``).
"""
