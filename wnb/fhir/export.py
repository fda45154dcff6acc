"""`wnb audit export --format fhir`: the audit log as FHIR R4 NDJSON, one resource a line.

Every audit record as an AuditEvent, in chain order, then a Provenance for every flag and every task,
linking it to the events and evaluations that produced it and the ruleset version in force. Read a page at
a time, so memory does not grow with the log.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from sqlalchemy import Connection

from wnb.fhir import resources as fhir_resources
from wnb.store import fhir_rows

PAGE = 2000


def export_lines(connection: Connection) -> Iterator[str]:
    """Each resource as one line of JSON."""
    offset = 0
    while True:
        _, records = fhir_rows.audit_records(connection, fhir_rows.Search(count=PAGE, offset=offset))
        for record in records:
            yield json.dumps(fhir_resources.audit_event_resource(record), separators=(",", ":"), ensure_ascii=False)
        if len(records) < PAGE:
            break
        offset += PAGE
    for kind in ("flag", "task"):
        offset = 0
        while True:
            _, rows = fhir_rows.items(connection, kind, fhir_rows.Search(count=PAGE, offset=offset))
            for row in rows:
                yield json.dumps(
                    fhir_resources.provenance_resource(kind, row), separators=(",", ":"), ensure_ascii=False
                )
            if len(rows) < PAGE:
                break
            offset += PAGE
