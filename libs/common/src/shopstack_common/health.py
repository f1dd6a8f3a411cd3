"""Readiness checks: each dependency probed with its own deadline, reported by name."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from shopstack_common.problems import NOT_READY, problem_body

AsyncCheck = Callable[[], Awaitable[object]]
SyncCheck = Callable[[], object]


def _failure(error: BaseException) -> dict[str, Any]:
    message = str(error) or type(error).__name__
    # Keep it to one line: this is shown to whoever polls /readyz.
    return {"status": "fail", "error": message.splitlines()[0][:200]}


async def run_checks(
    checks: Mapping[str, AsyncCheck], deadline_seconds: float
) -> dict[str, dict[str, Any]]:
    async def one(check: AsyncCheck) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            await asyncio.wait_for(check(), deadline_seconds)
        except TimeoutError:
            return {"status": "fail", "error": f"no answer within {deadline_seconds:g}s"}
        except Exception as error:
            return _failure(error)
        return {"status": "ok", "duration_ms": round((time.perf_counter() - started) * 1000, 2)}

    names = list(checks)
    results = await asyncio.gather(*(one(checks[name]) for name in names))
    return dict(zip(names, results, strict=True))


def run_checks_sync(checks: Mapping[str, SyncCheck]) -> dict[str, dict[str, Any]]:
    """Run blocking checks in turn; each must bound its own time (driver timeouts)."""
    results: dict[str, dict[str, Any]] = {}
    for name, check in checks.items():
        started = time.perf_counter()
        try:
            check()
        except Exception as error:
            results[name] = _failure(error)
        else:
            elapsed = round((time.perf_counter() - started) * 1000, 2)
            results[name] = {"status": "ok", "duration_ms": elapsed}
    return results


def readiness(results: Mapping[str, Mapping[str, Any]]) -> tuple[int, dict[str, Any]]:
    """200 with the checks when all pass; otherwise a 503 problem naming what failed."""
    failed = sorted(name for name, result in results.items() if result["status"] != "ok")
    if not failed:
        return 200, {"status": "ok", "checks": dict(results)}
    return 503, problem_body(
        503,
        problem=NOT_READY,
        detail="Dependencies not reachable: " + ", ".join(failed),
        extra={"checks": dict(results)},
    )


HEALTHY_BODY: dict[str, str] = {"status": "ok"}
