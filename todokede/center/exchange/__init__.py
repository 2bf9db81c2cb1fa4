"""Exchange: reports to and from partner centers.

IODEF v2, RFC 7970 (``iodef``, with the schemas bundled in ``schemas``), STIX 2.1
(``stix``) and CSV (``csvout``). Without ``personal`` an export carries no personal data
and nothing the reporter wrote (TLP:AMBER).
"""
