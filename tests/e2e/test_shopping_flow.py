"""The whole platform as a client sees it: tokens from users, checked by the gateway, orders
placed and cancelled through NGINX, the overview assembled from both services."""

import httpx
import pytest

from tests.e2e.shopping import shop

pytestmark = pytest.mark.e2e

ADMIN = ("admin@shopstack.local", "shopstack-dev-admin")


def test_shopping_through_nginx(platform) -> None:  # type: ignore[no-untyped-def]
    platform.start()
    with httpx.Client(base_url=platform.url, timeout=15) as client:
        shop(client, ADMIN)
    assert platform.stop() == 0
    # Every hop spoke clean HTTP: NGINX logs a warning for any header it had to repair.
    assert "upstream sent" not in platform.log()
