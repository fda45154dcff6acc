"""schemathesis over the OpenAPI document against the real uvicorn server on loopback, authenticated with a key
of the right role for each operation: whatever the inputs, no answer is a server error (5xx)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

from tests.server import serving
from wnb.api import create_app
from wnb.core.ruleset import Ruleset
from wnb.database import open_database
from wnb.service import Service
from wnb.store.accounts import create_api_key

INGESTION = ("/v1/attendance-events", "/fhir", "/v1/people/{nhs_number}/context")


@dataclass(frozen=True)
class Live:
    url: str
    keys: dict[str, str]  # role → API key

    def headers_for(self, method: str, path: str) -> dict[str, str]:
        """The key of a role allowed to call this operation, so the fuzzing reaches the handler."""
        if path == "/metrics":
            role = "admin"
        elif method.upper() in {"POST", "PUT"} and path.startswith(INGESTION) and "/timeline" not in path:
            role = "clinic-system"
        else:
            role = "safeguarding-nurse"
        return {"X-API-Key": self.keys[role]}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, ruleset: Ruleset) -> Iterator[Live]:
    db = open_database(f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'wnb.db'}")
    bound = {"sources": ["pas"], "context": True}  # what the clinic key may write
    keys = {
        role: create_api_key(db, role, role, **(bound if role == "clinic-system" else {}))  # type: ignore[arg-type]
        for role in ("clinic-system", "safeguarding-nurse", "admin")
    }
    with serving(create_app(Service(db, ruleset))) as url:
        yield Live(url, keys)
    db.dispose()


EXAMPLES = 20  # per operation: bounded, so the whole run stays well under a minute


def test_no_input_makes_the_server_fail(live: Live) -> None:
    schema = schemathesis.openapi.from_url(f"{live.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],
        )
        def call(case: Any) -> None:
            response = case.call(base_url=live.url, headers=live.headers_for(case.method, case.path), timeout=10)
            assert response.status_code < 500, f"{case.method} {case.formatted_path} answered {response.status_code}"

        call()
