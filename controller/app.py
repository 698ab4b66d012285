"""The FastAPI application: routes are thin, the work is in services and the runtime."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import DataError, StatementError
from starlette.exceptions import HTTPException as StarletteHTTPException

from controller import web
from controller.api import (
    alerts,
    announcements,
    auth,
    broadcast_log,
    calendar,
    communes,
    content,
    emergency,
    health,
    live,
    metrics,
    nodes,
    relay,
    schedules,
    upstream,
)
from controller.api.body_limit import DEFAULT_MAX_BODY, BodyLimitMiddleware
from controller.api.errors import ErrorCode, error_payload, validation_problem
from controller.metrics import RequestTimer
from controller.runtime import Runtime
from controller.scope import CommuneRefused
from controller.settings import Settings
from controller.signing import Signer
from mqtt_contract import SOFTWARE_VERSION

log = logging.getLogger(__name__)

INVALID_MESSAGE = "Yêu cầu không hợp lệ"
OUT_OF_RANGE_MESSAGE = "Giá trị nằm ngoài phạm vi cho phép."
BAD_VALUE_MESSAGE = "Nội dung có ký tự không được dùng."


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime(settings)
        # plans and commands are signed, in this replica's own sequence
        runtime.link.signer = Signer(settings.signing_dir, settings.mqtt_client_id)
        runtime.start()
        app.state.runtime = runtime
        try:
            yield
        finally:
            runtime.stop()

    app = FastAPI(title="loaxa controller", version=SOFTWARE_VERSION, lifespan=lifespan,
                  description="Commune loudspeakers and cameras: announcements, nodes, plans.",
                  docs_url=None, redoc_url=None)
    add_offline_docs(app)
    for module in (health, auth, communes, nodes, announcements, schedules, emergency,
                   calendar, content, broadcast_log, alerts, live, relay, metrics, upstream):
        app.include_router(module.router)
    # the pages (web/), their static files, and CSRF checks for forms and cookie-auth API
    app.include_router(web.router)
    app.mount("/static", StaticFiles(directory=web.STATIC_DIR), name="static")
    app.add_middleware(web.CSRFMiddleware)
    # outermost but the timer and the proxy headers: no body is stored past its route's limit
    app.add_middleware(BodyLimitMiddleware, default=DEFAULT_MAX_BODY,
                       by_path=content.BODY_LIMITS | upstream.BODY_LIMITS)
    # outside the body limit: its refusals are timed too (label "unmatched")
    app.add_middleware(RequestTimer)
    if settings.trusted_proxies:
        from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
    add_error_handlers(app)
    app.openapi = lambda: project_openapi(app)  # type: ignore[method-assign]
    return app


DOCS_ASSETS = "/docs-assets"
DOCS_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' "
            "'unsafe-inline'; img-src 'self' data:; worker-src 'self' blob:; "
            "connect-src 'self'; frame-ancestors 'none'")
"""The documentation pages' inline start-up script runs; nothing leaves the station (ReDoc's
footer would fetch its logo from the internet)."""


def _docs_page(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = DOCS_CSP
    return response


def add_offline_docs(app: FastAPI) -> None:
    """Swagger UI (``/docs``) and ReDoc (``/redoc``) from the files the
    ``fastapi-offline`` package ships, served by the controller: a commune's closed network
    reaches no CDN (FastAPI's default pages load their scripts from one and stay blank).
    Only the asset files are used; the routes are FastAPI's own helpers."""
    from pathlib import Path

    import fastapi_offline
    from fastapi.openapi.docs import (
        get_redoc_html,
        get_swagger_ui_html,
        get_swagger_ui_oauth2_redirect_html,
    )

    assets = Path(fastapi_offline.__file__).parent / "static"
    app.mount(DOCS_ASSETS, StaticFiles(directory=assets), name="docs-assets")
    redirect = "/docs/oauth2-redirect"

    @app.get("/docs", include_in_schema=False)
    async def docs() -> Response:
        return _docs_page(get_swagger_ui_html(
            openapi_url="/openapi.json", title=f"{app.title} · API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png", oauth2_redirect_url=redirect))

    @app.get(redirect, include_in_schema=False)
    async def oauth2_redirect() -> Response:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> Response:
        return _docs_page(get_redoc_html(
            openapi_url="/openapi.json", title=f"{app.title} · API",
            redoc_js_url=f"{DOCS_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{DOCS_ASSETS}/favicon.png", with_google_fonts=False))


def validation_body(errors: list[dict[str, str]]) -> dict[str, Any]:
    """The project's 422: ``detail`` (the first problem, for programs), every problem
    (each with its Vietnamese ``text``), a code, and a message for people that says which
    field is wrong and how, in the pages' words."""
    first = errors[0] if errors else {"field": "", "message": "invalid request",
                                      "text": "Nội dung gửi lên: không hợp lệ."}
    return {"detail": f"{first['field']}: {first['message']}", "errors": errors,
            "code": ErrorCode.invalid_request.value,
            "message": f"{INVALID_MESSAGE}. {first.get('text', '')}".strip()}


def add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code in (204, 304):
            return Response(status_code=exc.status_code, headers=exc.headers)
        return JSONResponse(error_payload(exc.status_code, exc.detail),
                            status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"],
                   "text": validation_problem(e)} for e in exc.errors()]
        return JSONResponse(status_code=422, content=validation_body(errors))

    @app.exception_handler(OverflowError)
    async def _overflow(request: Request, exc: OverflowError) -> JSONResponse:
        """The guard behind the typed parameters (``DbId``, ``Day``): a number or a date
        no column or ``datetime`` can hold is the caller's mistake, a 422, never a 500."""
        log.warning("out-of-range value in %s %s: %s", request.method, request.url.path, exc)
        return JSONResponse(status_code=422, content=validation_body(
            [{"field": "", "message": "value out of range",
              "text": OUT_OF_RANGE_MESSAGE}]) | {
                "message": OUT_OF_RANGE_MESSAGE})

    @app.exception_handler(CommuneRefused)
    async def _other_commune(request: Request, exc: CommuneRefused) -> JSONResponse:
        """A commune account reaching for another commune (controller/scope.py), caught
        wherever it surfaced, the commit included: a 403, never a 500."""
        log.warning("refused %s %s: %s", request.method, request.url.path, exc)
        return JSONResponse(status_code=403, content={
            "detail": {"code": exc.code, "message": exc.message}, "code": exc.code,
            "message": exc.message})

    @app.exception_handler(StatementError)
    async def _statement(request: Request, exc: StatementError) -> JSONResponse:
        if isinstance(exc.orig, OverflowError):
            return await _overflow(request, exc.orig)
        if isinstance(exc, DataError):
            # a value the database itself refuses (PostgreSQL: a NUL character in text,
            # which SQLite stores): the caller's input, a 422
            log.warning("value refused by the database in %s %s: %s", request.method,
                        request.url.path, exc.orig)
            return JSONResponse(status_code=422, content=validation_body(
                [{"field": "", "message": "value refused", "text": BAD_VALUE_MESSAGE}]) | {
                    "message": BAD_VALUE_MESSAGE})
        raise exc


