"""What the page tests share: synthetic children and staff, a seeded SQLite file, a real uvicorn on loopback."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.conftest import DEFAULT_RULES, ROOT, FixedClock
from tests.server import serving
from wnb.api import create_app
from wnb.core.items import RawItem
from wnb.core.ruleset import Ruleset
from wnb.database import open_database
from wnb.ingest.ndjson import read as read_ndjson
from wnb.service import Service
from wnb.settings import load_settings
from wnb.store.accounts import create_user

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # a Monday, noon
RED_CHILD = "9990000018"  # on a child-protection plan (fixtures/context.ndjson)
AMBER_CHILD = "9990000042"  # child in need
REPEAT_CHILD = "9990000069"  # no register record; two misses in one service
RESOLVE_CHILD = "9990000077"  # a flag the tests resolve
STAFF = {
    "safeguarding-nurse": ("nurse.jo", "correct horse battery staple"),
    "booking-team": ("booking.al", "another long passphrase"),
    "governance": ("gov.sam", "governance passphrase 1"),
    "admin": ("admin.kim", "administrator passphrase"),
}
SECRET = "test-session-secret-0123456789abcdef"


def event(nhs_number: str, event_id: str, day: str, **changes: Any) -> RawItem:
    """A canonical missed appointment in community paediatrics, recorded at 09:00 UTC on `day`."""
    data: dict[str, Any] = {
        "source": "pas",
        "event_id": event_id,
        "nhs_number": nhs_number,
        "date_of_birth": "2019-05-01",
        "service": "community-paediatrics",
        "appointment_id": f"a-{event_id}",
        "appointment_at": f"{day}T08:30:00+00:00",
        "attendance": "did-not-attend",
        "recorded_at": f"{day}T09:00:00+00:00",
    }
    data.update(changes)
    return RawItem(None, json.dumps(data), data)


def seed(service: Service, clock: FixedClock) -> None:
    """Red, amber and repeat children, a flag to resolve and one rejected row, as received on 26 Feb-2 Mar."""
    service.import_context(read_ndjson(ROOT / "fixtures" / "context.ndjson"), origin="context")
    clock.now = datetime(2026, 2, 26, 10, 0, tzinfo=UTC)
    amber_born = {"date_of_birth": "2012-08-30"}
    service.ingest([event(AMBER_CHILD, "amber-1", "2026-02-26", **amber_born)], origin="feed")
    service.ingest([event(REPEAT_CHILD, "repeat-1", "2026-02-26", service="audiology")], origin="feed")
    clock.now = NOW
    service.ingest(
        [
            event(RED_CHILD, "red-1", "2026-03-02"),
            event(REPEAT_CHILD, "repeat-2", "2026-03-02", service="audiology"),
            event(RESOLVE_CHILD, "resolve-1", "2026-03-02", date_of_birth="2025-12-01"),
        ],
        origin="feed",
    )
    bad = {"source": "pas", "event_id": "bad-1", "nhs_number": "1234567890"}
    service.ingest([RawItem(7, json.dumps(bad), bad)], origin="feed-2026-03-02.ndjson")


def candidate_rules(folder: Path, repeat_misses: int) -> Path:
    """A copy of the default ruleset with a changed repeat-miss threshold."""
    target = folder / "candidate-rules"
    shutil.copytree(DEFAULT_RULES, target, ignore=shutil.ignore_patterns("scenarios"), dirs_exist_ok=True)
    settings = target / "ruleset.yaml"
    settings.write_text(settings.read_text().replace("repeat_misses: 2", f"repeat_misses: {repeat_misses}"))
    return target


def stored_candidate(service: Service, folder: Path, repeat_misses: int) -> str:
    """candidate_rules stored in the registry as proposed (with no evidence: the simulate page's candidates are
    versions of the registry, never a server path); its version."""
    from wnb.core.domain import Role
    from wnb.core.policy import Kind, Principal
    from wnb.rule_files import read_files
    from wnb.store import rulesets

    files = read_files(candidate_rules(folder, repeat_misses))
    by = Principal(Kind.USER, "gov.sam", Role.GOVERNANCE)
    active = rulesets.active(service.db, service.clock())
    release = rulesets.propose(
        service.db, files, by, "a test candidate", {}, active.version if active else None, service.clock()
    )
    return release.version


@dataclass
class Site:
    url: str
    service: Service
    clock: FixedClock
    folder: Path


@contextmanager
def running_site(folder: Path, ruleset: Ruleset, follow_registry: bool = False) -> Iterator[Site]:
    """A seeded database file and `wnb serve`'s app (API and pages) on a free loopback port; `follow_registry`
    judges each transaction by the registry's active version, as `wnb serve` does (the default ruleset registered
    as active, not yet approved, on the first evaluation)."""
    from wnb.service.active_ruleset import ActiveRulesets

    db = open_database(f"sqlite:///{folder / 'wnb.db'}")
    clock = FixedClock(NOW)
    following = ActiveRulesets(db, DEFAULT_RULES) if follow_registry else None
    service = Service(db, ruleset, clock, rulesets=following)
    for role, (name, password) in STAFF.items():
        create_user(db, name, role, password)
    seed(service, clock)
    app = create_app(service, settings=load_settings(session_secret=SECRET))
    try:
        with serving(app) as url:
            yield Site(url, service, clock, folder)
    finally:
        db.dispose()
