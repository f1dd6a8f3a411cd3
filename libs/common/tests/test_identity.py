import uuid

from shopstack_common.identity import Identity, is_identity_header


def test_identity_round_trips_through_headers() -> None:
    identity = Identity(
        user_id=uuid.uuid4(),
        roles=frozenset({"admin", "customer"}),
        scopes=frozenset({"orders:read", "orders:write"}),
        token_id="jti-1",
    )
    assert Identity.from_headers(identity.to_headers()) == identity
    assert identity.is_admin


def test_client_identity_has_no_user() -> None:
    identity = Identity(client_id="reports", scopes=frozenset({"orders:read"}))
    parsed = Identity.from_headers(identity.to_headers())
    assert parsed is not None
    assert parsed.user_id is None
    assert parsed.client_id == "reports"
    assert parsed.subject == "client:reports"


def test_missing_or_malformed_identity_is_none() -> None:
    assert Identity.from_headers({}) is None
    assert Identity.from_headers({"X-Shopstack-User-Id": "not-a-uuid"}) is None


def test_identity_headers_are_recognised_case_insensitively() -> None:
    assert is_identity_header("X-Shopstack-User-Id")
    assert is_identity_header("x-shopstack-anything")
    assert not is_identity_header("X-Request-ID")
