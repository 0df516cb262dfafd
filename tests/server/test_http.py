"""HTTP routes beside the socket, auth, tokens and origins, on the real server."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import InvalidStatus

from tests.support.client import Client
from tests.support.server import ROOT, ServerProcess, numbered_config, run_server

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    config = numbered_config()
    config["server"] = {"allowed_origins": ["https://app.example.com"]}
    config["tenants"] = [
        {"id": "acme", "api_keys": ["sk-acme"], "max_sessions": 2, "allowed_tools": ["calculator"]},
        {"id": "globex", "api_keys": ["sk-globex"], "allowed_modes": ["caption"]},
    ]
    with run_server(Path(tmp_path_factory.mktemp("keyed")), config) as proc:
        yield proc


def test_health_ready_and_metrics(keyed: ServerProcess) -> None:
    assert keyed.get("/healthz").json() == {"ok": True}
    assert keyed.get("/readyz").json() == {"ready": True, "status": "ready"}
    text = keyed.get("/metrics").text
    for name in (
        "parley_sessions{",
        "parley_frames_total",
        "parley_resumes_total",
        "parley_closes_total",
        "parley_outbound_queue_events",
        "parley_replayed_events_total",
    ):
        assert name in text


async def test_ephemeral_token_works_in_hello_and_api_key_never_leaves(
    keyed: ServerProcess,
) -> None:
    assert keyed.post("/v1/tokens").status_code == 401
    assert keyed.post("/v1/tokens", headers={"Authorization": "Bearer nope"}).status_code == 401
    issued = keyed.post("/v1/tokens", headers={"Authorization": "Bearer sk-acme"}).json()
    assert "sk-acme" not in issued["token"] and issued["expires_at"] > 0
    client = await Client.open(keyed.url)
    await client.hello(token=issued["token"])
    await client.send({"type": "bye"})  # detached sessions count toward the quota
    await client.closed()


async def test_bad_token_is_4001(keyed: ServerProcess) -> None:
    client = await Client.open(keyed.url)
    await client.send({"type": "hello", "v": 1, "token": "sk-wrong"})
    closed = await client.closed()
    assert closed.code == 4001 and closed.received[0]["code"] == "unauthorized"


async def test_tenant_limits(keyed: ServerProcess) -> None:
    forbidden = await Client.open(keyed.url)
    await forbidden.send(
        {"type": "hello", "v": 1, "token": "sk-acme", "session": {"tools": ["search_documents"]}}
    )
    assert (await forbidden.closed()).received[0]["code"] == "forbidden"
    mode = await Client.open(keyed.url)
    await mode.send({"type": "hello", "v": 1, "token": "sk-globex", "session": {"mode": "agent"}})
    assert (await mode.closed()).code == 4003
    held = [await Client.open(keyed.url) for _ in range(2)]
    for client in held:
        await client.hello(token="sk-acme")
    over = await Client.open(keyed.url)
    await over.send({"type": "hello", "v": 1, "token": "sk-acme"})
    closed = await over.closed()
    assert closed.code == 4029 and closed.received[0]["code"] == "quota_exceeded"
    # Another tenant is not affected by acme's quota.
    other = await Client.open(keyed.url)
    await other.hello(token="sk-globex", session={"mode": "caption"})
    for client in [*held, other]:
        await client.send({"type": "bye"})
        await client.closed()


async def test_resume_token_of_another_tenant_is_refused(keyed: ServerProcess) -> None:
    acme = await Client.open(keyed.url)
    await acme.hello(token="sk-acme")
    thief = await Client.open(keyed.url)
    await thief.send({"type": "hello", "v": 1, "token": "sk-globex", **acme.resume_fields()})
    closed = await thief.closed()
    assert closed.code == 4004 and "tenant" in closed.received[0]["message"]
    await acme.send({"type": "bye"})
    await acme.closed()


async def test_origin_allowlist(keyed: ServerProcess) -> None:
    with pytest.raises(InvalidStatus) as refused:
        await Client.open(keyed.url, headers={"Origin": "https://evil.example"})
    assert refused.value.response.status_code == 403
    client = await Client.open(keyed.url, headers={"Origin": "https://app.example.com"})
    await client.hello(token="sk-acme")
    await client.send({"type": "bye"})
    await client.closed()


def test_open_access_refuses_a_public_address(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "server.cli", "serve", "--host", "0.0.0.0", "--port", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "no API keys are configured" in done.stderr


def test_bad_config_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[server]\nport = 'eighty'\n")
    done = subprocess.run(
        [sys.executable, "-m", "server.cli", "serve", "--config", str(bad)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "server.port" in done.stderr


def test_open_access_warns_on_loopback(tmp_path: Path) -> None:
    with run_server(tmp_path, numbered_config()) as proc:
        assert any("no API keys configured" in line for line in proc.lines)
        # Any bearer works for the token route too, on loopback without keys.
        assert httpx.post(
            proc.http + "/v1/tokens", headers={"Authorization": "Bearer x"}
        ).is_success


async def test_own_origin_is_allowed_with_a_picked_port(tmp_path: Path) -> None:
    """``--port 0``: the page served by the server itself may connect back to it."""
    with run_server(tmp_path, numbered_config()) as proc:
        own = await Client.open(proc.url, headers={"Origin": proc.http})
        await own.hello()
        await own.close()
        with pytest.raises(InvalidStatus):
            await Client.open(proc.url, headers={"Origin": "http://evil.example:1"})
