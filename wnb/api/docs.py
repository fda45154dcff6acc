"""/docs and /redoc: FastAPI's documentation pages with Swagger UI and ReDoc served by wnb itself, so they work
on a network without the internet, under a Content-Security-Policy that allows nothing from elsewhere (Swagger's
one inline script by its hash), never framed.

The assets are the swagger-ui-dist and ReDoc bundles that the fastapi-offline package ships (its `static`
folder); wnb uses only those files, not its app factory.
"""

from __future__ import annotations

import base64
import hashlib
import re
from importlib.resources import files

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.staticfiles import StaticFiles
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Mount, Route

_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)
ASSETS = "/docs/assets"
ASSETS_DIR = str(files("fastapi_offline") / "static")


def docs_policy(html: str) -> str:
    """The policy for one documentation page: its inline scripts allowed by hash, nothing from another origin.

    Both bundles set styles at run time (hence 'unsafe-inline' for styles only), draw icons from data: URLs and
    ReDoc searches in a worker it starts from a blob.
    """
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()}'"
        for script in _INLINE_SCRIPT.findall(html)
    )
    return (
        f"default-src 'self'; script-src 'self' {hashes}".rstrip()
        + "; style-src 'self' 'unsafe-inline'; img-src 'self' data:; worker-src 'self' blob:"
        "; connect-src 'self'; frame-ancestors 'none'; form-action 'self'"
    )


def _page(html: HTMLResponse) -> HTMLResponse:
    body = bytes(html.body).decode()
    return HTMLResponse(body, headers={"Content-Security-Policy": docs_policy(body)})


def install(app: FastAPI, openapi_url: str) -> None:
    """Serve /docs, /redoc and their assets over the schema at `openapi_url` (not in the schema, no role: they
    hold no records)."""

    async def swagger(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _page(
            get_swagger_ui_html(
                openapi_url=root + openapi_url,
                title=f"{app.title} - Swagger UI",
                swagger_js_url=f"{root}{ASSETS}/swagger-ui-bundle.js",
                swagger_css_url=f"{root}{ASSETS}/swagger-ui.css",
                swagger_favicon_url=f"{root}{ASSETS}/favicon.png",
                swagger_ui_parameters={"validatorUrl": None},  # the default posts the schema to swagger.io
            )
        )

    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _page(
            get_redoc_html(
                openapi_url=root + openapi_url,
                title=f"{app.title} - ReDoc",
                redoc_js_url=f"{root}{ASSETS}/redoc.standalone.js",
                redoc_favicon_url=f"{root}{ASSETS}/favicon.png",
                with_google_fonts=False,
            )
        )

    app.router.routes.append(Route("/docs", swagger, methods=["GET"], include_in_schema=False))
    app.router.routes.append(Route("/redoc", redoc, methods=["GET"], include_in_schema=False))
    app.router.routes.append(Mount(ASSETS, StaticFiles(directory=ASSETS_DIR), name="docs-assets"))
