"""The Starlette application: ``/v1/stream`` and the HTTP routes beside it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import metadata
from pathlib import Path

import anyio
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from server.hub import Hub
from server.settings import Settings
from server.stream import ConnectionShell

STATIC = Path(__file__).parent / "static"


def version() -> str:
    try:
        return metadata.version("parley")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare tree
        return "0"


class StreamEndpoint:
    """An ASGI endpoint for the WebSocket route: one ``ConnectionShell`` a connection."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await ConnectionShell(self.hub, scope, receive, send).serve()


def create_app(settings: Settings) -> Starlette:
    hub = Hub(settings, version=version())

    async def healthz(request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def readyz(request: Request) -> Response:
        ready = hub.admitting
        if ready:
            status = "ready"
        elif hub.draining:
            status = "draining"
        elif not hub.ready:
            status = "starting"
        else:
            status = "store_unavailable"
        return JSONResponse({"ready": ready, "status": status}, status_code=200 if ready else 503)

    async def metrics_route(request: Request) -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    async def tokens(request: Request) -> Response:
        header = request.headers.get("authorization", "")
        scheme, _, key = header.partition(" ")
        policy = hub.auth.api_key_tenant(key.strip()) if scheme.lower() == "bearer" else None
        if policy is None or not key.strip():
            return JSONResponse(
                {"error": {"code": "unauthorized", "message": "a valid API key is required"}},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        token, expires_at = hub.auth.issue_client_token(policy, time.time())
        return JSONResponse({"token": token, "expires_at": expires_at})

    async def index(request: Request) -> Response:
        page = STATIC / "index.html"
        if not page.exists():
            return PlainTextResponse("Parley is running. WebSocket endpoint: /v1/stream\n")
        return FileResponse(page)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with anyio.create_task_group() as tg:
            tg.start_soon(hub.run)
            try:
                yield
            finally:
                await hub.aclose()
                tg.cancel_scope.cancel()

    app = Starlette(
        routes=[
            Route("/", index),
            Mount("/static", StaticFiles(directory=STATIC, check_dir=False), name="static"),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics_route),
            Route("/v1/tokens", tokens, methods=["POST"]),
            WebSocketRoute("/v1/stream", StreamEndpoint(hub)),
        ],
        lifespan=lifespan,
    )
    app.state.hub = hub
    return app
