"""What an idempotent operation hands back to its route (which turns it into a response)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

T = TypeVar("T", bound=BaseModel)

REPLAY_HEADER = "Idempotent-Replayed"


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """The response to send: freshly made (``result`` set) or replayed from the key record
    (``result`` is ``None``; ``body`` is exactly what the first request answered)."""

    status_code: int
    body: dict[str, Any]
    result: T | None

    @property
    def replayed(self) -> bool:
        return self.result is None
