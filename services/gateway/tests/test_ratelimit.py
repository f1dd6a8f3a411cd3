"""The limiter on the real Redis (the ``redis_url`` fixture), never a stand-in for it."""

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from shopstack_gateway.ratelimit import (
    GCRA_SCRIPT,
    Decision,
    Policy,
    RateLimiter,
    RateLimiterUnavailableError,
)

from .conftest import DEAD_REDIS


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


def decided(decision: Decision | None) -> Decision:
    assert decision is not None, "Redis answered, so the limiter decides"
    return decision


async def test_burst_passes_then_limited_then_refills(redis_client: aioredis.Redis) -> None:
    limiter = RateLimiter(redis_client, fail_open=True)
    policy = Policy(name="user", limit=3, window_seconds=3)  # a burst of 3, then 1 per second
    decisions = [await limiter.check(policy, "alice") for _ in range(3)]
    assert [d.allowed for d in decisions if d] == [True, True, True]
    assert [d.remaining for d in decisions if d] == [2, 1, 0]

    limited = await limiter.check(policy, "alice")
    assert limited is not None
    assert not limited.allowed
    assert 0 < limited.retry_after_seconds <= 1.0
    assert limited.retry_after == 1

    await asyncio.sleep(limited.retry_after_seconds + 0.05)
    refilled = await limiter.check(policy, "alice")
    assert refilled is not None
    assert refilled.allowed


async def test_a_decision_says_when_its_window_refills_in_seconds(
    redis_client: aioredis.Redis,
) -> None:
    limiter = RateLimiter(redis_client, fail_open=True)
    policy = Policy(name="user", limit=4, window_seconds=8)  # one request refills in 2 s
    first = decided(await limiter.check(policy, "refill"))
    assert 0 < first.reset_seconds <= 2.0
    assert first.retry_after_seconds == 0


async def test_buckets_are_per_partition_and_expire(redis_client: aioredis.Redis) -> None:
    limiter = RateLimiter(redis_client, fail_open=True)
    policy = Policy(name="address", limit=1, window_seconds=60)
    assert decided(await limiter.check(policy, "198.51.100.1")).allowed
    assert not decided(await limiter.check(policy, "198.51.100.1")).allowed
    assert decided(await limiter.check(policy, "198.51.100.2")).allowed
    keys = sorted(k if isinstance(k, str) else k.decode() for k in await redis_client.keys("*"))
    assert keys == ["gw:rl:address:198.51.100.1", "gw:rl:address:198.51.100.2"]
    for key in keys:
        assert 0 < await redis_client.pttl(key) <= 60_000


async def test_a_huge_limit_still_counts(redis_client: aioredis.Redis) -> None:
    # The interval rounds to zero microseconds and the TTL to zero milliseconds unless kept
    # at their minimum; Redis refuses a zero TTL, which fails closed here.
    limiter = RateLimiter(redis_client, fail_open=False)
    policy = Policy(name="user", limit=10**9, window_seconds=1)
    decisions = [await limiter.check(policy, "carol") for _ in range(3)]
    assert all(d is not None and d.allowed for d in decisions)


async def test_the_script_is_loaded_again_after_a_redis_restart(
    redis_client: aioredis.Redis,
) -> None:
    limiter = RateLimiter(redis_client, fail_open=False)
    policy = Policy(name="user", limit=5, window_seconds=60)
    await limiter.check(policy, "bob")
    await redis_client.script_flush()  # what a restarted Redis forgets
    decision = await limiter.check(policy, "bob")
    assert decision is not None
    assert decision.remaining == 3


async def test_dead_redis_fails_open_or_closed_as_configured() -> None:
    dead = aioredis.Redis.from_url(DEAD_REDIS, socket_timeout=0.2)
    policy = Policy(name="user", limit=5, window_seconds=60)
    assert await RateLimiter(dead, fail_open=True).check(policy, "x") is None
    with pytest.raises(RateLimiterUnavailableError):
        await RateLimiter(dead, fail_open=False).check(policy, "x")
    await dead.aclose()


