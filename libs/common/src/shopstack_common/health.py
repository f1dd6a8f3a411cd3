"""Readiness checks: each dependency probed with its own deadline, reported by name.

A check fails readiness, unless it is wrapped in ``NonCriticalCheck``: a dependency the service
can do without (the gateway's rate limiter fails open when Redis is down). Its failure is
reported as ``degraded`` and the service stays ready.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Generic, TypeVar

from shopstack_common.problems import NOT_READY, problem_body

AsyncCheck = Callable[[], Awaitable[object]]
SyncCheck = Callable[[], object]
_Result = TypeVar("_Result")


class NonCriticalCheck(Generic[_Result]):
    """A check of a dependency the service can do without: when it fails, the service is
    ``degraded`` but ready."""

    def __init__(self, check: Callable[[], _Result]) -> None:
        self.check = check

    def __call__(self) -> _Result:
        return self.check()


def _failed(check: object, result: dict[str, Any]) -> dict[str, Any]:
    if isinstance(check, NonCriticalCheck):
        return {**result, "status": "degraded"}
    return result


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
            return _failed(
                check, {"status": "fail", "error": f"no answer within {deadline_seconds:g}s"}
            )
        except Exception as error:
            return _failed(check, _failure(error))
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
            results[name] = _failed(check, _failure(error))
        else:
            elapsed = round((time.perf_counter() - started) * 1000, 2)
            results[name] = {"status": "ok", "duration_ms": elapsed}
    return results


def readiness(results: Mapping[str, Mapping[str, Any]]) -> tuple[int, dict[str, Any]]:
    """200 with the checks when every critical one passes (``degraded`` when a non-critical
    one failed); otherwise a 503 problem naming what failed."""
    failed = sorted(name for name, result in results.items() if result["status"] == "fail")
    if not failed:
        degraded = any(result["status"] == "degraded" for result in results.values())
        return 200, {"status": "degraded" if degraded else "ok", "checks": dict(results)}
    return 503, problem_body(
        503,
        problem=NOT_READY,
        detail="Dependencies not reachable: " + ", ".join(failed),
        extra={"checks": dict(results)},
    )


HEALTHY_BODY: dict[str, str] = {"status": "ok"}