ERROR_SCHEMA = {
    "title": "Error",
    "type": "object",
    "required": ["detail", "code", "message"],
    "properties": {
        "detail": {"description": "what the route said: a string, or an object with "
                                  "``code`` and ``message`` (and e.g. ``conflicts``)"},
        "code": {"type": "string", "description": "stable, for programs"},
        "message": {"type": "string", "description": "in Vietnamese, for people"},
        "errors": {"type": "array", "description": "request validation: every problem",
                   "items": {"type": "object", "required": ["field", "message"],
                             "properties": {"field": {"type": "string"},
                                            "message": {"type": "string"},
                                            "text": {"type": "string", "description":
                                                     "the problem in Vietnamese"}}}},
    },
}
ERROR_REF = {"$ref": "#/components/schemas/Error"}


def project_openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema, with the error body the handlers above really send: for the
    documented 422 and for every other 4xx (``4XX``), so clients and schemathesis can
    check errors as strictly as successes."""
    if app.openapi_schema is None:
        from fastapi.openapi.utils import get_openapi

        schema = get_openapi(title=app.title, version=app.version,
                             description=app.description, routes=app.routes)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["Error"] = ERROR_SCHEMA
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
        error = {"application/json": {"schema": ERROR_REF}}
        for ops in schema.get("paths", {}).values():
            for op in ops.values():
                responses = op.setdefault("responses", {})
                for code, response in responses.items():
                    if code.startswith("4"):
                        response["content"] = error
                responses.setdefault("4XX", {"description": "an error (see Error)",
                                             "content": error})
        app.openapi_schema = schema
    return app.openapi_schema


def server_options(settings: Settings) -> dict[str, Any]:
    """What `loaxa controller serve` (and the tests' live server) give uvicorn.

    uvicorn's own proxy-header handling is off: by default it believes
    ``X-Forwarded-For`` from 127.0.0.1, which let anyone on the host rotate their
    address past the login limit. The app applies the proxy headers itself, and only
    from ``LOAXA_TRUSTED_PROXIES``.
    """
    options: dict[str, Any] = {"host": settings.host, "port": settings.port,
                               "proxy_headers": False, "server_header": False}
    if settings.serves_https:
        options |= {"ssl_certfile": str(settings.tls_certfile),
                    "ssl_keyfile": str(settings.tls_keyfile)}
    return options
