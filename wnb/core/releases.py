"""The life of a ruleset version in the registry (issue 15): which step each status allows, as pure functions.

A version (the content hash of its files) is `proposed` with its evidence, then `approved` or `rejected` by a
clinical safety officer who did not propose it, then `active` (or `scheduled` for a later time) when an
administrator activates it; the version it replaces becomes `retired`, and a retired version may be activated
again (a rollback, marked for review). Evidence compares a proposal with the version active when it was made,
so a version whose evidence compared against another active version must be proposed again.

Nothing here reads the clock, the database or the settings: the store hands in the versions and `now`, and
applies the step these functions return. Each refusal is a ReleaseRefused whose message says why and what to do.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from wnb.core.domain import Role
from wnb.core.errors import WnbError

# The shortest prefix of a version a person may type for it.
MIN_PREFIX = 6


class Status(StrEnum):
    PROPOSED = "proposed"
    APPROVED = "approved"
    SCHEDULED = "scheduled"
    ACTIVE = "active"
    RETIRED = "retired"
    REJECTED = "rejected"


class ReleaseRefused(WnbError):
    """A step the version's status, the person or the registry does not allow; the message says why."""


@dataclass(frozen=True)
class Release:
    """One version of the registry as it stands: who did each step, when, and why."""

    version: str
    status: Status
    proposed_by: str
    proposed_at: datetime
    note: str | None = None
    approved_by: str | None = None
    approved_at: datetime | None = None
    reason: str | None = None  # the approver's or rejecter's reason
    rejected_by: str | None = None
    rejected_at: datetime | None = None
    activated_by: str | None = None
    activated_at: datetime | None = None
    active_from: datetime | None = None
    retired_at: datetime | None = None
    compared_against: str | None = None  # the version active when its evidence was made (None: none was)
    rollback: bool = False  # activated again after it was retired: marked for review

    @property
    def short(self) -> str:
        return self.version[:12]

    @property
    def is_approved(self) -> bool:
        return self.approved_by is not None


@dataclass(frozen=True)
class Activation:
    """What activating a version does: the version as it becomes, and the active version it retires (if now)."""

    release: Release
    retired: Release | None
    unscheduled: Release | None  # a version that was scheduled and is now only approved again

    @property
    def is_rollback(self) -> bool:
        return self.release.rollback


def find(releases: list[Release], prefix: str) -> Release:
    """The one version whose hash starts with `prefix` (the full hash, or a unique prefix)."""
    wanted = prefix.strip().lower()
    if len(wanted) < MIN_PREFIX:
        raise ReleaseRefused(f"version {prefix!r}: give at least {MIN_PREFIX} characters of the version's hash")
    found = [release for release in releases if release.version.startswith(wanted)]
    if not found:
        raise ReleaseRefused(f"no ruleset version starts with {prefix!r} (see `wnb rules history`)")
    if len(found) > 1:
        shown = ", ".join(release.short for release in found)
        raise ReleaseRefused(f"version {prefix!r} is ambiguous: it starts {shown}; give more characters")
    return found[0]


def active_of(releases: list[Release]) -> Release | None:
    """The active version, if the registry has one."""
    return next((release for release in releases if release.status is Status.ACTIVE), None)


def scheduled_of(releases: list[Release]) -> Release | None:
    return next((release for release in releases if release.status is Status.SCHEDULED), None)


def first_registration(version: str, by: str, note: str, now: datetime) -> Release:
    """The version of WNB_RULES_DIR, registered and activated on first start: active, not yet approved."""
    return Release(
        version=version,
        status=Status.ACTIVE,
        proposed_by=by,
        proposed_at=now,
        note=note,
        activated_by=by,
        activated_at=now,
        active_from=now,
    )


def propose(
    existing: Release | None, version: str, by: str, note: str | None, active: str | None, now: datetime
) -> Release:
    """The version proposed by `by`, its evidence compared against `active`.

    The same content proposed again is refused while its evidence still holds; when the active version has
    moved since, its evidence is made again and any approval is void (the safety officer signs the new one).
    """
    if existing is not None:
        if existing.status in (Status.ACTIVE, Status.SCHEDULED):
            raise ReleaseRefused(f"version {existing.short} is {existing.status.value} already")
        if existing.status is Status.RETIRED:
            raise ReleaseRefused(
                f"version {existing.short} was active before and is retired: activate it again to roll back "
                f"(`wnb rules activate {existing.short} --by NAME`)"
            )
        if existing.compared_against == active:
            if existing.status is Status.REJECTED:
                raise ReleaseRefused(
                    f"version {existing.short} was rejected by {existing.rejected_by}: {existing.reason}; "
                    "change it and propose the changed ruleset"
                )
            raise ReleaseRefused(
                f"version {existing.short} is {existing.status.value} already, with evidence against the active "
                "version: nothing to do"
            )
    return Release(
        version=version, status=Status.PROPOSED, proposed_by=by, proposed_at=now, note=note, compared_against=active
    )


