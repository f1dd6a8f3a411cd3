"""Readiness: critical checks decide it; non-critical ones only make it degraded."""

from shopstack_common.health import NonCriticalCheck, readiness, run_checks, run_checks_sync


async def ok() -> None:
    pass


async def down() -> None:
    raise ConnectionError("connection refused")


async def test_a_failed_critical_check_is_not_ready() -> None:
    status, body = readiness(await run_checks({"postgres": down, "redis": ok}, 1))
    assert status == 503
    assert body["type"] == "/problems/not-ready"
    assert body["checks"]["postgres"] == {"status": "fail", "error": "connection refused"}
    assert body["detail"] == "Dependencies not reachable: postgres"


async def test_a_failed_non_critical_check_is_degraded_but_ready() -> None:
    status, body = readiness(await run_checks({"redis": NonCriticalCheck(down), "me": ok}, 1))
    assert status == 200
    assert body["status"] == "degraded"
    assert body["checks"]["redis"] == {"status": "degraded", "error": "connection refused"}
    assert body["checks"]["me"]["status"] == "ok"


async def test_all_passing_is_ok() -> None:
    status, body = readiness(await run_checks({"redis": NonCriticalCheck(ok)}, 1))
    assert (status, body["status"]) == (200, "ok")


def test_sync_checks_can_be_non_critical() -> None:
    def refused() -> None:
        raise OSError("no route to host")

    results = run_checks_sync({"cache": NonCriticalCheck(refused)})
    assert results["cache"]["status"] == "degraded"
    assert readiness(results)[0] == 200
