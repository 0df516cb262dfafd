"""``parley serve``: start the server with embedded defaults or a config file."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path
from types import FrameType

import uvicorn

from server.app import create_app, version
from server.logs import configure_logging
from server.settings import Settings, SettingsError, is_loopback, load_settings

log = logging.getLogger("parley")


class DrainingServer(uvicorn.Server):
    """uvicorn closes WebSockets with 1012 at once on SIGTERM; we drain first:
    ``goaway`` to every client, close with 1001, then the usual shutdown."""

    def __init__(self, config: uvicorn.Config, app_state_hub: object) -> None:
        super().__init__(config)
        self._hub = app_state_hub
        self._draining: asyncio.Task[None] | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._draining is not None or sig not in (signal.SIGTERM, signal.SIGINT):
            super().handle_exit(sig, frame)
            return
        loop = asyncio.get_event_loop()
        self._draining = loop.create_task(self._drain_then_exit(sig, frame))

    async def _drain_then_exit(self, sig: int, frame: FrameType | None) -> None:
        try:
            await self._hub.drain()  # type: ignore[attr-defined]
        finally:
            # A drained shutdown is a clean exit (status 0), not death by signal.
            self.should_exit = True


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="parley", description="Parley real-time server")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the server")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to bind (default 8765; 0 picks one)")
    serve.add_argument("--config", type=Path, help="TOML settings file")
    serve.add_argument(
        "--redis-url",
        help="share sessions with other nodes through this Redis (or PARLEY_REDIS_URL)",
    )
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    return parser


def check_exposure(settings: Settings) -> str | None:
    """Why the server must not start as configured, if it must not."""
    if not settings.tenants and not is_loopback(settings.server.host):
        return (
            f"refusing to bind {settings.server.host}: no API keys are configured, so any "
            "token is accepted; that is allowed on loopback only. Add [[tenants]] with "
            "api_keys to the config file."
        )
    return None


def serve(settings: Settings, log_level: str) -> int:
    problem = check_exposure(settings)
    if problem is not None:
        print(f"parley: {problem}", file=sys.stderr)
        return 2
    if not settings.tenants:
        log.warning(
            "no API keys configured: any token is accepted (loopback only)",
            extra={"host": settings.server.host},
        )
    app = create_app(settings)
    limits = settings.limits
    config = uvicorn.Config(
        app,
        host=settings.server.host,
        port=settings.server.port,
        log_config=None,
        ws="websockets-sansio",
        ws_max_size=limits.max_frame_bytes * 2,
        ws_ping_interval=limits.heartbeat_s,
        ws_ping_timeout=limits.heartbeat_s,
        ws_per_message_deflate=settings.server.per_message_deflate,
        timeout_graceful_shutdown=5,
        lifespan="on",
    )
    server = DrainingServer(config, app.state.hub)

    async def announce() -> None:
        # uvicorn offers no event for "bound and serving"; poll its flag. Wait for the
        # pipelines too: llama.cpp points fd 1 at /dev/null while it loads a model (in a
        # worker thread), which would swallow a line printed meanwhile.
        hub = app.state.hub
        while not (server.started and hub.ready):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        for sock in server.servers[0].sockets if server.servers else []:
            host, port = sock.getsockname()[:2]
            shown = f"[{host}]" if ":" in host else host
            print(f"Parley {version()} listening on ws://{shown}:{port}/v1/stream", flush=True)
            log.info("listening", extra={"host": host, "port": port, "node": settings.server.node})

    async def main() -> None:
        task = asyncio.create_task(announce())
        try:
            await server.serve()
        finally:
            task.cancel()

    asyncio.run(main())
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level)
    try:
        settings = load_settings(
            args.config, redis_url=args.redis_url, host=args.host, port=args.port
        )
    except SettingsError as exc:
        print(f"parley: {exc}", file=sys.stderr)
        return 2
    return serve(settings, args.log_level)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
