"""Key revocation and disabled accounts are enforced by the API; creating, revoking and disabling are audited
under the operator who did it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from tests.factories import only_given, run_wnb
from tests.server import serving
from wnb.api import create_app
from wnb.core.errors import WnbError
from wnb.core.ruleset import Ruleset
from wnb.database import open_database
from wnb.service import Service
from wnb.store import audit
from wnb.store.accounts import create_api_key, create_user, disable_user, revoke_api_key

ROOT = Path(__file__).resolve().parents[2]
NURSE = ("nurse.jo", "correct horse battery staple")


@pytest.fixture
def service(tmp_path: Path, ruleset: Ruleset) -> Iterator[Service]:
    db = open_database(f"sqlite:///{tmp_path / 'wnb.db'}")
    yield Service(db, ruleset)
    db.dispose()


def audit_records(service: Service) -> list[tuple[str, str, list[str]]]:
    with service.db.connect() as connection:
        rows = connection.execute(select(audit._audit).order_by(audit._audit.c.seq))
        return [(row.actor, row.action, row.subject) for row in rows]


def test_a_revoked_api_key_is_refused(service: Service) -> None:
    key = create_api_key(service.db, "clinic-system", "pas", sources=["pas"])
    with serving(create_app(service)) as url, httpx.Client(base_url=url, headers={"X-API-Key": key}) as client:
        assert client.post("/v1/attendance-events", json={}).status_code == 422  # let in (and the body refused)
        revoke_api_key(service.db, "pas")
        answer = client.post("/v1/attendance-events", json={})
    assert answer.status_code == 401 and "revoked" in answer.json()["reason"]


def test_a_disabled_user_is_refused(service: Service) -> None:
    create_user(service.db, NURSE[0], "safeguarding-nurse", NURSE[1])
    with serving(create_app(service)) as url, httpx.Client(base_url=url, auth=NURSE) as client:
        assert client.get("/v1/tasks").status_code == 200
        disable_user(service.db, NURSE[0])
        assert client.get("/v1/tasks").status_code == 401


def test_creating_and_revoking_a_key_is_audited_under_the_operator(service: Service) -> None:
    create_api_key(service.db, "clinic-system", "pas", actor="ops.alex", sources=["pas"])
    revoke_api_key(service.db, "pas", actor="ops.sam")
    assert audit_records(service) == [
        ("ops.alex", "api_key_created", ["key:pas"]),
        ("ops.sam", "api_key_revoked", ["key:pas"]),
    ]


def test_creating_and_disabling_a_user_is_audited_without_the_password(service: Service) -> None:
    create_user(service.db, NURSE[0], "safeguarding-nurse", NURSE[1])
    disable_user(service.db, NURSE[0], actor="ops.sam")
    assert audit_records(service) == [
        ("cli", "user_created", ["user:nurse.jo"]),
        ("ops.sam", "user_disabled", ["user:nurse.jo"]),
    ]
    with service.db.connect() as connection:
        assert NURSE[1] not in "".join(audit.export_lines(connection))
        assert audit.verify(connection).ok


def test_revoking_an_unknown_key_is_an_error_naming_it(service: Service) -> None:
    with pytest.raises(WnbError, match="no API key named 'epr'"):
        revoke_api_key(service.db, "epr")


def test_the_command_line_revokes_a_key_and_records_the_operator(tmp_path: Path, service: Service) -> None:
    create_api_key(service.db, "clinic-system", "pas", sources=["pas"])
    create_user(service.db, "ops.alex", "admin", "an administrator's passphrase")
    # The audit key is the one the log was written with (tests/conftest.py).
    env = only_given(WNB_DATABASE_URL=str(service.db.url), WNB_AUDIT_KEY=os.environ["WNB_AUDIT_KEY"])
    done = run_wnb(ROOT, "keys", "revoke", "pas", "--by", "ops.alex", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "API key pas revoked"
    assert audit_records(service)[-1] == ("user:ops.alex", "api_key_revoked", ["key:pas"])


def test_passwords_are_hashed_with_argon2_s_default_cost_outside_the_suite() -> None:
    # The suite lowers the cost in its own processes (tests/conftest.py); wnb itself must keep argon2-cffi's defaults.
    check = (
        "from argon2 import PasswordHasher; from wnb.store import accounts; "
        "d, h = PasswordHasher(), accounts._hasher; "
        "same = (h.time_cost, h.memory_cost, h.parallelism) == (d.time_cost, d.memory_cost, d.parallelism); "
        "print(same and d.time_cost >= 3)"
    )
    # A fresh interpreter: this process has the suite's cheap hasher, and the check is of wnb's own defaults.
    answer = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True)
    assert answer.stdout.strip() == "True"
