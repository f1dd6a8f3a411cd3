"""Live order status through NGINX and the gateway to orders (`make up`), with the
`websockets` client: a ticket from the gateway, one's own events and nobody else's, resume
after a dropped connection, an expired or used ticket, and a client that stops reading cut
off with a close code. (orders' bounded queue and its 4001 are checked at orders,
services/orders/tests/events/test_live.py: through NGINX on loopback the socket buffers hold
tens of megabytes, and a client that stops reading fails the heartbeat first.)"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import ClientConnection, connect
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.frames import Close, Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

from tests.e2e.conftest import LocalPlatform, _platform
from tests.e2e.shopping import bearer, register, sign_in

pytestmark = pytest.mark.e2e

ADMIN = ("admin@shopstack.local", "shopstack-dev-admin")
EVENTS = "/api/v1/orders/events"
TICKET_TTL_SECONDS = 3
PING_SECONDS = 2


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPlatform]:
    """One platform for the module, with short tickets so that expiry shows quickly, and a
    short heartbeat so that a client that stops reading is found out in seconds, not 40."""
    extra = {
        "GATEWAY_WEBSOCKET_TICKET_TTL_SECONDS": str(TICKET_TTL_SECONDS),
        "GATEWAY_WEBSOCKET_PING_INTERVAL_SECONDS": str(PING_SECONDS),
        "GATEWAY_WEBSOCKET_PING_TIMEOUT_SECONDS": str(PING_SECONDS),
    }
    for stack in _platform(Path(tmp_path_factory.mktemp("events")), extra):
        stack.start()
        yield stack
        assert stack.stop() == 0, stack.log()[-4000:]


class Shop:
    def __init__(self, platform: LocalPlatform) -> None:
        self.platform = platform
        self.http = httpx.Client(base_url=platform.url, timeout=15)
        self.admin = bearer(sign_in(self.http, *ADMIN))

    def customer(self, name: str) -> dict[str, str]:
        _, tokens = register(self.http, name)
        return bearer(tokens)

    def product(self) -> dict[str, Any]:
        body = {"sku": f"TEA-{uuid.uuid4().hex[:8]}", "name": "Tea", "price": 450,
                "currency": "EUR", "stock": 100}  # fmt: skip
        created = self.http.post("/api/v1/products", json=body, headers=self.admin)
        assert created.status_code == 201, created.text
        product: dict[str, Any] = created.json()
        return product

    def order(self, auth: dict[str, str], product: dict[str, Any]) -> dict[str, Any]:
        body = {"items": [{"product_id": product["id"], "quantity": 1}]}
        placed = self.http.post("/api/v1/orders", json=body, headers=auth)
        assert placed.status_code == 201, placed.text
        order: dict[str, Any] = placed.json()
        return order

    def move(self, order: dict[str, Any], target: str) -> None:
        moved = self.http.post(
            f"/api/v1/orders/{order['id']}/transitions", json={"to": target}, headers=self.admin
        )
        assert moved.status_code == 200, moved.text

    def ticket(self, auth: dict[str, str]) -> str:
        issued = self.http.post(f"{EVENTS}/ticket", headers=auth)
        assert issued.status_code == 201, issued.text
        ticket: str = issued.json()["ticket"]
        return ticket

    def url(self, ticket: str, **query: str) -> str:
        params = "&".join(f"{k}={v}" for k, v in {"ticket": ticket, **query}.items())
        return f"ws://127.0.0.1:{self.platform.ports['nginx']}{EVENTS}?{params}"

    def orders_metric(self, name: str, **labels: str) -> float:
        port = self.platform.ports["orders"]
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(
                    sample.labels.get(k) == v for k, v in labels.items()
                ):
                    return float(sample.value)
        return 0.0


@pytest.fixture(scope="module")
def shop(live: LocalPlatform) -> Iterator[Shop]:
    shop = Shop(live)
    yield shop
    shop.http.close()


async def receive(socket_: ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(socket_.recv(), 30))
    return message


async def receive_type(socket_: ClientConnection, kind: str, subject: str) -> dict[str, Any]:
    """The next message of ``kind`` about ``subject``. Earlier ones are skipped: a connection
    starts at the stream's end, and an event committed just before it opened may be published
    just after."""
    while True:
        message = await receive(socket_)
        if (message["type"], message["subject_id"]) == (kind, subject):
            return message


async def opened(shop: Shop, auth: dict[str, str], **query: str) -> ClientConnection:
    """A connection that is reading the stream: the placed order events after this moment
    reach it (orders starts a connection at the stream's end once it accepted it)."""
    return await connect(shop.url(shop.ticket(auth), **query), open_timeout=15)


async def test_a_customer_sees_her_own_order_live(shop: Shop) -> None:
    ada = shop.customer("Ada")
    tea = shop.product()
    order = shop.order(ada, tea)
    async with await opened(shop, ada, order_id=order["id"]) as socket_:
        await asyncio.sleep(0.5)  # the connection's first XREAD is under way
        shop.move(order, "paid")
        paid = await receive_type(socket_, "order.paid", order["id"])
        shop.move(order, "shipped")
        shipped = await receive(socket_)
    assert (paid["type"], paid["version"], paid["payload"]["status"]) == ("order.paid", 2, "paid")
    assert paid["subject_id"] == order["id"]
    assert (shipped["type"], shipped["version"]) == ("order.shipped", 3)
    assert paid["stream_id"] < shipped["stream_id"] or len(paid["stream_id"]) < len(
        shipped["stream_id"]
    )


async def test_another_users_order_is_refused_and_their_events_never_shown(shop: Shop) -> None:
    ada, bob = shop.customer("Ada"), shop.customer("Bob")
    tea = shop.product()
    adas = shop.order(ada, tea)
    with pytest.raises(InvalidStatus) as refused:
        await connect(shop.url(shop.ticket(bob), order_id=adas["id"]), open_timeout=15)
    assert refused.value.response.status_code == 404
    assert json.loads(refused.value.response.body or b"")["type"] == "/problems/not-found"

    async with await opened(shop, bob) as socket_:
        await asyncio.sleep(0.5)
        shop.move(adas, "paid")  # Ada's: not for Bob
        bobs = shop.order(bob, tea)
        first = await receive(socket_)
    # Bob placed no order before connecting: his first event is this one, Ada's never came.
    assert (first["type"], first["subject_id"]) == ("order.placed", bobs["id"])


async def test_a_client_that_reconnects_with_its_last_id_misses_nothing(shop: Shop) -> None:
    ada = shop.customer("Ada")
    tea = shop.product()
    order = shop.order(ada, tea)
    async with await opened(shop, ada) as socket_:
        await asyncio.sleep(0.5)
        shop.move(order, "paid")
        last = await receive_type(socket_, "order.paid", order["id"])
    # Dropped; meanwhile the order moves on and more orders are placed.
    shop.move(order, "shipped")
    shop.move(order, "delivered")
    later = [shop.order(ada, tea) for _ in range(3)]
    # Delivery is at least once: the client drops what it has seen by event id.
    seen = {last["id"]}
    missed: list[dict[str, Any]] = []
    async with await opened(shop, ada, last_event_id=last["stream_id"]) as socket_:
        while len(missed) < 5:
            message = await receive(socket_)
            if message["id"] not in seen:
                seen.add(message["id"])
                missed.append(message)
    assert [(m["type"], m["subject_id"]) for m in missed] == [
        ("order.shipped", order["id"]),
        ("order.delivered", order["id"]),
        *(("order.placed", placed["id"]) for placed in later),
    ]


async def test_an_expired_or_used_ticket_is_refused(shop: Shop) -> None:
    ada = shop.customer("Ada")
    issued = shop.http.post(f"{EVENTS}/ticket", headers=ada)
    assert issued.json()["expires_in"] == TICKET_TTL_SECONDS
    ticket = shop.ticket(ada)
    async with connect(shop.url(ticket), open_timeout=15):
        pass
    for stale in (ticket, expired := shop.ticket(ada)):
        if stale is expired:
            await asyncio.sleep(TICKET_TTL_SECONDS + 1)
        with pytest.raises(InvalidStatus) as refused:
            await connect(shop.url(stale), open_timeout=15)
        assert refused.value.response.status_code == 401
        body = json.loads(refused.value.response.body or b"")
        assert body["type"] == "/problems/invalid-ticket"
    with pytest.raises(InvalidStatus) as without:
        await connect(shop.url("not-a-ticket"), open_timeout=15)
    assert without.value.response.status_code == 401


def _pid(platform: LocalPlatform, service: str) -> int:
    record = json.loads((platform.data_dir / "run" / f"{service}.pid").read_text())
    return int(record["pgid"])


async def read_until_closed(connection: ClientConnection) -> None:
    with contextlib.suppress(ConnectionClosed):
        while True:
            await asyncio.wait_for(connection.recv(), 30)


async def test_a_client_that_stops_reading_is_disconnected_with_a_close_code(shop: Shop) -> None:
    """A client that reads nothing (so answers no ping either) while events are produced is
    cut off by the platform, and what it was sent ends with a close frame: it is not kept and
    buffered for without bound. The socket's receive buffer is small so that little is held
    on its side."""
    before = shop.orders_metric("shopstack_orders_event_connections")
    protocol = ClientProtocol(parse_uri(shop.url(shop.ticket(shop.admin))))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", shop.platform.ports["nginx"]))
    with sock:
        protocol.send_request(protocol.connect())
        sock.sendall(b"".join(protocol.data_to_send()))
        sock.settimeout(15)
        received: list[object] = []
        while not any(isinstance(event, Response) for event in received):
            protocol.receive_data(sock.recv(4096))
            received += protocol.events_received()
        assert protocol.state is State.OPEN, protocol.handshake_exc
        await wait_for_metric(shop, "shopstack_orders_event_connections", before + 1)

        product = shop.product()
        customer = shop.customer("silent")
        for _ in range(20):
            shop.order(customer, product)

        # The client still reads nothing: the platform must end the connection by itself.
        await wait_for_metric(shop, "shopstack_orders_event_connections", before)
        sock.settimeout(30)
        while chunk := sock.recv(65536):
            protocol.receive_data(chunk)
    received += protocol.events_received()
    frames = [event for event in received if isinstance(event, Frame)]
    closes = [frame for frame in frames if frame.opcode is Opcode.CLOSE]
    assert closes, f"no close frame among {len(frames)} frames"
    assert Close.parse(closes[-1].data).code in {1011, 4001}


async def wait_for_metric(shop: Shop, name: str, value: float) -> None:
    for _ in range(1200):
        if shop.orders_metric(name) == value:
            return
        await asyncio.sleep(0.1)
    pytest.fail(f"{name} never became {value} (it is {shop.orders_metric(name)})")


# Last in the module: each stops a service of the module's platform, which `make up` starts
# again; the test waits for that, so the platform is whole for whatever runs after it.
@pytest.mark.parametrize("service", ["orders", "gateway"])
async def test_sigterm_closes_websockets_with_1001(shop: Shop, service: str) -> None:
    """A service told to stop closes its connections with 1001 (not uvicorn's 1012): orders'
    code is passed on by the gateway, and the gateway's own reaches the client. Straight to
    the (first) gateway: the supervisor stops NGINX first, whose graceful stop waits for
    upgraded connections."""
    platform = shop.platform
    restarts = platform.log().count(f"restarted {service} ")
    gateway = f"ws://127.0.0.1:{platform.ports['gateway']}{EVENTS}"
    first = await connect(f"{gateway}?ticket={shop.ticket(shop.admin)}", open_timeout=15)
    os.kill(_pid(platform, service), signal.SIGTERM)
    await read_until_closed(first)
    assert first.close_code == 1001
    for _ in range(600):
        if platform.log().count(f"restarted {service} ") > restarts and _ready(platform, service):
            return
        await asyncio.sleep(0.1)
    pytest.fail(f"{service} was not started again\n{platform.log()[-3000:]}")


def _ready(platform: LocalPlatform, service: str) -> bool:
    """The restarted service says it is ready."""
    try:
        answer = httpx.get(f"http://127.0.0.1:{platform.ports[service]}/readyz", timeout=2)
    except httpx.TransportError:
        return False
    return answer.status_code == 200
