"""`make up` starts each part once what it needs is up, in either start order, and says
when each part started and was ready. The order of those events is checked, never how long
they took."""

import json
import re

import pytest

pytestmark = pytest.mark.e2e

PHASE = re.compile(r"^start-up phase (\S+): ([\d.]+)s to ([\d.]+)s$")
# Each part and what must be up (or, for a migration, finished) before it starts.
NEEDS = {
    "migrate-users": ("postgres", "redis"),
    "migrate-orders": ("postgres", "redis"),
    "users": ("migrate-users",),
    "orders": ("migrate-orders",),
    "orders-relay": ("migrate-orders",),
    "gateway": ("users",),
    "nginx": ("gateway", "users", "orders", "orders-relay"),
}


def phases(log: str) -> dict[str, tuple[float, float]]:
    found = {}
    for line in log.splitlines():
        record = json.loads(line)
        if record["service"] == "devstack" and (match := PHASE.match(record["message"])):
            found[match.group(1)] = (float(match.group(2)), float(match.group(3)))
    return found


@pytest.mark.parametrize("order", ["parallel", "sequential"])
def test_every_part_starts_after_what_it_needs(platform, order: str) -> None:  # type: ignore[no-untyped-def]
    platform.extra_env["SHOPSTACK_START_ORDER"] = order
    platform.start()
    assert platform.stop() == 0
    found = phases(platform.log())
    assert set(found) == {"postgres", "redis", "bytecode", *NEEDS}, platform.log()[-3000:]
    for part, needs in NEEDS.items():
        for need in needs:
            assert found[part][0] >= found[need][1], f"{part} started before {need} was up"
    users_migrated = found["migrate-users"][1]
    if order == "parallel":
        # Both migrations run at once: orders' starts before users' has finished.
        assert found["migrate-orders"][0] < users_migrated
    else:
        # One after another, as before: orders (and its relay) only once users is up.
        assert found["migrate-orders"][0] >= users_migrated
        assert found["orders"][0] >= found["users"][1]
        assert found["orders-relay"][0] >= found["users"][1]
