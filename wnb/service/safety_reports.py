"""The safety case report of a stored ruleset version (issue 15): rendered from the registry's record by the pure
wnb.core.safety_report, and kept in the registry with its SHA-256, so the report a safety officer signed can be
shown again and checked byte for byte."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine

from wnb.core.releases import Release
from wnb.core.safety_report import render_report, sha256_text
from wnb.store import rulesets


@dataclass(frozen=True)
class Report:
    release: Release
    html: str
    sha256: str
    stored: bool  # False: these very bytes were stored before


def make_report(db: Engine, prefix: str, actor: str, now: datetime) -> Report:
    """The report of the version `prefix` (a hash or unique prefix), stored with its hash unless already."""
    release = rulesets.find(db, prefix)
    html = render_report(release, rulesets.files_of(db, release.version), rulesets.evidence_of(db, release.version))
    sha256 = sha256_text(html)
    stored = rulesets.store_report(db, release.version, html, sha256, actor, now)
    return Report(release, html, sha256, stored)
