"""Swagger UI at `/docs` from files that ship in a package (swagger-ui-py), not from a CDN.

FastAPI's own `/docs` page loads Swagger UI from jsDelivr, so it is blank on a machine without internet, which is
where this product is meant to run too. The assets come from swagger-ui-py's bundled Swagger UI 5 (4.x cannot read
the OpenAPI 3.1 schema FastAPI writes). FastAPI's ReDoc page has the same CDN problem and is not served.
"""
from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs-assets"
SWAGGER_UI_FILES = files("swagger_ui") / "static"


def mount_api_docs(app: FastAPI) -> None:
    """Serve `/docs` (created with `docs_url=None`) and its assets from the package."""
    app.mount(ASSETS, StaticFiles(directory=str(SWAGGER_UI_FILES)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url or "/openapi.json", title=f"{app.title}: API",
                                   swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{ASSETS}/swagger-ui.css",
                                   swagger_favicon_url=f"{ASSETS}/favicon-32x32.png")
