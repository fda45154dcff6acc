"""The API, /openapi.json and /docs send the pages' security headers (a real uvicorn on loopback); HSTS only
in production."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.server import serving
from wnb.api import create_app
from wnb.api.headers import HSTS
from wnb.core.ruleset import Ruleset
from wnb.database import open_database
from wnb.service import Service
from wnb.settings import Settings
from wnb.store.accounts import create_user

STRONG = "s" * 40
NURSE = ("nurse.jo", "correct horse battery staple")
SHARED = ("cache-control", "x-frame-options", "x-content-type-options", "referrer-policy")


@pytest.fixture
def service(tmp_path: Path, ruleset: Ruleset) -> Iterator[Service]:
    db = open_database(f"sqlite:///{tmp_path / 'wnb.db'}")
    create_user(db, NURSE[0], "safeguarding-nurse", NURSE[1])
    yield Service(db, ruleset)
    db.dispose()


def security(answer: httpx.Response, names: tuple[str, ...] = (*SHARED, "content-security-policy")) -> dict[str, str]:
    return {name: answer.headers.get(name, "") for name in names}


def test_the_api_sends_the_pages_security_headers(service: Service) -> None:
    with serving(create_app(service, settings=Settings(docs=True))) as url:
        page = httpx.get(f"{url}/web/sign-in")
        answers = [
            httpx.get(f"{url}/v1/tasks", auth=NURSE),  # 200 with a child's records
            httpx.get(f"{url}/v1/tasks"),  # 401
            httpx.get(f"{url}/health/live"),
            httpx.get(f"{url}/openapi.json"),
        ]
    assert [answer.status_code for answer in answers] == [200, 401, 200, 200]
    assert security(page)["x-frame-options"] == "DENY" and security(page)["cache-control"] == "no-store"
    for answer in answers:
        assert security(answer) == security(page), answer.url


def test_docs_send_the_pages_headers_with_a_policy_naming_their_scripts(service: Service) -> None:
    with serving(create_app(service, settings=Settings(docs=True))) as url:
        page = httpx.get(f"{url}/web/sign-in")
        docs = httpx.get(f"{url}/docs")
        redoc = httpx.get(f"{url}/redoc")
    assert docs.status_code == 200 and "swagger-ui" in docs.text
    assert redoc.status_code == 200
    for answer in (docs, redoc):
        assert security(answer, SHARED) == security(page, SHARED)
        policy = answer.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy and "default-src 'self'" in policy
        assert "'unsafe-inline'" not in policy.split("; style-src")[0]  # no inline script but by hash
    (script,) = re.findall(r"<script>(.*?)</script>", docs.text, re.DOTALL)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in docs.headers["content-security-policy"]


def test_hsts_is_sent_in_production_on_the_api_docs_and_pages(service: Service) -> None:
    production = Settings(mode="production", session_secret=STRONG, webhook_secret=STRONG, docs=True)
    with serving(create_app(service, settings=production)) as url:
        answers = [httpx.get(f"{url}{path}") for path in ("/v1/tasks", "/docs", "/web/sign-in", "/health/live")]
    assert [answer.headers.get("strict-transport-security") for answer in answers] == [HSTS] * 4


def test_hsts_is_not_sent_in_development(service: Service) -> None:
    with serving(create_app(service, settings=Settings())) as url:
        assert "strict-transport-security" not in httpx.get(f"{url}/web/sign-in").headers
        assert "strict-transport-security" not in httpx.get(f"{url}/v1/tasks").headers