async def test_a_redis_outage_is_logged_once_with_its_error_and_its_end(
    redis_client: aioredis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    dead = aioredis.Redis.from_url(DEAD_REDIS, socket_timeout=0.2)
    policy = Policy(name="user", limit=5, window_seconds=60)
    now = [1000.0]
    limiter = RateLimiter(dead, fail_open=True, cooldown_seconds=60, clock=lambda: now[0])
    caplog.set_level(logging.INFO, logger="shopstack_gateway.ratelimit")
    assert await limiter.check(policy, "x") is None
    assert await limiter.check(policy, "x") is None  # cooling down: Redis is left alone
    [failing] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert failing.getMessage().startswith("rate limiting (Redis) failing: ")
    assert "Connect" in failing.getMessage() or "refused" in failing.getMessage()
    # Redis is back (the limiter's script now reaches a live one) once the cooldown is over.
    limiter._script = redis_client.register_script(GCRA_SCRIPT)
    now[0] += 61
    assert await limiter.check(policy, "x") is not None
    [recovered] = [r for r in caplog.records if r.levelno == logging.INFO]
    assert recovered.getMessage() == "rate limiting (Redis) recovered"
    # One failure reached Redis; the request in the cooldown never tried it.
    assert recovered.occurrences == 1  # type: ignore[attr-defined]
    await dead.aclose()


def test_a_refusal_carries_its_headers_in_lowercase_as_asgi_wants() -> None:
    policy = Policy(name="user", limit=5, window_seconds=60)
    refused = Decision(policy, allowed=False, remaining=0, retry_after_seconds=1.5,
                       reset_seconds=3)  # fmt: skip
    assert refused.headers() == [
        (b"ratelimit-policy", b'"user";q=5;w=60'),
        (b"ratelimit", b'"user";r=0;t=2'),
        (b"retry-after", b"2"),
    ]


def test_an_allowed_request_is_told_when_its_window_refills() -> None:
    policy = Policy(name="user", limit=5, window_seconds=60)
    allowed = Decision(policy, allowed=True, remaining=4, retry_after_seconds=0, reset_seconds=2.5)
    assert allowed.headers() == [
        (b"ratelimit-policy", b'"user";q=5;w=60'),
        (b"ratelimit", b'"user";r=4;t=3'),
    ]


async def test_redis_is_tried_again_once_the_cooldown_is_over(redis_client: aioredis.Redis) -> None:
    dead = aioredis.Redis.from_url(DEAD_REDIS, socket_timeout=0.2)
    policy = Policy(name="user", limit=5, window_seconds=60)
    # No cooldown: the next request after a failure already goes to Redis.
    limiter = RateLimiter(dead, fail_open=True, cooldown_seconds=0)
    assert await limiter.check(policy, "x") is None
    limiter._script = redis_client.register_script(GCRA_SCRIPT)  # Redis is back
    assert await limiter.check(policy, "x") is not None
    await dead.aclose()


class CountingScript:
    """The limiter's script, counting the calls that reach Redis."""

    def __init__(self, limiter: RateLimiter) -> None:
        self.script = limiter._script
        self.calls: list[int] = []  # the number of buckets in each call

    async def __call__(self, *, keys: list[str], args: list[int]) -> list[int]:
        self.calls.append(len(keys))
        answers: list[int] = await self.script(keys=keys, args=args)
        return answers


async def test_the_checks_of_one_tick_share_one_call_and_decide_as_one_by_one(
    redis_client: aioredis.Redis,
) -> None:
    limiter = RateLimiter(redis_client, fail_open=False)
    counting = limiter._script = CountingScript(limiter)  # type: ignore[assignment]
    policy = Policy(name="user", limit=3, window_seconds=60)
    other = Policy(name="address", limit=1, window_seconds=60)
    checks = [limiter.check(policy, "dana") for _ in range(5)] + [limiter.check(other, "1.2.3.4")]
    decisions = [decided(d) for d in await asyncio.gather(*checks)]
    assert counting.calls == [6]
    assert [(d.allowed, d.remaining) for d in decisions] == [
        (True, 2), (True, 1), (True, 0), (False, 0), (False, 0), (True, 0),
    ]  # fmt: skip
    assert [d.policy for d in decisions] == [policy] * 5 + [other]
    assert all(d.retry_after_seconds == 0 for d in decisions if d.allowed)
    assert all(0 < d.retry_after_seconds <= 20 for d in decisions if not d.allowed)
    # The next tick's checks are the next call.
    assert not decided(await limiter.check(other, "1.2.3.4")).allowed
    assert counting.calls == [6, 1]


@pytest.mark.parametrize("fail_open", [True, False])
async def test_a_failed_call_fails_every_check_it_carried(fail_open: bool) -> None:
    dead = aioredis.Redis.from_url(DEAD_REDIS, socket_timeout=0.2)
    limiter = RateLimiter(dead, fail_open=fail_open, cooldown_seconds=0)
    policy = Policy(name="user", limit=5, window_seconds=60)
    outcomes = await asyncio.gather(
        *(limiter.check(policy, name) for name in ("x", "y", "z")), return_exceptions=True
    )
    if fail_open:
        assert outcomes == [None, None, None]
    else:
        assert all(isinstance(o, RateLimiterUnavailableError) for o in outcomes), outcomes
    await dead.aclose()


async def test_a_check_whose_request_went_away_leaves_the_others_answered(
    redis_client: aioredis.Redis,
) -> None:
    limiter = RateLimiter(redis_client, fail_open=False)
    policy = Policy(name="user", limit=5, window_seconds=60)
    gone = asyncio.ensure_future(limiter.check(policy, "erin"))
    staying = asyncio.ensure_future(limiter.check(policy, "erin"))
    await asyncio.sleep(0)  # both have asked
    gone.cancel()
    assert decided(await staying).remaining == 3  # the cancelled one was counted all the same
    assert gone.cancelled()


async def test_sending_a_batch_raises_nothing_into_the_event_loop(
    redis_client: aioredis.Redis,
) -> None:
    """The batch is sent from a loop callback: a failure there would reach no request."""
    loop = asyncio.get_running_loop()
    errors: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _, context: errors.append(context))
    try:
        limiter = RateLimiter(redis_client, fail_open=False)
        policy = Policy(name="user", limit=5, window_seconds=60)
        assert decided(await limiter.check(policy, "fay")).allowed
        await asyncio.sleep(0)  # the sending task's done callback has run
        assert errors == []
        assert not limiter._sending  # and it forgot the task once sent
    finally:
        loop.set_exception_handler(None)
