"""The JWKS cache on its own: a fake fetch and a fake clock."""

import asyncio
import base64
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from prometheus_client import REGISTRY

from shopstack_gateway.keys import (
    JwksDocument,
    KeySet,
    KeysUnavailableError,
    http_fetcher,
    max_age,
    parse_jwks,
)

EDDSA = frozenset({"EdDSA"})


def jwk(kid: str, **extra: Any) -> dict[str, Any]:
    raw = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    return {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, **extra}


class Source:
    """A JWKS endpoint: counts fetches, can fail, can be slow."""

    def __init__(self, *kids: str, max_age: float | None = 300) -> None:
        self.keys = [jwk(kid) for kid in kids]
        self.max_age = max_age
        self.fetches = 0
        self.failing = False
        self.gate: asyncio.Event | None = None

    async def __call__(self) -> JwksDocument:
        self.fetches += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.failing:
            raise ConnectionError("users is down")
        return JwksDocument(body={"keys": list(self.keys)}, max_age=self.max_age)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def refreshes(trigger: str) -> float:
    return (
        REGISTRY.get_sample_value("shopstack_gateway_jwks_refreshes_total", {"trigger": trigger})
        or 0.0
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def key_set(source: Source, clock: FakeClock, **overrides: float) -> KeySet:
    options: dict[str, float] = {
        "default_ttl": 300,
        "min_ttl": 30,
        "max_ttl": 3600,
        "min_refresh_seconds": 5,
    }
    options.update(overrides)
    return KeySet(source, algorithms=EDDSA, clock=clock, **options)


async def test_keys_are_fetched_once_and_cached(clock: FakeClock) -> None:
    source = Source("a")
    keys = key_set(source, clock)
    assert await keys.get("a") is not None
    clock.now += 100
    assert await keys.get("a") is not None
    assert source.fetches == 1


async def test_an_unknown_kid_refetches_at_most_once_per_interval(clock: FakeClock) -> None:
    source = Source("a")
    keys = key_set(source, clock)
    startup = refreshes("startup")
    await keys.refresh()
    assert refreshes("startup") == startup + 1
    unknown = refreshes("unknown_kid")
    clock.now += 10
    for _ in range(50):
        assert await keys.get("made-up") is None
    assert source.fetches == 2
    assert refreshes("unknown_kid") == unknown + 1
    source.keys.append(jwk("b"))
    assert await keys.get("b") is None  # still inside the interval: not fetched
    clock.now += 5
    assert await keys.get("b") is not None
    assert source.fetches == 3


async def test_concurrent_misses_share_one_fetch(clock: FakeClock) -> None:
    source = Source("a")
    source.gate = asyncio.Event()
    keys = key_set(source, clock)
    waiting = [asyncio.create_task(keys.get("a")) for _ in range(20)]
    await asyncio.sleep(0)
    source.gate.set()
    assert all(key is not None for key in await asyncio.gather(*waiting))
    assert source.fetches == 1


async def test_stale_keys_stay_in_use_while_they_are_refetched(clock: FakeClock) -> None:
    source = Source("a", max_age=60)
    keys = key_set(source, clock)
    await keys.get("a")
    expired = refreshes("expired")
    clock.now += 61
    assert await keys.get("a") is not None  # answered from the stale set at once ...
    await asyncio.sleep(0.01)
    assert source.fetches == 2  # ... while the new set came in the background
    assert refreshes("expired") == expired + 1


async def test_known_keys_survive_a_failed_fetch(clock: FakeClock) -> None:
    source = Source("a", max_age=60)
    keys = key_set(source, clock)
    await keys.get("a")
    source.failing = True
    clock.now += 61
    await keys.refresh()
    assert await keys.get("a") is not None


async def test_no_keys_at_all_is_unavailable_not_unknown(clock: FakeClock) -> None:
    source = Source("a")
    source.failing = True
    keys = key_set(source, clock)
    with pytest.raises(KeysUnavailableError) as unavailable:
        await keys.get("a")
    assert unavailable.value.retry_after == pytest.approx(5)
    source.failing = False
    clock.now += 5
    assert await keys.get("a") is not None


@pytest.mark.parametrize(("sent", "kept"), [(None, 300), (5, 30), (600, 600), (10**6, 3600)])
async def test_max_age_is_honoured_within_bounds(
    clock: FakeClock, sent: float | None, kept: float
) -> None:
    source = Source("a", max_age=sent)
    keys = key_set(source, clock)
    await keys.get("a")
    clock.now += kept - 0.1
    await keys.get("a")
    assert source.fetches == 1
    clock.now += 0.2
    await keys.get("a")
    await asyncio.sleep(0.01)
    assert source.fetches == 2


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("public, max-age=300", 300),
        ("max-age=60, must-revalidate", 60),
        ('max-age="42"', 42),
        ("no-cache", None),
        (None, None),
        ("s-maxage=10", None),
    ],
)
def test_max_age_parsing(header: str | None, seconds: float | None) -> None:
    assert max_age(header) == seconds


def test_only_public_signing_keys_of_allowed_algorithms_are_kept() -> None:
    body = {
        "keys": [
            jwk("good", alg="EdDSA", use="sig"),
            jwk("no-alg-is-inferred"),
            jwk("encryption", use="enc"),
            jwk("private", d="c2VjcmV0"),
            {"kty": "oct", "k": "c2VjcmV0", "kid": "symmetric"},
            {"kty": "EC", "crv": "P-256", "kid": "es256-not-allowed", "x": "AA", "y": "AA"},
            {"kty": "OKP", "crv": "Ed25519", "x": "AAAA"},  # no kid
            {"kty": "nope", "kid": "broken"},
            "not even an object",
        ]
    }
    assert sorted(parse_jwks(body, EDDSA)) == ["good", "no-alg-is-inferred"]


