"""A sans-I/O parser for Server-Sent Events (the ``text/event-stream`` format).

Bytes go in (``feed``), complete events come out; ``end`` says the stream closed.
It follows the WHATWG rules that matter here: lines end with CRLF, LF or CR; a
line starting with ``:`` is a comment; ``data`` lines of one event join with ``\\n``;
a blank line dispatches the event; a single space after the colon is dropped.

Hostile input raises ``SseError`` (an ``EngineError``) and nothing else: invalid
UTF-8, a line or an event over the size limit, or a stream that ends in the middle
of an event. The parser never holds more than ``max_event_bytes`` (plus one read).
"""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.text.engine import EngineError

DEFAULT_MAX_EVENT_BYTES = 1 << 20


class SseError(EngineError):
    """The event stream is malformed or too large."""


@dataclass(frozen=True, slots=True)
class SseEvent:
    data: str
    event: str = "message"
    id: str | None = None


class SseParser:
    def __init__(self, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> None:
        self._max = max_event_bytes
        self._buffer = bytearray()
        self._data: list[str] = []
        self._event_bytes = 0
        self._event = ""
        self._id: str | None = None
        self._last_cr = False  # the previous feed ended with CR: a following LF is its pair
        self._has_fields = False

    def feed(self, data: bytes) -> list[SseEvent]:
        """Parse ``data``; return the events it completes."""
        if not data:
            return []
        if self._last_cr and data.startswith(b"\n"):
            data = data[1:]
        self._last_cr = False
        self._buffer += data
        events: list[SseEvent] = []
        start = 0
        buf = self._buffer
        while True:
            cut = _next_line_end(buf, start)
            if cut < 0:
                break
            line = bytes(buf[start:cut])
            if buf[cut] == 0x0D:
                if cut + 1 == len(buf):
                    self._last_cr = True
                    start = cut + 1
                elif buf[cut + 1] == 0x0A:
                    start = cut + 2
                else:
                    start = cut + 1
            else:
                start = cut + 1
            event = self._line(line)
            if event is not None:
                events.append(event)
        del buf[:start]
        if len(buf) > self._max:
            raise SseError(f"event-stream line over {self._max} bytes")
        return events

    def end(self) -> None:
        """The stream closed: raise ``SseError`` if it stopped inside an event."""
        if self._buffer or self._has_fields:
            raise SseError("event stream ended in the middle of an event")

    def _line(self, raw: bytes) -> SseEvent | None:
        if not raw:
            return self._dispatch()
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise SseError("event stream is not valid UTF-8") from None
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        self._has_fields = True
        if name == "data":
            self._event_bytes += len(raw) + 1
            if self._event_bytes > self._max:
                raise SseError(f"event over {self._max} bytes")
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._id = value
        # "retry" and unknown fields are ignored, as the format says.
        return None

    def _dispatch(self) -> SseEvent | None:
        data, event, self._data, self._event = self._data, self._event, [], ""
        self._event_bytes = 0
        self._has_fields = False
        if not data:
            return None
        return SseEvent("\n".join(data), event or "message", self._id)


def _next_line_end(buf: bytearray, start: int) -> int:
    lf = buf.find(b"\n", start)
    cr = buf.find(b"\r", start)
    if lf < 0:
        return cr
    if cr < 0:
        return lf
    return min(lf, cr)
