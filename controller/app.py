"""The FastAPI application: routes are thin, the work is in services and the runtime."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from controller import web
from controller.api import (
    alerts,
    announcements,
    auth,
    broadcast_log,
    calendar,
    content,
    emergency,
    health,
    nodes,
    schedules,
)
from controller.runtime import Runtime
from controller.settings import Settings
from controller.signing import Signer
from mqtt_contract import SOFTWARE_VERSION

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime(settings)
        runtime.link.signer = Signer(settings.signing_dir)  # plans and commands are signed
        runtime.start()
        app.state.runtime = runtime
        try:
            yield
        finally:
            runtime.stop()

    app = FastAPI(title="loaxa controller", version=SOFTWARE_VERSION, lifespan=lifespan,
                  description="Commune loudspeakers and cameras: announcements, nodes, plans.")
    for module in (health, auth, nodes, announcements, schedules, emergency, calendar,
                   content, broadcast_log, alerts):
        app.include_router(module.router)
    # the pages (web/), their static files, and CSRF checks for forms and cookie-auth API
    app.include_router(web.router)
    app.mount("/static", StaticFiles(directory=web.STATIC_DIR), name="static")
    app.add_middleware(web.CSRFMiddleware)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
                  for e in exc.errors()]
        first = errors[0] if errors else {"field": "", "message": "invalid request"}
        return JSONResponse(status_code=422, content={
            "detail": f"{first['field']}: {first['message']}", "errors": errors})

    return app
