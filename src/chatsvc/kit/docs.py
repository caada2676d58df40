"""The API documentation pages, /docs (Swagger UI) and /redoc (ReDoc), with every asset served
by this process from the `fastapi-offline` package: nothing is loaded from a CDN, so the pages
work on a machine without internet (FastAPI's own pages load their scripts and styles from
jsDelivr, and ReDoc its fonts from Google).

ReDoc's script still has one outside URL, its maker's logo (hard-coded, from its CDN): the pages'
Content-Security-Policy lets them load only from this origin, so the browser refuses it and
ReDoc hides the logo. Swagger UI's online-validator badge (an image from validator.swagger.io
for any host but localhost) is switched off (`validatorUrl: null`); FastAPI's layout does not
show it today, so this only keeps it off."""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from starlette.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

#: swagger-ui-bundle.js, swagger-ui.css, redoc.standalone.js as the package ships them
ASSETS = Path(fastapi_offline.__file__).parent / "static"
#: where this app serves them
ASSETS_PATH = "/docs-assets"
#: the chat page's icon, served by chatsvc.main
FAVICON_PATH = "/favicon.ico"

#: the pages load only from this origin; Swagger UI's configuration is an inline script, both
#: style elements inline, and ReDoc runs its search in a worker made from a blob: URL
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; script-src 'self' 'unsafe-inline'; "
    "style-src 'self' 'unsafe-inline'; worker-src 'self' blob:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


def _secured(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    page.headers["X-Content-Type-Options"] = "nosniff"
    return page


def mount_docs(app: FastAPI) -> None:
    """Adds /docs, its OAuth2 redirect page, /redoc and the assets they load. The app is made
    with `docs_url=None, redoc_url=None` so FastAPI's CDN-bound pages are not there too."""
    openapi_url = app.openapi_url or "/openapi.json"
    oauth2_redirect_url = app.swagger_ui_oauth2_redirect_url or "/docs/oauth2-redirect"
    app.mount(ASSETS_PATH, StaticFiles(directory=ASSETS), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _secured(
            get_swagger_ui_html(
                openapi_url=f"{root}{openapi_url}",
                title=f"{app.title} - Swagger UI",
                oauth2_redirect_url=oauth2_redirect_url,
                swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
                swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
                swagger_favicon_url=f"{root}{FAVICON_PATH}",
                swagger_ui_parameters={**(app.swagger_ui_parameters or {}), "validatorUrl": None},
            )
        )

    @app.get(oauth2_redirect_url, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _secured(
            get_redoc_html(
                openapi_url=f"{root}{openapi_url}",
                title=f"{app.title} - ReDoc",
                redoc_js_url=f"{root}{ASSETS_PATH}/redoc.standalone.js",
                redoc_favicon_url=f"{root}{FAVICON_PATH}",
                with_google_fonts=False,
            )
        )
