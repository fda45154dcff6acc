"""/docs and /redoc work without the internet: every script, style and icon they name is served by wnb itself,
and in a real browser the pages render with every request to another host refused. The OpenAPI document they
show describes every field and parameter, and gives an example event."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server import serving
from wnb.api import create_app
from wnb.core.domain import AttendanceEvent, PersonContext
from wnb.core.ruleset import Ruleset
from wnb.database import open_database
from wnb.service import Service
from wnb.settings import Settings

CHROMIUM = Path("/usr/bin/chromium")
ASSET_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png"}


@pytest.fixture
def url(tmp_path: Path, ruleset: Ruleset) -> Iterator[str]:
    db = open_database(f"sqlite:///{tmp_path / 'wnb.db'}")
    with serving(create_app(Service(db, ruleset), settings=Settings(docs=True))) as base:
        yield base
    db.dispose()


def assets(html: str) -> list[str]:
    """Every URL a page loads by itself: script sources, stylesheets, icons."""
    return re.findall(r'<(?:script|link)\b[^>]*\b(?:src|href)="([^"]+)"', html)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_documentation_pages_load_only_assets_that_wnb_serves(url: str, page: str) -> None:
    answer = httpx.get(f"{url}{page}")
    assert answer.status_code == 200
    named = assets(answer.text)
    assert any(name.endswith(".js") for name in named), named
    for name in named:
        assert name.startswith("/docs/assets/"), f"{page} loads {name} from elsewhere"
        asset = httpx.get(f"{url}{name}")
        assert asset.status_code == 200, name
        assert ASSET_TYPES[Path(name).suffix] in asset.headers["content-type"], name
        assert len(asset.content) > 1000, name
    assert "http" not in answer.headers["content-security-policy"]  # no other origin allowed
    assert "://" not in answer.text  # no absolute URL anywhere in the page


def test_the_bundles_are_swagger_ui_and_redoc(url: str) -> None:
    assert "SwaggerUIBundle" in httpx.get(f"{url}/docs/assets/swagger-ui-bundle.js").text[:2000]
    assert ".swagger-ui" in httpx.get(f"{url}/docs/assets/swagger-ui.css").text
    assert "Redoc" in httpx.get(f"{url}/docs/assets/redoc.standalone.js").text[:2000]


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (apt install chromium)")
def test_swagger_ui_and_redoc_render_in_a_browser_that_reaches_no_other_host(url: str) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs Playwright (pip install playwright)")
    outside: list[str] = []
    errors: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox"])
        page = browser.new_page()
        page.set_default_timeout(20_000)

        def only_wnb(route: sync_api.Route) -> None:
            if route.request.url.startswith(url) or route.request.url.startswith(("data:", "blob:")):
                route.continue_()
            else:
                outside.append(route.request.url)
                route.abort()

        page.route("**/*", only_wnb)
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.goto(f"{url}/docs")
        sync_api.expect(page.locator(".opblock-summary-path").first).to_be_visible()
        sync_api.expect(page.get_by_text("/v1/attendance-events").first).to_be_visible()
        page.goto(f"{url}/redoc")
        sync_api.expect(page.get_by_text("Flags, active ones unless asked otherwise").first).to_be_visible()
        browser.close()
    assert outside == []
    # ReDoc's footer shows Redocly's logo from its CDN: the policy refuses it and ReDoc then leaves it out.
    assert [error for error in errors if "cdn.redoc.ly/redoc/logo-mini.svg" not in error] == []


def undescribed(schema: dict[str, Any]) -> Iterator[str]:
    """Every property of the components' schemas, and every parameter of an operation, without a description."""
    for name, component in schema["components"]["schemas"].items():
        for field, definition in component.get("properties", {}).items():
            if not definition.get("description"):
                yield f"{name}.{field}"
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                if not parameter.get("description"):
                    yield f"{method.upper()} {path} {parameter['name']}"


def test_every_field_and_parameter_of_the_openapi_document_has_a_description(url: str) -> None:
    schema = httpx.get(f"{url}/openapi.json").json()
    assert {"AttendanceEvent", "PersonContext", "Task", "Flag", "ProblemBody"} <= schema["components"]["schemas"].keys()
    assert list(undescribed(schema)) == []


def test_the_event_and_context_schemas_carry_examples_that_wnb_accepts(url: str) -> None:
    schemas = httpx.get(f"{url}/openapi.json").json()["components"]["schemas"]
    (event,) = schemas["AttendanceEvent"]["examples"]
    assert AttendanceEvent.parse(event).attendance == "did-not-attend"
    assert schemas["EventBatch"]["examples"] == [{"events": [event]}]
    for context in schemas["PersonContext"]["examples"]:
        PersonContext.parse(context)


def test_the_openapi_document_points_to_the_repositorys_own_docs(url: str) -> None:
    text = httpx.get(f"{url}/openapi.json").text
    assert "DOMAIN.md" not in text and "ARCHITECTURE.md" not in text
    for page in re.findall(r"docs/[a-z-]+\.md", text):
        assert (Path(__file__).parents[2] / page).is_file(), page
