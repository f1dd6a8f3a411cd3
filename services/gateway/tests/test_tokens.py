"""Token verification on its own: every refusal names its reason (a metric label) and says why
(the client's description), the identity claims are checked one by one, and the cache of
verified tokens still honours time and key checks."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shopstack_devstack.tokens import AUDIENCE, ISSUER, TokenIssuer
from shopstack_gateway.keys import JwksDocument, KeySet
from shopstack_gateway.tokens import InvalidTokenError, TokenVerifier, identity_from_claims

EDDSA = frozenset({"EdDSA"})


class Keys:
    """The JWKS of one issuer, as users serves it."""

    def __init__(self, issuer: TokenIssuer) -> None:
        self.body: dict[str, Any] = issuer.jwks

    async def __call__(self) -> JwksDocument:
        return JwksDocument(body=self.body, max_age=None)


def verifier(issuer: TokenIssuer, *, cache_size: int = 0, leeway: float = 30) -> TokenVerifier:
    keys = KeySet(
        Keys(issuer), algorithms=EDDSA, default_ttl=300, min_ttl=30, max_ttl=3600,
        min_refresh_seconds=0,
    )  # fmt: skip
    # No cache is the default: only a size given turns it on.
    sized = {"cache_size": cache_size} if cache_size else {}
    return TokenVerifier(
        keys, issuer=ISSUER, audience=AUDIENCE, algorithms=EDDSA, leeway_seconds=leeway, **sized
    )


class CountingDecode:
    """Counts the full verifications (the signature check) a verifier does."""

    def __init__(self, verifying: TokenVerifier) -> None:
        self.calls = 0
        self._decode = verifying._jwt.decode
        verifying._jwt.decode = self  # type: ignore[method-assign]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self._decode(*args, **kwargs)


ISSUER_FOR_CASES = TokenIssuer()
OTHER_KEY = Ed25519PrivateKey.generate()


def _now() -> int:
    # Read when a test runs, not when the module is imported: a run may import it long before.
    return int(time.time())


def _mint(headers: dict[str, Any] | None = None, **claims: Any) -> str:
    return ISSUER_FOR_CASES.mint(headers, **claims)


def _signed_by_another_key() -> str:
    return jwt.encode(
        ISSUER_FOR_CASES.claims(), OTHER_KEY, algorithm="EdDSA",
        headers={"kid": ISSUER_FOR_CASES.kid, "typ": "at+jwt"},
    )  # fmt: skip


def _hs256() -> str:
    return jwt.encode(
        ISSUER_FOR_CASES.claims(), "a-shared-secret-of-32-bytes-long!", algorithm="HS256",
        headers={"kid": ISSUER_FOR_CASES.kid, "typ": "at+jwt"},
    )  # fmt: skip


EXPIRED = "The access token has expired."
ELSEWHERE = "The token was issued by someone else."
REFUSALS = [
    (lambda: "not-a-jwt", "malformed", "The access token is malformed."),
    (_hs256, "algorithm", "The token's signing algorithm is not accepted."),
    (lambda: _mint({"typ": "JWT"}), "type", "The token is not an access token (typ at+jwt)."),
    (lambda: _mint({"kid": ""}), "kid", "The token names no signing key (kid)."),
    (lambda: _mint({"kid": "nobody-knows"}), "kid", "The token's signing key is not known."),
    (lambda: _mint(iat=_now() - 99, nbf=_now() - 99, exp=_now() - 60), "expired", EXPIRED),
    (lambda: _mint(nbf=_now() + 600), "not_yet_valid", "The access token is not valid yet."),
    (
        lambda: _mint(iss="https://elsewhere.example"),
        "issuer",
        "The token was issued by someone else.",
    ),
    (lambda: _mint(aud="another-api"), "audience", "The token is meant for another audience."),
    (_signed_by_another_key, "signature", "The token's signature is not valid."),
    (lambda: _mint(jti=None), "claims", "The token lacks the 'jti' claim."),
    (lambda: _mint(iat="yesterday"), "malformed", "The access token is malformed."),
    (lambda: _mint(client_id="has space"), "claims", "The token's 'client_id' claim is not valid."),
]


@pytest.mark.parametrize(
    ("token", "reason", "description"),
    REFUSALS,
    ids=[
        "not-a-jwt", "hs256", "typ", "no-kid", "unknown-kid", "expired", "not-yet-valid",
        "issuer", "audience", "signature", "missing-claim", "bad-iat", "bad-identity-claim",
    ],
)  # fmt: skip
async def test_each_refusal_names_its_reason_and_says_why(
    token: Callable[[], str], reason: str, description: str
) -> None:
    with pytest.raises(InvalidTokenError) as refused:
        await verifier(ISSUER_FOR_CASES).verify(token())
    assert (refused.value.reason, refused.value.description) == (reason, description)
    assert str(refused.value) == description


def _claims(**overrides: Any) -> dict[str, Any]:
    return ISSUER_FOR_CASES.claims(**overrides)


@pytest.mark.parametrize(
    ("claim", "value"),
    [
        ("client_id", ""),
        ("client_id", "has space"),
        ("jti", "has space"),
        ("jti", 7),
        ("roles", "customer"),
        ("roles", ["no spaces allowed"]),
        ("scope", 5),
        ("scope", 'orders:read bad"quote'),
        ("sub", 5),
        ("sub", "not-a-uuid"),
    ],
)
def test_each_identity_claim_is_checked(claim: str, value: Any) -> None:
    with pytest.raises(InvalidTokenError) as refused:
        identity_from_claims(_claims(**{claim: value}))
    assert refused.value.reason == "claims"
    assert refused.value.description == f"The token's {claim!r} claim is not valid."


def test_roles_and_scope_may_be_left_out() -> None:
    claims = _claims()
    del claims["roles"], claims["scope"]
    identity = identity_from_claims(claims)
    assert identity.roles == frozenset()
    assert identity.scopes == frozenset()


def test_a_user_token_carries_the_user_and_a_client_token_none() -> None:
    user = uuid.uuid4()
    identity = identity_from_claims(_claims(sub=str(user), roles=["admin"], scope="a b"))
    assert identity.user_id == user
    assert identity.roles == frozenset({"admin"})
    assert identity.scopes == frozenset({"a", "b"})
    assert identity.client_id == "web"
    client = identity_from_claims(_claims(sub="billing", client_id="billing"))
    assert client.user_id is None
    assert client.client_id == "billing"


async def test_without_a_cache_every_request_is_verified_in_full() -> None:
    verifying = verifier(ISSUER_FOR_CASES)
    decode = CountingDecode(verifying)
    token = _mint()
    await verifying.verify(token)
    await verifying.verify(token)
    assert decode.calls == 2


async def test_a_cached_token_skips_the_signature_check_and_keeps_its_identity() -> None:
    verifying = verifier(ISSUER_FOR_CASES, cache_size=4)
    decode = CountingDecode(verifying)
    token = _mint()
    first = await verifying.verify(token)
    assert await verifying.verify(token) == first
    assert decode.calls == 1


@pytest.mark.parametrize(
    "times",
    [
        {"nbf": 10},  # early, within the leeway
        {"iat": -900, "nbf": -900, "exp": -10},  # late, within the leeway
    ],
    ids=["not-before-within-leeway", "expiry-within-leeway"],
)
async def test_the_cache_honours_the_same_leeway_as_the_check(times: dict[str, int]) -> None:
    verifying = verifier(ISSUER_FOR_CASES, cache_size=4, leeway=30)
    decode = CountingDecode(verifying)
    token = _mint(**{claim: _now() + offset for claim, offset in times.items()})
    await verifying.verify(token)
    await verifying.verify(token)
    assert decode.calls == 1


async def test_a_cached_token_whose_key_is_gone_is_verified_again() -> None:
    issuer = TokenIssuer()
    verifying = verifier(issuer, cache_size=4)
    token = issuer.mint()
    await verifying.verify(token)
    verifying.keys._keys.clear()  # the key was rotated away
    decode = CountingDecode(verifying)
    await verifying.verify(token)
    assert decode.calls == 1


async def test_the_cache_keeps_at_most_its_size_dropping_the_oldest() -> None:
    verifying = verifier(ISSUER_FOR_CASES, cache_size=1)
    first, second = _mint(), _mint()
    await verifying.verify(first)
    await verifying.verify(second)
    assert list(verifying._verified) == [second]


async def test_an_audience_list_that_holds_the_gateways_is_accepted() -> None:
    # RFC 7519 §4.1.3: aud may be an array; the gateway only needs to be in it.
    token = _mint(aud=[AUDIENCE, "reports"])
    identity = await verifier(ISSUER_FOR_CASES).verify(token)
    assert identity.client_id == "web"
