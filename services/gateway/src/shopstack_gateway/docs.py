"""The developer surface: ``/openapi.json`` (the merged document) and ``/docs`` (Swagger UI).

Swagger UI's JavaScript and CSS are served by the gateway itself from the ``fastapi-offline``
package's copy of swagger-ui-dist, never from a CDN: the docs work on an air-gapped install and
through NGINX, with every URL on the page relative to the site.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.staticfiles import StaticFiles

from shopstack_gateway.deps import ResourcesDep

DOCS_PATH = "/docs"
ASSETS_PATH = "/docs/assets"
OAUTH2_REDIRECT_PATH = "/docs/oauth2-redirect"
OPENAPI_PATH = "/openapi.json"

router = APIRouter(include_in_schema=False)


def swagger_assets() -> StaticFiles:
    directory = Path(str(files("fastapi_offline") / "static"))
    return StaticFiles(directory=directory)


@router.get(OPENAPI_PATH)
async def openapi_document(request: Request, resources: ResourcesDep) -> JSONResponse:
    app = request.app
    own: dict[str, Any] = get_openapi(title=app.title, version=app.version, routes=app.routes)
    return JSONResponse(await resources.openapi.document(own))


@router.get(DOCS_PATH)
async def swagger_ui() -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url=OPENAPI_PATH,
        title="shopstack API",
        swagger_js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS_PATH}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS_PATH}/favicon.png",
        oauth2_redirect_url=OAUTH2_REDIRECT_PATH,
        # Keep the token across reloads of the page while trying things out.
        swagger_ui_parameters={"persistAuthorization": True},
    )


@router.get(OAUTH2_REDIRECT_PATH)
async def swagger_ui_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()