def _decider(release: Release, by: str, role: Role | None, verb: str) -> None:
    if role is not Role.CLINICAL_SAFETY_OFFICER:
        shown = role.value if role else "none"
        raise ReleaseRefused(
            f"only a {Role.CLINICAL_SAFETY_OFFICER.value} may {verb} a ruleset version; {by} has the role {shown}"
        )
    if by == release.proposed_by:
        raise ReleaseRefused(
            f"{by} proposed version {release.short} and so may not {verb} it: another safety officer must"
        )
    if release.status is not Status.PROPOSED:
        raise ReleaseRefused(f"version {release.short} is {release.status.value}: only a proposed version is {verb}d")


def _reason(reason: str) -> str:
    text = reason.strip()
    if not text:
        raise ReleaseRefused("give the reason for the decision (--reason)")
    return text


def approve(release: Release, by: str, role: Role | None, reason: str, now: datetime) -> Release:
    """The version approved by the clinical safety officer `by` (never its proposer), for `reason`."""
    _decider(release, by, role, "approve")
    return replace(release, status=Status.APPROVED, approved_by=by, approved_at=now, reason=_reason(reason))


def reject(release: Release, by: str, role: Role | None, reason: str, now: datetime) -> Release:
    """The version rejected by the clinical safety officer `by` (never its proposer), for `reason`."""
    _decider(release, by, role, "reject")
    return replace(release, status=Status.REJECTED, rejected_by=by, rejected_at=now, reason=_reason(reason))


def activate(
    releases: list[Release],
    release: Release,
    by: str,
    role: Role | None,
    at: datetime,
    now: datetime,
    production: bool,
) -> Activation:
    """Activate `release` from `at` (now or later: later makes it scheduled), as the administrator `by`.

    Refused for a version never approved in production, and for a version whose evidence compared against a
    version other than the active one (propose it again). A retired version is activated again as a rollback:
    its old evidence stands, and it is marked for review. Activating now unschedules a scheduled version.
    """
    if role is not Role.ADMIN:
        raise ReleaseRefused(f"only an {Role.ADMIN.value} may activate a ruleset version; {by} has the role {role}")
    active = active_of(releases)
    scheduled = scheduled_of(releases)
    if release.status in (Status.ACTIVE, Status.SCHEDULED, Status.REJECTED):
        raise ReleaseRefused(f"version {release.short} is {release.status.value}: it cannot be activated")
    if production and not release.is_approved:
        raise ReleaseRefused(
            f"version {release.short} is not approved, and in production (WNB_MODE=production) only a version a "
            f"{Role.CLINICAL_SAFETY_OFFICER.value} approved is activated"
        )
    rollback = release.status is Status.RETIRED
    current = active.version if active else None
    if not rollback and release.compared_against != current:
        raise ReleaseRefused(
            f"version {release.short}'s evidence compared it with {_short(release.compared_against)}, but the active "
            f"version is now {_short(current)}: propose it again (`wnb rules propose DIR --by NAME`)"
        )
    if at > now:
        if scheduled is not None:
            raise ReleaseRefused(
                f"version {scheduled.short} is scheduled already (from {scheduled.active_from}); activate one at a time"
            )
        became = replace(release, status=Status.SCHEDULED, activated_by=by, activated_at=now, active_from=at)
        return Activation(replace(became, rollback=rollback or release.rollback), None, None)
    became = replace(release, status=Status.ACTIVE, activated_by=by, activated_at=now, active_from=now, retired_at=None)
    retired = replace(active, status=Status.RETIRED, retired_at=now) if active is not None else None
    unscheduled = replace(scheduled, status=_before_scheduling(scheduled)) if scheduled is not None else None
    return Activation(replace(became, rollback=rollback or release.rollback), retired, unscheduled)


def _before_scheduling(release: Release) -> Status:
    if release.rollback:
        return Status.RETIRED
    return Status.APPROVED if release.is_approved else Status.PROPOSED


def due(releases: list[Release], now: datetime) -> Activation | None:
    """The scheduled version whose time has come, becoming active and retiring the active one; None otherwise."""
    scheduled = scheduled_of(releases)
    if scheduled is None or scheduled.active_from is None or scheduled.active_from > now:
        return None
    active = active_of(releases)
    became = replace(scheduled, status=Status.ACTIVE, active_from=scheduled.active_from)
    retired = replace(active, status=Status.RETIRED, retired_at=scheduled.active_from) if active else None
    return Activation(became, retired, None)


def _short(version: str | None) -> str:
    return version[:12] if version else "no version"
