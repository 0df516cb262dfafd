"""A protocol client for tests and benches, over the real ``websockets`` client."""

from __future__ import annotations

import base64
import json
import socket
import time
from collections.abc import Callable
from typing import Any

import anyio
import msgpack
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

Message = dict[str, Any]


class Closed(Exception):
    def __init__(self, code: int | None, reason: str, received: list[Message]) -> None:
        super().__init__(f"closed {code} {reason}")
        self.code = code
        self.reason = reason
        self.received = received


class Client:
    def __init__(self, ws: ClientConnection, kind: str) -> None:
        self.ws = ws
        self.kind = kind
        self.welcome: Message = {}
        self.received: list[Message] = []
        self.last_seq = 0

    @classmethod
    async def open(
        cls,
        url: str,
        kind: str = "json",
        *,
        headers: dict[str, str] | None = None,
        rcvbuf: int | None = None,
        **kw: Any,
    ) -> Client:
        if rcvbuf is not None:
            # A small receive window, set before connecting, makes a slow reader
            # show up on the server within a few hundred kB instead of tens of MB.
            host, port = url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.connect((host, int(port)))  # loopback: immediate
            kw["sock"] = sock
        ws = await connect(
            url,
            subprotocols=[f"parley.v1.{kind}"],  # type: ignore[list-item]
            additional_headers=headers,
            max_size=None,
            open_timeout=10,
            **kw,
        )
        return cls(ws, kind)

    def encode(self, message: Message) -> bytes | str:
        if self.kind == "msgpack":
            packed: bytes = msgpack.packb(message, use_bin_type=True)
            return packed
        return json.dumps(
            {
                k: base64.b64encode(v).decode() if isinstance(v, bytes) else v
                for k, v in message.items()
            }
        )

    async def send(self, message: Message) -> None:
        await self.ws.send(self.encode(message))

    async def send_raw(self, frame: bytes | str) -> None:
        await self.ws.send(frame)

    async def hello(self, token: str = "test", **fields: Any) -> Message:
        await self.send({"type": "hello", "v": 1, "token": token, **fields})
        self.welcome = await self.recv()
        assert self.welcome["type"] == "welcome", self.welcome
        # Replay continues from what this client had seen.
        self.last_seq = fields["resume"]["last_seq"] if fields.get("resume") else 0
        return self.welcome

    async def recv(self, timeout: float = 10) -> Message:
        try:
            with anyio.fail_after(timeout):
                frame = await self.ws.recv()
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd is not None else None
            reason = exc.rcvd.reason if exc.rcvd is not None else ""
            raise Closed(code, reason, self.received) from None
        message: Message
        if isinstance(frame, bytes):
            message = msgpack.unpackb(frame, raw=False)
        else:
            message = json.loads(frame)
        if "seq" in message:
            assert message["seq"] == self.last_seq + 1, (message, self.last_seq)
            self.last_seq = message["seq"]
        self.received.append(message)
        return message

    async def recv_until(
        self, predicate: Callable[[Message], bool], timeout: float = 20
    ) -> list[Message]:
        """Messages up to and including the first that satisfies ``predicate``."""
        got: list[Message] = []
        with anyio.fail_after(timeout):
            while True:
                message = await self.recv(timeout)
                got.append(message)
                if predicate(message):
                    return got

    async def closed(self, timeout: float = 10) -> Closed:
        """Read until the server closes; the close (with what came before it)."""
        start = len(self.received)
        try:
            with anyio.fail_after(timeout):
                while True:
                    await self.recv(timeout)
        except Closed as closed:
            return Closed(closed.code, closed.reason, self.received[start:])

    def resume_fields(self) -> Message:
        return {"resume": {"token": self.welcome["resume_token"], "last_seq": self.last_seq}}

    async def close(self) -> None:
        await self.ws.close()

    def abort(self) -> None:
        """Drop the TCP connection without a closing handshake (a network cut)."""
        transport = self.ws.transport
        transport.abort()


class Timed:
    """The client's messages with the time each arrived."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.at: list[tuple[float, Message]] = []

    async def until(self, predicate: Callable[[Message], bool], timeout: float = 60) -> Message:
        with anyio.fail_after(timeout):
            while True:
                message = await self.client.recv(timeout)
                self.at.append((time.monotonic(), message))
                if predicate(message):
                    return message

    def index_of(self, message: Message) -> int:
        return next(i for i, (_, m) in enumerate(self.at) if m is message)

    def time_of(self, message: Message) -> float:
        return self.at[self.index_of(message)][0]

    def of_turn(self, turn_id: str) -> list[Message]:
        return [m for _, m in self.at if m.get("turn_id") == turn_id]
