"""The request log: one line per request naming the route's template (never the path, which carries NHS
numbers), with the request id that the answer carries."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import structlog

from tests.server import serving
from wnb.api import create_app, observe
from wnb.core.ruleset import Ruleset
from wnb.database import open_database
from wnb.service import Service
from wnb.store.accounts import create_api_key

CHILD = "9990000018"


@pytest.fixture
def default_structlog() -> Iterator[None]:
    """structlog as it comes (no level filter), whatever an earlier in-process CLI run configured."""
    saved = structlog.get_config()
    structlog.reset_defaults()
    yield
    structlog.configure(**saved)


def test_a_request_is_logged_by_its_route_template_and_request_id_never_its_path(
    tmp_path: Path, ruleset: Ruleset, monkeypatch: pytest.MonkeyPatch, default_structlog: None
) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'wnb.db'}")
    key = create_api_key(db, "safeguarding-nurse", "worklist")
    with structlog.testing.capture_logs() as logs, serving(create_app(Service(db, ruleset))) as url:
        monkeypatch.setattr(observe, "log", structlog.get_logger("wnb.api"))  # a logger made while capturing
        answer = httpx.get(f"{url}/v1/people/{CHILD}/timeline", headers={"X-API-Key": key, "X-Request-ID": "r-1"})
    db.dispose()
    (line,) = [entry for entry in logs if entry["event"] == "request_handled"]
    assert line["route"] == "/v1/people/{nhs_number}/timeline" and line["request_id"] == "r-1"
    assert line["status"] == answer.status_code
    assert CHILD not in repr(logs)
