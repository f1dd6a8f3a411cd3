"""A bounded mixed load through NGINX, and what it saw: reads, sign-ins, ``/users/me`` and
orders with an Idempotency-Key that are sent again, with the same key, after a 5xx or a lost
connection, until they get an answer that is not one."""

from __future__ import annotations

import itertools
import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import httpx

from shopstack_common.problems import PROBLEM_CONTENT_TYPE, PROBLEM_TYPE_BASE, get_problem_type

CONNECTION_ERROR = 0  # the status recorded when NGINX gave no answer at all
TOKEN_PATH = "/api/v1/auth/token"


@dataclass(frozen=True)
class Answer:
    at: float
    kind: str
    method: str
    path: str
    status: int
    content_type: str
    body: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 400

    def wrong_shape(self) -> str | None:  # noqa: PLR0911 - one reason per way to be wrong
        """Why this error is not one the platform documents, or None."""
        if self.ok:
            return None
        if self.status == CONNECTION_ERROR:
            return "no answer (connection error)"
        if self.status == 500:
            return "500"
        if self.path == TOKEN_PATH and self.status in (400, 401):
            return None  # RFC 6749's own error shape, as OAuth clients expect
        if not self.content_type.startswith(PROBLEM_CONTENT_TYPE):
            return f"{self.status} as {self.content_type or 'no content type'}"
        try:
            problem = httpx.Response(200, content=self.body).json()
        except ValueError:
            return f"{self.status}: a body that is not JSON"
        slug = str(problem.get("type", "")).removeprefix(PROBLEM_TYPE_BASE)
        if get_problem_type(slug) is None:
            return f"{self.status}: unregistered type {problem.get('type')!r}"
        return None


@dataclass
class Customer:
    email: str
    password: str
    token: str = ""


@dataclass
class LoadResult:
    answers: list[Answer] = field(default_factory=list)
    # Idempotency-Key -> the order id its 201 (first or replayed) named.
    orders: dict[str, str] = field(default_factory=dict)
    # Keys still without a final answer when the load stopped (must be none).
    unresolved: list[str] = field(default_factory=list)

    def by_status(self) -> Counter[int]:
        return Counter(answer.status for answer in self.answers)


class MixedLoad:
    """``workers`` threads, each running journeys until ``stop``; an order journey, once
    started, runs until its key has a final answer (or ``give_up_at``)."""

    def __init__(
        self,
        url: str,
        customers: list[Customer],
        products: list[str],
        *,
        workers: int = 4,
        think_seconds: float = 0.02,
    ) -> None:
        self.url = url
        self.customers = customers
        self.products = products
        self.workers = workers
        self.think_seconds = think_seconds
        self.result = LoadResult()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.give_up_at = float("inf")

    def start(self) -> None:
        for number in range(self.workers):
            thread = threading.Thread(target=self._work, args=(number,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, *, resolve_within: float = 60.0) -> LoadResult:
        self.give_up_at = time.monotonic() + resolve_within
        self._stop.set()
        for thread in self._threads:
            thread.join(resolve_within + 30)
        return self.result

    def _send(
        self, client: httpx.Client, kind: str, method: str, path: str, **kw: object
    ) -> Answer:
        try:
            response = client.request(method, path, **kw)  # type: ignore[arg-type]
            answer = Answer(time.monotonic(), kind, method, path, response.status_code,
                            response.headers.get("content-type", ""), response.text)  # fmt: skip
        except httpx.TransportError:
            answer = Answer(time.monotonic(), kind, method, path, CONNECTION_ERROR, "", "")
        with self._lock:
            self.result.answers.append(answer)
        return answer

    def _work(self, number: int) -> None:
        rng = random.Random(number)
        customer = self.customers[number % len(self.customers)]
        journeys = itertools.cycle(["read", "order", "me", "read", "order", "signin", "read"])
        with httpx.Client(base_url=self.url, timeout=30) as client:
            while not self._stop.is_set():
                journey = next(journeys)
                if journey == "signin" or not customer.token:
                    self._sign_in(client, customer)
                elif journey == "read":
                    self._send(
                        client, "read", "GET", f"/api/v1/products/{rng.choice(self.products)}"
                    )
                elif journey == "me":
                    self._send(client, "me", "GET", "/api/v1/users/me", headers=_bearer(customer))
                else:
                    self._order(client, customer, rng.choice(self.products))
                time.sleep(self.think_seconds)

    def _sign_in(self, client: httpx.Client, customer: Customer) -> None:
        form = {"grant_type": "password", "username": customer.email, "password": customer.password}
        answer = self._send(client, "signin", "POST", TOKEN_PATH, data=form)
        if answer.status == 200:
            customer.token = httpx.Response(200, content=answer.body).json()["access_token"]

    def _order(self, client: httpx.Client, customer: Customer, product: str) -> None:
        key = str(uuid.uuid4())
        body = {"items": [{"product_id": product, "quantity": 1}]}
        headers = {**_bearer(customer), "Idempotency-Key": f'"{key}"'}
        while True:
            answer = self._send(
                client, "order", "POST", "/api/v1/orders", json=body, headers=headers
            )
            retry = answer.status >= 500 or answer.status in (CONNECTION_ERROR, 409)
            if not retry:
                if answer.status == 201:
                    order_id = httpx.Response(201, content=answer.body).json()["id"]
                    with self._lock:
                        self.result.orders[key] = order_id
                return
            if time.monotonic() > self.give_up_at:
                with self._lock:
                    self.result.unresolved.append(key)
                return
            time.sleep(0.2)


def _bearer(customer: Customer) -> dict[str, str]:
    return {"Authorization": f"Bearer {customer.token}"}
