"""IODEF v2 (RFC 7970) export and import of reports.

Export (``writer``) builds the XML with lxml; every document it writes validates against
the schema of RFC 7970 section 8, bundled in ``exchange/schemas`` so that validation works
offline. Import (``reader``) parses without network or entity expansion, validates against
the same schema and maps each ``Incident`` to one ``Report``; what does not fit raises
``ReportError`` naming the element path. Both follow the one table in ``mapping``.
"""

from todokede.center.exchange.iodef.mapping import (
    DEFAULT_DOMAIN,
    LANG,
    NS,
    SCHEMA_DIR,
    XML_NS,
    center_domain,
    schema,
)
from todokede.center.exchange.iodef.reader import MAX_DOCUMENT, element_path, from_iodef, validate
from todokede.center.exchange.iodef.writer import to_iodef

__all__ = [
    "DEFAULT_DOMAIN",
    "LANG",
    "MAX_DOCUMENT",
    "NS",
    "SCHEMA_DIR",
    "XML_NS",
    "center_domain",
    "element_path",
    "from_iodef",
    "schema",
    "to_iodef",
    "validate",
]
