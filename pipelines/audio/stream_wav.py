"""Stream a WAV file to a Parley server in ``caption`` mode and print captions live.

    python -m pipelines.audio.stream_wav FILE --url ws://127.0.0.1:8765/v1/stream \\
        --token T [--speed 1.0] [--json]

The file's own rate and channel count are declared (the server resamples); it must be
16-bit PCM. Audio goes out in chunks paced at ``--speed`` times real time, numbered from
``welcome.audio_next``; an app-level ``ping`` every ``heartbeat_s`` (docs/protocol.md,
"Heartbeats"); ``audio.end`` after the last chunk; then captions are awaited until
the server has been quiet for ``--linger`` seconds, and the session ends with ``bye``.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import anyio
import msgpack
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

SUBPROTOCOLS = ("parley.v1.msgpack", "parley.v1.json")


@dataclass
class WavAudio:
    pcm: bytes
    sample_rate: int
    channels: int

    @property
    def bytes_per_second(self) -> int:
        return self.sample_rate * self.channels * 2


def read_wav(path: Path) -> WavAudio:
    try:
        with wave.open(str(path), "rb") as w:
            if w.getsampwidth() != 2 or w.getcomptype() != "NONE":
                raise ValueError(f"{path}: only 16-bit PCM WAV files can be streamed")
            return WavAudio(w.readframes(w.getnframes()), w.getframerate(), w.getnchannels())
    except (wave.Error, EOFError) as exc:
        raise ValueError(f"{path}: not a WAV file ({exc})") from None


@dataclass
class Codec:
    """Encodes and decodes frames in the sub-protocol the server selected."""

    msgpack: bool

    def encode(self, message: dict[str, Any]) -> bytes | str:
        if self.msgpack:
            return bytes(msgpack.packb(message, use_bin_type=True))
        wire = {
            k: base64.b64encode(v).decode() if isinstance(v, bytes) else v
            for k, v in message.items()
        }
        return json.dumps(wire)

    def decode(self, frame: bytes | str) -> dict[str, Any]:
        if self.msgpack:
            raw = msgpack.unpackb(frame if isinstance(frame, bytes) else frame.encode(), raw=False)
        else:
            raw = json.loads(frame)
        if not isinstance(raw, dict):
            raise ValueError("server frame is not a map")
        return raw


@dataclass
class CaptionPrinter:
    out: TextIO = sys.stdout
    finals: list[str] = field(default_factory=list)
    _partial_open: bool = False

    def show(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "caption.partial":
            self.out.write(f"\r\x1b[K… {message.get('text', '')}")
            self._partial_open = True
        elif kind == "caption.final":
            self._clear()
            text = message.get("text", "")
            self.finals.append(text)
            self.out.write(
                f"[{message.get('start', 0):7.2f} → {message.get('end', 0):7.2f}] {text}\n"
            )
        elif kind in ("speech.started", "speech.stopped", "error"):
            self._clear()
            detail = message.get("at", message.get("message", ""))
            self.out.write(f"  ({kind} {detail})\n")
        self.out.flush()

    def _clear(self) -> None:
        if self._partial_open:
            self.out.write("\r\x1b[K")
            self._partial_open = False


async def stream(
    path: Path,
    url: str,
    token: str,
    *,
    speed: float = 1.0,
    chunk_ms: int = 100,
    linger_s: float = 3.0,
    json_only: bool = False,
    printer: CaptionPrinter | None = None,
) -> list[str]:
    """Streams ``path``; returns the final captions' texts."""
    audio = read_wav(path)
    printer = printer or CaptionPrinter()
    offered = [SUBPROTOCOLS[1]] if json_only else list(SUBPROTOCOLS)
    async with connect(
        url,
        subprotocols=offered,  # type: ignore[arg-type]
        max_size=None,
    ) as ws:
        codec = Codec(msgpack=ws.subprotocol == "parley.v1.msgpack")
        await ws.send(
            codec.encode(
                {
                    "type": "hello",
                    "v": 1,
                    "token": token,
                    "session": {
                        "mode": "caption",
                        "audio": {
                            "encoding": "pcm_s16le",
                            "sample_rate": audio.sample_rate,
                            "channels": audio.channels,
                        },
                        "client": {"name": "parley-stream-wav", "version": "1"},
                    },
                }
            )
        )
        welcome = codec.decode(await ws.recv())
        if welcome.get("type") != "welcome":
            raise RuntimeError(f"server refused the session: {welcome}")
        heartbeat = float(welcome.get("heartbeat_s", 15.0))
        first_chunk = int(welcome.get("audio_next", 0))
        heard = anyio.Event()
        sent_all = anyio.Event()

        async def receive() -> None:
            nonlocal heard
            async for frame in ws:
                heard.set()
                heard = anyio.Event()
                message = codec.decode(frame)
                printer.show(message)
                if isinstance(message.get("seq"), int):
                    await ws.send(codec.encode({"type": "ack", "seq": message["seq"]}))

        async def ping() -> None:
            n = 0
            while True:
                await anyio.sleep(heartbeat)
                n += 1
                await ws.send(codec.encode({"type": "ping", "id": n}))

        async def send_audio() -> None:
            step = max(1, audio.bytes_per_second * chunk_ms // 1000)
            step -= step % (2 * audio.channels)
            t0 = time.monotonic()
            for k, i in enumerate(range(0, len(audio.pcm), step)):
                due = t0 + i / audio.bytes_per_second / speed
                await anyio.sleep(max(0.0, due - time.monotonic()))
                chunk = audio.pcm[i : i + step]
                await ws.send(
                    codec.encode({"type": "audio", "data": chunk, "chunk": first_chunk + k})
                )
            await ws.send(codec.encode({"type": "audio.end"}))
            sent_all.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(receive)
            tg.start_soon(ping)
            tg.start_soon(send_audio)
            await sent_all.wait()
            quiet = False
            while not quiet:  # until the server has said nothing for linger_s
                with anyio.move_on_after(linger_s) as scope:
                    await heard.wait()
                quiet = scope.cancelled_caught
            await ws.send(codec.encode({"type": "bye"}))
            tg.cancel_scope.cancel()
    return printer.finals


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Stream a WAV file for live captions.")
    ap.add_argument("file", type=Path)
    ap.add_argument("--url", default="ws://127.0.0.1:8765/v1/stream")
    ap.add_argument("--token", required=True)
    ap.add_argument("--speed", type=float, default=1.0, help="times real time")
    ap.add_argument("--chunk-ms", type=int, default=100)
    ap.add_argument("--json", action="store_true", help="offer only the JSON sub-protocol")
    ap.add_argument(
        "--linger",
        type=float,
        default=3.0,
        help="seconds of server quiet after audio.end before leaving",
    )
    args = ap.parse_args(argv)
    if args.speed <= 0:
        ap.error("--speed must be > 0")
    try:
        anyio.run(
            lambda: stream(
                args.file,
                args.url,
                args.token,
                speed=args.speed,
                chunk_ms=args.chunk_ms,
                linger_s=args.linger,
                json_only=args.json,
            )
        )
    except (OSError, ValueError, RuntimeError, ConnectionClosed) as exc:
        print(f"stream_wav: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
