"""Run the real server as a child process on loopback, the way operators run it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
LISTENING = re.compile(r"listening on ws://([^\s/]+):(\d+)/v1/stream")

NUMBERED = "tests.support.numbered:create_provider"


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):  # an inline table, for options nested deeper
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    return repr(value)


def write_config(path: Path, sections: dict[str, Any]) -> Path:
    """A TOML file from nested dicts; a list of dicts under a key is an array of tables."""
    lines: list[str] = []
    for name, body in sections.items():
        if isinstance(body, list):
            for table in body:
                lines.append(f"[[{name}]]")
                lines += [f"{k} = {toml_value(v)}" for k, v in table.items()]
        else:
            lines.append(f"[{name}]")
            for key, value in body.items():
                if isinstance(value, dict):
                    lines.append(f"[{name}.{key}]")
                    lines += [f"{k} = {toml_value(v)}" for k, v in value.items()]
                else:
                    lines.append(f"{key} = {toml_value(value)}")
    path.write_text("\n".join(lines) + "\n")
    return path


def numbered_config(**limits: Any) -> dict[str, Any]:
    """Settings with the numbered test pipeline in every mode."""
    config: dict[str, Any] = {
        "pipelines": {"agent": NUMBERED, "caption": NUMBERED, "voice_agent": NUMBERED},
    }
    if limits:
        config["limits"] = limits
    return config


@dataclass
class ServerProcess:
    proc: subprocess.Popen[str]
    host: str
    port: int
    lines: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}/v1/stream"

    @property
    def http(self) -> str:
        return f"http://{self.host}:{self.port}"

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.get(self.http + path, timeout=10, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.post(self.http + path, timeout=10, **kwargs)

    def metric(self, name: str, labels: str = "") -> float:
        """The value of one sample of ``/metrics`` (0 when absent)."""
        wanted = f"{name}{{{labels}}}" if labels else name
        for line in self.get("/metrics").text.splitlines():
            if line.startswith(wanted + " "):
                return float(line.split()[-1])
        return 0.0

    def terminate(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout)


def _pump(proc: subprocess.Popen[str], lines: list[str], ready: threading.Event) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line.rstrip("\n"))
        if LISTENING.search(line):
            ready.set()
    ready.set()


@contextmanager
def run_server(
    tmp_path: Path, config: dict[str, Any] | None = None, *, args: tuple[str, ...] = ()
) -> Iterator[ServerProcess]:
    cmd = [sys.executable, "-m", "server.cli", "serve", "--port", "0"]
    if config is not None:
        cmd += ["--config", str(write_config(tmp_path / "parley.toml", config))]
    cmd += list(args)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    ready = threading.Event()
    pump = threading.Thread(target=_pump, args=(proc, lines, ready), daemon=True)
    pump.start()
    deadline = time.monotonic() + 120
    match = None
    while match is None and time.monotonic() < deadline and proc.poll() is None:
        ready.wait(0.1)
        match = next((m for line in lines if (m := LISTENING.search(line))), None)
    if match is None:
        proc.kill()
        proc.wait(10)
        pump.join(5)
        assert proc.stdout is not None
        proc.stdout.close()
        raise RuntimeError("server did not start:\n" + "\n".join(lines[-40:]))
    server = ServerProcess(proc, match.group(1), int(match.group(2)), lines)
    # Ready means the pipelines are loaded.
    while server.get("/readyz").status_code != 200:
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError("server never became ready:\n" + "\n".join(lines[-40:]))
        time.sleep(0.05)
    try:
        yield server
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        pump.join(5)
        assert proc.stdout is not None
        proc.stdout.close()
