"""The ruleset registry (issue 15): the only code that touches the `ruleset_version` table.

Each step (propose, approve, reject, activate, a scheduled version coming into force, the first registration
of WNB_RULES_DIR) is decided by wnb.core.releases on the versions as they stand, written with its audit record in
one transaction, and serialised across replicas (on PostgreSQL an advisory lock, on SQLite the write lock), so two
people acting at once never leave two active versions. Who may take each step is checked by wnb.core.policy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, text, update

from wnb.core import policy, releases
from wnb.core.policy import Action, Principal
from wnb.core.releases import Activation, Release, ReleaseRefused, Status
from wnb.core.ruleset import content_version
from wnb.store.audit import AuditLog
from wnb.store.db import writing
from wnb.store.tables import RulesetReportRow, RulesetVersionRow

_versions = RulesetVersionRow.__table__  # type: ignore[attr-defined]  # SQLModel adds __table__ at class creation
# Any 64-bit number wnb alone uses: registry steps on replicas take turns.
REGISTRY_LOCK = 0x776E62_72756C65
FIRST_START = "wnb"  # who registers WNB_RULES_DIR's ruleset on first start
_FIELDS = [item.name for item in fields(Release)]


def _lock(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": REGISTRY_LOCK})


def _release(row: Any) -> Release:
    values = {name: getattr(row, name) for name in _FIELDS}
    return Release(**{**values, "status": Status(row.status), "rollback": bool(row.rollback)})


def _values(release: Release) -> dict[str, Any]:
    values = asdict(release)
    values["status"] = release.status.value
    return values


def _all(connection: Connection) -> list[Release]:
    query = select(*(_versions.c[name] for name in _FIELDS)).order_by(_versions.c.proposed_at, _versions.c.version)
    return [_release(row) for row in connection.execute(query)]


def _save(connection: Connection, release: Release) -> None:
    connection.execute(update(_versions).where(_versions.c.version == release.version).values(**_values(release)))


def _audit(connection: Connection, at: datetime, actor: str, action: str, release: Release, **detail: Any) -> None:
    log = AuditLog(connection)
    payload = {"version": release.version, "status": release.status.value, **detail}
    log.append(at, actor, action, [f"ruleset:{release.version}"], payload, ruleset_version=release.version)
    log.finish()


def as_text(files: Mapping[str, bytes]) -> dict[str, str]:
    """The files as the registry keeps them (UTF-8 text); a file that is not UTF-8 is refused, naming it."""
    stored = {}
    for name, content in sorted(files.items()):
        try:
            stored[name] = content.decode("utf-8")
        except UnicodeDecodeError:
            raise ReleaseRefused(f"{name}: not UTF-8 text, so it cannot be stored as part of a version") from None
    return stored


def history(db: Engine) -> list[Release]:
    """Every version of the registry, oldest proposal first."""
    with db.connect() as connection:
        return _all(connection)


def find(db: Engine, prefix: str) -> Release:
    """The version whose hash is `prefix` or starts with it (unique); ReleaseRefused otherwise."""
    return releases.find(history(db), prefix)


def files_of(db: Engine, version: str) -> dict[str, bytes]:
    """The files of a stored version, as the ruleset loader takes them."""
    with db.connect() as connection:
        stored = connection.execute(select(_versions.c.files).where(_versions.c.version == version)).scalar_one()
    return {name: content.encode("utf-8") for name, content in stored.items()}


def evidence_of(db: Engine, version: str) -> dict[str, Any]:
    with db.connect() as connection:
        found = connection.execute(select(_versions.c.evidence).where(_versions.c.version == version)).scalar_one()
    return dict(found)


def register_first(db: Engine, files: Mapping[str, bytes], where: str, now: datetime) -> Release:
    """Register and activate `files` (WNB_RULES_DIR's) as active, not yet approved, when the registry has no
    active version; the active version when another replica or command registered one first."""
    stored = as_text(files)
    with writing(db) as connection:
        _lock(connection)
        found = releases.active_of(_all(connection))
        if found is not None:
            return found
        note = f"registered from {where} on first start: active, not yet approved"
        release = releases.first_registration(content_version(files), FIRST_START, note, now)
        connection.execute(insert(_versions).values(**_values(release), files=stored, evidence={"registered": where}))
        _audit(connection, now, FIRST_START, "ruleset_registered", release, directory=where, approved=False)
    return release


def active(db: Engine, now: datetime) -> Release | None:
    """The version in force at `now` (a scheduled version whose time has come is made active first), or None
    when the registry is empty."""
    with db.connect() as connection:
        rows = _all(connection)
    if releases.due(rows, now) is not None:
        with writing(db) as connection:
            _lock(connection)
            step = releases.due(_all(connection), now)
            if step is not None:
                _apply(connection, step, now, "ruleset_activated", FIRST_START, {"scheduled": True})
        with db.connect() as connection:
            rows = _all(connection)
    return releases.active_of(rows)


def propose(
    db: Engine,
    files: Mapping[str, bytes],
    by: Principal,
    note: str | None,
    evidence: dict[str, Any],
    compared_against: str | None,
    now: datetime,
) -> Release:
    """Store `files` as a proposed version with its `evidence`, made against `compared_against` (the active
    version then); refused when the active version changed while the evidence was made."""
    policy.check(by, Action.RULES_PROPOSE)
    stored = as_text(files)
    version = content_version(files)
    with writing(db) as connection:
        _lock(connection)
        rows = _all(connection)
        current = releases.active_of(rows)
        if (current.version if current else None) != compared_against:
            raise ReleaseRefused("the active version changed while the evidence was made: propose again")
        existing = next((row for row in rows if row.version == version), None)
        release = releases.propose(existing, version, by.name, note, compared_against, now)
        values = {**_values(release), "files": stored, "evidence": evidence, "rollback": False}
        if existing is None:
            connection.execute(insert(_versions).values(**values))
        else:
            connection.execute(update(_versions).where(_versions.c.version == version).values(**values))
        detail = {"note": note, "compared_against": compared_against, "again": existing is not None}
        _audit(connection, now, by.actor, "ruleset_proposed", release, **detail, **by.via_detail)
    return release


def decide(db: Engine, prefix: str, by: Principal, approved: bool, reason: str, now: datetime) -> Release:
    """Approve (or reject) the proposed version `prefix` as `by`, a clinical safety officer whose password was
    checked, never its proposer."""
    policy.check(by, Action.RULES_APPROVE)
    with writing(db) as connection:
        _lock(connection)
        release = releases.find(_all(connection), prefix)
        step = releases.approve if approved else releases.reject
        decided = step(release, by.name, by.role, reason, now)
        _save(connection, decided)
        action = "ruleset_approved" if approved else "ruleset_rejected"
        _audit(connection, now, by.actor, action, decided, reason=decided.reason, **by.via_detail)
    return decided


def activate(db: Engine, prefix: str, by: Principal, at: datetime, now: datetime, production: bool) -> Activation:
    """Activate the version `prefix` from `at` (later than `now`: scheduled) as the administrator `by`."""
    policy.check(by, Action.RULES_ACTIVATE)
    with writing(db) as connection:
        _lock(connection)
        rows = _all(connection)
        step = releases.activate(rows, releases.find(rows, prefix), by.name, by.role, at, now, production)
        action = "ruleset_scheduled" if step.release.status is Status.SCHEDULED else "ruleset_activated"
        _apply(connection, step, now, action, by.actor, dict(by.via_detail))
    return step


def _apply(
    connection: Connection, step: Activation, now: datetime, action: str, actor: str, detail: dict[str, Any]
) -> None:
    for changed in (step.unscheduled, step.retired, step.release):
        if changed is not None:
            _save(connection, changed)
    extra = {
        "active_from": step.release.active_from.isoformat() if step.release.active_from else None,
        "approved_by": step.release.approved_by,
        "rollback": step.is_rollback,
        "retired": step.retired.version if step.retired else None,
        "unscheduled": step.unscheduled.version if step.unscheduled else None,
    }
    _audit(connection, now, actor, action, step.release, **extra, **detail)
    if step.retired is not None:
        _audit(connection, now, actor, "ruleset_retired", step.retired, replaced_by=step.release.version)


# ---- the safety case reports (wnb.core.safety_report), each stored once with its hash ----

_reports = RulesetReportRow.__table__  # type: ignore[attr-defined]  # SQLModel adds __table__ at class creation


def store_report(db: Engine, version: str, html: str, sha256: str, actor: str, now: datetime) -> bool:
    """Keep the report `html` of `version` (its hash `sha256`), audited; False when these very bytes were stored
    already (made again from the same record)."""
    with writing(db) as connection:
        found = connection.execute(
            select(_reports.c.sha256).where(_reports.c.version == version, _reports.c.sha256 == sha256)
        ).first()
        if found is not None:
            return False
        connection.execute(
            insert(_reports).values(version=version, sha256=sha256, html=html, made_by=actor, made_at=now)
        )
        log = AuditLog(connection)
        payload = {"version": version, "report_sha256": sha256}
        log.append(now, actor, "ruleset_report_made", [f"ruleset:{version}"], payload, ruleset_version=version)
        log.finish()
    return True


def reports_of(db: Engine, version: str) -> list[dict[str, Any]]:
    """The reports stored of `version` (hash, who made it first and when), oldest first."""
    query = (
        select(_reports.c.sha256, _reports.c.made_by, _reports.c.made_at)
        .where(_reports.c.version == version)
        .order_by(_reports.c.made_at)
    )
    with db.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(query)]
