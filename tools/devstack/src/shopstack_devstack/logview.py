"""Readable, interleaved logs: JSON log lines become one aligned, coloured line each.

Raw (``SHOPSTACK_LOG_FORMAT=json``), every line is one JSON object and nothing else, so the
stream can be piped to ``jq``: the services' lines as they wrote them (each names its
``service``), and any other line (PostgreSQL's, NGINX's, the supervisor's own) wrapped in the
same shape, its process as the ``service``.
"""

from __future__ import annotations

import datetime
import json
import sys
import threading
from collections.abc import Iterable
from typing import IO, Any

_COLOURS = ["36", "35", "33", "32", "34", "96", "95", "93"]
_LEVEL_COLOURS = {"WARNING": "33", "ERROR": "31", "CRITICAL": "31;1", "DEBUG": "2"}
# Fields every line has, or that the prefix already shows.
_HIDDEN = {"time", "level", "logger", "message", "service", "taskName", "span_id"}


class LogView:
    def __init__(
        self, stream: IO[str] | None = None, *, raw: bool = False, names: Iterable[str] = ()
    ) -> None:
        """``names``: every process the view will show, known up front so that the name
        column has its final width from the first line."""
        self.stream = stream or sys.stdout
        self.raw = raw
        self.colour = self.stream.isatty()
        self._lock = threading.Lock()
        self._names: dict[str, str] = {}
        self.width = 8
        for name in names:
            self.register(name)

    def _paint(self, text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.colour else text

    def register(self, name: str) -> None:
        self._names.setdefault(name, _COLOURS[len(self._names) % len(_COLOURS)])
        self.width = max(self.width, len(name))

    def line(self, name: str, text: str) -> None:
        self.register(name)
        if self.raw:
            out = as_json_line(name, text.rstrip("\n"))
        else:
            prefix = self._paint(f"{name:<{self.width}} |", self._names[name])
            out = f"{prefix} {self.render(text.rstrip(chr(10)))}"
        with self._lock:
            self.stream.write(out + "\n")
            self.stream.flush()

    def say(self, text: str) -> None:
        self.line("devstack", text)

    def render(self, text: str) -> str:
        if not text.startswith("{"):
            return text
        try:
            record: dict[str, Any] = json.loads(text)
        except ValueError:
            return text
        if not isinstance(record, dict) or "message" not in record:
            return text
        level = str(record.get("level", "INFO"))
        clock = str(record.get("time", ""))[11:19]
        parts = [
            clock,
            self._paint(f"{level:<7}", _LEVEL_COLOURS.get(level, "0")),
            str(record["message"]),
        ]
        extras = " ".join(
            f"{key}={value}"
            for key, value in record.items()
            if key not in _HIDDEN and value not in (None, "")
        )
        if extras:
            parts.append(self._paint(extras, "2"))
        rendered = " ".join(p for p in parts if p)
        exc = record.get("exc_info")
        if exc:
            rendered += "\n" + str(exc)
        return rendered


def as_json_line(name: str, text: str) -> str:
    if text.startswith("{"):
        try:
            record = json.loads(text)
        except ValueError:
            record = None
        if isinstance(record, dict):
            if "service" in record:
                return text
            # NGINX's access lines, say: JSON of their own, without the process's name.
            return json.dumps({**record, "service": name})
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    wrapped = {"time": now, "level": "INFO", "logger": name, "message": text, "service": name}
    return json.dumps(wrapped)
