"""The WAV streaming client against a loopback peer that speaks PROTOCOL.md's side
of a caption session (welcome, captions with seq), over real websockets."""

from __future__ import annotations

import base64
import io
import json
import wave
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import pytest
from websockets.asyncio.server import ServerConnection, serve

from pipelines.audio.stream_wav import CaptionPrinter, main, stream

pytestmark = pytest.mark.anyio


def write_wav(path: Path, rate: int, channels: int, seconds: float) -> bytes:
    n = int(rate * seconds)
    pcm = (np.random.default_rng(0).integers(-2000, 2000, n * channels)).astype("<i2").tobytes()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    return pcm


class Peer:
    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.subprotocol: str | None = None

    def decode(self, frame: bytes | str) -> dict[str, Any]:
        if self.subprotocol == "parley.v1.msgpack":
            assert isinstance(frame, bytes)
            return dict(msgpack.unpackb(frame, raw=False))
        message = dict(json.loads(frame))
        if message.get("type") == "audio":
            message["data"] = base64.b64decode(message["data"])
        return message

    def encode(self, message: dict[str, Any]) -> bytes | str:
        if self.subprotocol == "parley.v1.msgpack":
            return bytes(msgpack.packb(message, use_bin_type=True))
        return json.dumps(message)

    async def handler(self, ws: ServerConnection) -> None:
        self.subprotocol = ws.subprotocol
        hello = self.decode(await ws.recv())
        self.received.append(hello)
        await ws.send(
            self.encode(
                {
                    "type": "welcome",
                    "session_id": "s1",
                    "resume_token": "r",
                    "resumed": False,
                    "last_seq": 0,
                    "audio_next": 3,
                    "heartbeat_s": 0.05,
                    "resume_ttl_s": 30,
                    "limits": {},
                    "server": {},
                }
            )
        )
        await ws.send(
            self.encode(
                {"type": "caption.partial", "segment": 0, "text": "hel", "start": 0.1, "end": 0.3}
            )
        )
        async for frame in ws:
            message = self.decode(frame)
            self.received.append(message)
            if message["type"] == "audio.end":
                await ws.send(
                    self.encode(
                        {
                            "type": "caption.final",
                            "seq": 1,
                            "segment": 0,
                            "text": "hello world",
                            "start": 0.1,
                            "end": 0.9,
                            "speaker": None,
                        }
                    )
                )
            if message["type"] == "bye":
                await ws.close()
                return


@pytest.mark.parametrize("json_only", [False, True], ids=["msgpack", "json"])
async def test_streams_a_wav_and_prints_captions(tmp_path: Path, json_only: bool) -> None:
    pcm = write_wav(tmp_path / "a.wav", 22050, 2, 0.5)
    peer = Peer()
    out = io.StringIO()
    async with serve(
        peer.handler, "127.0.0.1", 0, subprotocols=["parley.v1.msgpack", "parley.v1.json"]
    ) as server:
        port = server.sockets[0].getsockname()[1]
        finals = await stream(
            tmp_path / "a.wav",
            f"ws://127.0.0.1:{port}/v1/stream",
            "tok",
            speed=2.0,
            linger_s=0.3,
            json_only=json_only,
            printer=CaptionPrinter(out),
        )
    assert finals == ["hello world"]
    assert "hello world" in out.getvalue()
    assert peer.subprotocol == ("parley.v1.json" if json_only else "parley.v1.msgpack")
    hello = peer.received[0]
    assert hello["type"] == "hello" and hello["v"] == 1 and hello["token"] == "tok"
    assert hello["session"]["mode"] == "caption"
    assert hello["session"]["audio"] == {
        "encoding": "pcm_s16le",
        "sample_rate": 22050,
        "channels": 2,
    }
    audio = [m for m in peer.received if m["type"] == "audio"]
    assert [m["chunk"] for m in audio] == list(range(3, 3 + len(audio)))  # from audio_next
    assert b"".join(m["data"] for m in audio) == pcm
    assert all(len(m["data"]) % 4 == 0 for m in audio)  # whole stereo frames
    kinds = [m["type"] for m in peer.received]
    assert "ping" in kinds
    assert {"type": "ack", "seq": 1} in peer.received
    assert kinds.index("audio.end") > kinds.index("audio") and kinds[-1] == "bye"


def test_a_file_that_is_not_16_bit_pcm_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.wav"
    with wave.open(str(bad), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(8000)
        w.writeframes(b"\x80" * 800)
    assert main([str(bad), "--token", "t", "--url", "ws://127.0.0.1:9/v1/stream"]) == 1
    (tmp_path / "junk.wav").write_bytes(b"not a wav at all")
    assert main([str(tmp_path / "junk.wav"), "--token", "t"]) == 1
