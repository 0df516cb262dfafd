"""Clients that move between nodes, as a careful client does."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio

from tests.support.client import Client, Closed, Message
from tests.support.server import ServerProcess


def final(segment: int) -> Callable[[Message], bool]:
    return lambda m: m["type"] == "caption.final" and m["segment"] == segment


def segments(messages: list[Message]) -> list[int]:
    return [int(m["segment"]) for m in messages if m["type"] == "caption.final"]


def durable(messages: list[Message]) -> list[Message]:
    return [m for m in messages if "seq" in m]


async def resume(
    node: ServerProcess, previous: Client, *, attempts: int = 40, **fields: Any
) -> Client:
    """Resume ``previous``'s session on ``node``, retrying while the cluster says
    ``overloaded`` (a session moving between nodes); the new client keeps counting
    seqs where ``previous`` stopped."""
    resume_fields = previous.resume_fields()
    for _ in range(attempts):
        client = await Client.open(node.url, "msgpack")
        try:
            await client.hello(**resume_fields, **fields)
        except AssertionError:
            closed = await client.closed()
            assert closed.code == 4029, (closed.code, client.received)
            await anyio.sleep(0.25)
            continue
        client.received = []
        return client
    raise AssertionError("the session never became resumable")


async def read_until_closed(client: Client, timeout: float = 20) -> Closed:
    """Everything up to the server's close (goaway included)."""
    return await client.closed(timeout)
