"""Settings from the environment, with the names the contracts and the README give."""

import pytest
from pydantic import ValidationError

from shopstack_gateway.config import GatewaySettings


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")


def test_defaults_follow_the_contracts() -> None:
    settings = GatewaySettings()
    assert settings.jwt_issuer == "shopstack"
    assert settings.jwt_audience == "shopstack-api"
    assert settings.jwt_algorithms == {"EdDSA"}
    assert settings.resolved_jwks_url == "http://127.0.0.1:8001/.well-known/jwks.json"
    assert settings.token_endpoint == "/api/v1/auth/token"


def test_contract_variable_names_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_JWT_ISSUER", "issuer-x")
    monkeypatch.setenv("GATEWAY_JWT_AUDIENCE", "audience-y")
    monkeypatch.setenv("GATEWAY_JWKS_URL", "http://keys.internal/jwks.json")
    settings = GatewaySettings()
    assert (settings.jwt_issuer, settings.jwt_audience) == ("issuer-x", "audience-y")
    assert settings.resolved_jwks_url == "http://keys.internal/jwks.json"


def test_jwks_url_follows_the_users_upstream(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_UPSTREAMS__USERS__URL", "http://users:8000/")
    assert GatewaySettings().resolved_jwks_url == "http://users:8000/.well-known/jwks.json"


def test_a_nested_variable_changes_only_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_UPSTREAMS__ORDERS__READ_TIMEOUT_SECONDS", "3")
    monkeypatch.setenv("GATEWAY_UPSTREAMS__ORDERS__BREAKER__OPEN_SECONDS", "2")
    monkeypatch.setenv("GATEWAY_RATE_LIMIT__USER__LIMIT", "5")
    settings = GatewaySettings()
    orders = settings.upstreams["orders"]
    assert orders.url == "http://127.0.0.1:8002"
    assert orders.read_timeout_seconds == 3
    assert orders.breaker.open_seconds == 2
    assert orders.breaker.failure_threshold == 5
    assert settings.upstreams["users"].url == "http://127.0.0.1:8001"
    assert settings.rate_limit.user.limit == 5
    assert settings.rate_limit.user.window_seconds == 60
    assert settings.rate_limit.token.limit == 10


@pytest.mark.parametrize("algorithms", ['["HS256"]', '["none"]', '["EdDSA", "HS512"]', "[]"])
def test_only_asymmetric_algorithms_are_accepted(
    monkeypatch: pytest.MonkeyPatch, algorithms: str
) -> None:
    monkeypatch.setenv("GATEWAY_JWT_ALGORITHMS", algorithms)
    with pytest.raises(ValidationError, match="jwt_algorithms"):
        GatewaySettings()


def test_routes_must_name_configured_upstreams(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_ROUTES", '[{"prefix": "/api/v1/carts", "upstream": "carts"}]')
    with pytest.raises(ValidationError, match="carts"):
        GatewaySettings()
