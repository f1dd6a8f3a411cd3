import pytest

from shopstack_gateway.config import DEFAULT_ROUTES, RouteRule
from shopstack_gateway.routing import RouteTable

table = RouteTable(DEFAULT_ROUTES)


@pytest.mark.parametrize(
    ("path", "upstream"),
    [
        ("/api/v1/auth/token", "users"),
        ("/api/v1/users", "users"),
        ("/api/v1/users/42", "users"),
        ("/.well-known/jwks.json", "users"),
        ("/api/v1/products", "orders"),
        ("/api/v1/products/1/restock", "orders"),
        ("/api/v1/orders/9/cancel", "orders"),
        ("/admin", "users"),
        ("/admin/users/42", "users"),
    ],
)
def test_known_prefixes_route_to_their_upstream(path: str, upstream: str) -> None:
    match = table.match(path)
    assert match is not None
    assert match.upstream == upstream


@pytest.mark.parametrize(
    "path", ["/", "/api", "/api/v1/usersettings", "/api/v2/users", "/administrator"]
)
def test_other_paths_match_nothing(path: str) -> None:
    assert table.match(path) is None


def test_longest_prefix_wins() -> None:
    rules = [RouteRule(prefix="/api", upstream="a"), RouteRule(prefix="/api/special", upstream="b")]
    special = RouteTable(rules).match("/api/special/x")
    assert special is not None
    assert special.upstream == "b"