@pytest.mark.parametrize("body", [[], {}, {"keys": "x"}, "text", None])
def test_a_document_that_is_not_a_jwks_is_an_error(body: Any) -> None:
    with pytest.raises(ValueError, match="JWKS"):
        parse_jwks(body, EDDSA)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _private_jwk(kid: str) -> dict[str, Any]:
    """A whole Ed25519 key pair as a JWK: one PyJWK would load as a usable key."""
    private = Ed25519PrivateKey.generate()
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": _b64(public),
            "d": _b64(private.private_bytes_raw())}  # fmt: skip


@pytest.mark.parametrize(
    "skipped",
    [
        {**jwk("ignored"), "kid": 5},
        {"kty": "OKP", "crv": "Ed25519", "x": "AAAA", "kid": ""},
        {"kty": "oct", "k": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0", "kid": "symmetric"},
        {"kty": "nope", "kid": "broken"},
        "not even an object",
    ],
    ids=["kid-not-text", "kid-empty", "symmetric", "broken", "not-an-object"],
)
def test_a_skipped_key_leaves_the_keys_after_it(skipped: Any) -> None:
    # HS256 allowed on purpose: a symmetric key is refused for what it is, not its algorithm.
    body = {"keys": [skipped, jwk("after")]}
    assert sorted(parse_jwks(body, frozenset({"EdDSA", "HS256"}))) == ["after"]


def test_a_private_key_in_the_set_is_never_used() -> None:
    assert parse_jwks({"keys": [_private_jwk("private")]}, EDDSA) == {}


def test_a_document_without_keys_says_so() -> None:
    with pytest.raises(ValueError, match=r"^not a JWKS document \(no keys list\)$"):
        parse_jwks({}, EDDSA)


async def test_no_keys_says_the_signing_keys_are_unavailable(clock: FakeClock) -> None:
    source = Source("a")
    source.failing = True
    with pytest.raises(KeysUnavailableError, match=r"^token signing keys are unavailable$"):
        await key_set(source, clock).get("a")


async def test_a_fresh_key_is_not_refetched_once_the_interval_has_passed(clock: FakeClock) -> None:
    source = Source("a", max_age=300)
    keys = key_set(source, clock, min_refresh_seconds=5)
    await keys.get("a")
    clock.now += 10  # past the refetch interval, well within the keys' lifetime
    await keys.get("a")
    await asyncio.sleep(0)  # a refetch would run in the background
    assert source.fetches == 1
    assert "a" in keys
    assert "b" not in keys


async def test_keys_are_refetched_at_the_moment_they_expire(clock: FakeClock) -> None:
    source = Source("a", max_age=300)
    keys = key_set(source, clock)
    await keys.get("a")
    clock.now = 300.0
    await keys.get("a")
    await asyncio.sleep(0)
    assert source.fetches == 2


async def test_an_unknown_kid_waits_the_whole_interval(clock: FakeClock) -> None:
    source = Source("a")
    keys = key_set(source, clock, min_refresh_seconds=5)
    await keys.get("a")
    clock.now += 4.5
    assert await keys.get("b") is None
    assert source.fetches == 1


def _fetches(outcome: str) -> float:
    return (
        REGISTRY.get_sample_value("shopstack_gateway_jwks_fetches_total", {"outcome": outcome})
        or 0.0
    )


async def test_fetches_are_counted_by_outcome(clock: FakeClock) -> None:
    source = Source("a")
    ok, error = _fetches("ok"), _fetches("error")
    keys = key_set(source, clock)
    await keys.refresh()
    source.failing = True
    clock.now += 10
    await keys.refresh()
    assert (_fetches("ok") - ok, _fetches("error") - error) == (1, 1)


async def test_the_http_fetch_asks_for_json_and_reads_max_age(serve_upstream: Any) -> None:
    seen: dict[str, str] = {}

    async def jwks(request: web.Request) -> web.Response:
        seen["accept"] = request.headers.get("Accept", "")
        return web.json_response({"keys": []}, headers={"Cache-Control": "max-age=42"})

    app = web.Application()
    app.router.add_get("/jwks", jwks)
    async with serve_upstream(app) as url, aiohttp.ClientSession() as session:
        document = await http_fetcher(session, f"{url}/jwks", 5)()
    assert seen["accept"] == "application/json"
    assert document.max_age == 42


async def test_an_http_fetch_that_is_not_200_names_the_status(serve_upstream: Any) -> None:
    async def broken(request: web.Request) -> web.Response:
        return web.Response(status=503)

    app = web.Application()
    app.router.add_get("/jwks", broken)
    async with serve_upstream(app) as url, aiohttp.ClientSession() as session:
        with pytest.raises(RuntimeError, match=r"^JWKS at .*/jwks answered 503$"):
            await http_fetcher(session, f"{url}/jwks", 5)()


async def test_a_hung_jwks_fetch_times_out(serve_upstream: Any) -> None:
    release = asyncio.Event()

    async def hung(request: web.Request) -> web.Response:
        await release.wait()
        return web.json_response({"keys": []})

    app = web.Application()
    app.router.add_get("/jwks", hung)
    async with serve_upstream(app) as url, aiohttp.ClientSession() as session:
        fetch = http_fetcher(session, f"{url}/jwks", 0.2)
        task = asyncio.create_task(fetch())
        # 5 s bounds the test; the fetch must have given up long before on its own timeout.
        done, _ = await asyncio.wait({task}, timeout=5)
        release.set()
        assert task in done, "the fetch had no timeout of its own"
        with pytest.raises(TimeoutError):
            task.result()
