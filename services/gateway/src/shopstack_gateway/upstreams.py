"""An upstream: its pooled HTTP client, circuit breaker and retry budget, and the one way to
send it a request (``Upstream.open``) that applies them.

The client is aiohttp, chosen by measurement (see the README's benchmark): one
``ClientSession`` per upstream, created in the lifespan, with keep-alive and explicit limits.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiohttp
from multidict import CIMultiDict
from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from shopstack_common.metrics import trace_exemplar
from shopstack_gateway import metrics
from shopstack_gateway.config import UpstreamSettings
from shopstack_gateway.resilience import CircuitBreaker, RetryBudget, backoff_seconds

logger = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

# An upstream that answers these is not able to serve right now: an idempotent request may be
# retried. They count against its breaker unless the service said so itself (``answered_itself``).
UNAVAILABLE_STATUSES = frozenset({502, 503, 504})
PROBLEM_CONTENT_TYPE = "application/problem+json"
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_DEFAULT_PORTS = {"http": 80, "https": 443}

# Scheme, host and port.
Origin = tuple[str, str, int]


def origin_of(url: str) -> Origin | None:
    """The origin of an absolute http(s) URL; None for anything else (a path, another scheme)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[scheme]


def answered_itself(status: int, content_type: str | None) -> bool:
    """Whether an unavailable status is the service's own, well-formed answer: a 503
    problem+json (a database it cannot reach, say). The service is up and answering, so it
    is not a failure of the upstream for its breaker; refusing every route of it would only
    refuse what it can still serve (see the README's "Circuit breaker"). A 502 or 504, or a
    503 in any other shape, comes from something in front of it or a server that is not
    the service: the upstream is not reachable."""
    media_type = (content_type or "").partition(";")[0].strip().lower()
    return status == 503 and media_type == PROBLEM_CONTENT_TYPE


class UpstreamTimeoutError(Exception):
    pass


class UpstreamUnreachableError(Exception):
    pass


def create_session(settings: UpstreamSettings) -> aiohttp.ClientSession:
    """One pooled client per upstream, with explicit limits and timeouts."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(
            limit=settings.max_connections,
            limit_per_host=settings.max_connections,
            keepalive_timeout=settings.keepalive_seconds,
            ttl_dns_cache=30,
        ),
        timeout=aiohttp.ClientTimeout(
            total=None,
            sock_connect=settings.connect_timeout_seconds,
            sock_read=settings.read_timeout_seconds,
        ),
        auto_decompress=False,
        # Pass bodies and headers through as they are.
        skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
        # The gateway relays cookies; it never keeps them.
        cookie_jar=aiohttp.DummyCookieJar(),
    )


class StreamedBody(Protocol):
    """A request body read from the client while it is sent on."""

    started: bool  # some of it was read: the request can no longer be replayed
    client_failed: bool  # reading it failed through the client's fault (too large, gone)

    def stream(self) -> AsyncIterator[bytes]: ...


class Upstream:
    def __init__(self, name: str, settings: UpstreamSettings, session: aiohttp.ClientSession):
        self.name = name
        self.settings = settings
        self.base_url = settings.url.rstrip("/")
        # Where the upstream believes it lives: a Location there must not reach a client.
        self.origin = origin_of(self.base_url)
        parts = urlsplit(self.base_url)
        # Every attempt's CLIENT span names the same server.
        self._server_attributes: dict[str, str | int] = {
            "server.address": parts.hostname or "",
            "server.port": parts.port or _DEFAULT_PORTS.get(parts.scheme, 80),
            "shopstack.upstream": name,
        }
        self.session = session
        metrics.initialise_upstream(name)
        self.breaker = CircuitBreaker(
            name,
            failure_threshold=settings.breaker.failure_threshold,
            open_seconds=settings.breaker.open_seconds,
        )
        self.budget = RetryBudget(
            ratio=settings.retry.budget_ratio, min_per_second=settings.retry.budget_min_per_second
        )

    async def open(
        self,
        method: str,
        target: str,
        *,
        headers: CIMultiDict[str] | Mapping[str, str],
        body: StreamedBody | None = None,
        idempotent: bool,
        client_timeout: aiohttp.ClientTimeout | None = None,
    ) -> aiohttp.ClientResponse:
        """Send the request and return the response with its body unread; the caller releases it.

        Raises ``CircuitOpenError`` (the breaker refuses), ``UpstreamTimeoutError`` or
        ``UpstreamUnreachableError``. An idempotent request is retried after a failure to
        connect or an unavailable-status answer, with jittered backoff, while the retry budget
        allows and only if no byte of its body has been sent (a streamed body cannot be replayed).
        A read timeout is never retried: the caller asked for an answer within it.
        """
        url = self.base_url + target
        retry = self.settings.retry
        options: dict[str, Any] = {"timeout": client_timeout} if client_timeout else {}
        self.budget.record_request()
        attempt = 1
        while True:
            self.breaker.before_request()
            span, attempt_headers = self._attempt(method, url, headers)
            started = time.perf_counter()
            try:
                response = await self.session.request(
                    method,
                    url,
                    headers=attempt_headers,
                    allow_redirects=False,
                    data=body.stream() if body is not None else None,
                    **options,
                )
            except aiohttp.ClientConnectionError as error:
                if body is not None and body.client_failed:
                    span.end()
                    raise  # not the upstream's fault: its breaker does not hear of it
                failure: Exception | None = error
                outcome = "timeout" if isinstance(error, TimeoutError) else "unreachable"
                at_fault = True
                if isinstance(error, aiohttp.SocketTimeoutError):
                    self._record(outcome, started, span, ok=False)
                    raise UpstreamTimeoutError(self.name) from error
            except TimeoutError as error:
                self._record("timeout", started, span, ok=False)
                raise UpstreamTimeoutError(self.name) from error
            else:
                span.set_attribute("http.response.status_code", response.status)
                if response.status not in UNAVAILABLE_STATUSES:
                    self._record("ok", started, span, ok=True)
                    return response
                failure, outcome = None, "error_status"
                at_fault = not answered_itself(
                    response.status, response.headers.get("Content-Type")
                )
            self._record(outcome, started, span, ok=False, at_fault=at_fault)
            replayable = body is None or not body.started
            if not (idempotent and replayable and attempt < retry.attempts and self._spend()):
                if failure is None:
                    return response  # the upstream's own 502/503/504 goes to the client as is
                if outcome == "timeout":
                    raise UpstreamTimeoutError(self.name) from failure
                raise UpstreamUnreachableError(self.name) from failure
            if failure is None:
                response.release()
            logger.info("retrying %s %s on %s (%s)", method, target, self.name, outcome)
            delay = backoff_seconds(
                attempt, base=retry.backoff_base_seconds, cap=retry.backoff_max_seconds
            )
            await asyncio.sleep(delay)
            attempt += 1

    def _attempt(
        self, method: str, url: str, headers: CIMultiDict[str] | Mapping[str, str]
    ) -> tuple[Span, CIMultiDict[str]]:
        """One attempt's CLIENT span (stable HTTP conventions), and the request's headers with
        that span as the upstream's parent (W3C traceparent / tracestate)."""
        span = tracer.start_span(
            method,
            kind=SpanKind.CLIENT,
            attributes={"http.request.method": method, "url.full": url, **self._server_attributes},
        )
        attempt_headers = CIMultiDict(headers)
        propagate.inject(attempt_headers, context=trace.set_span_in_context(span))
        return span, attempt_headers

    def _record(
        self, outcome: str, started: float, span: Span, *, ok: bool, at_fault: bool | None = None
    ) -> None:
        """Time and trace the attempt; tell the breaker whether the upstream failed
        (``at_fault``: by default, whenever the attempt did not succeed)."""
        if not ok:
            span.set_attribute("error.type", outcome)
            span.set_status(Status(StatusCode.ERROR, outcome))
        span.end()
        metrics.UPSTREAM_ATTEMPTS.labels(self.name, outcome).inc()
        metrics.UPSTREAM_REQUEST_DURATION.labels(self.name, outcome).observe(
            time.perf_counter() - started, exemplar=trace_exemplar(span)
        )
        if (not ok) if at_fault is None else at_fault:
            self.breaker.record_failure()
        else:
            self.breaker.record_success()

    def _spend(self) -> bool:
        if self.budget.try_spend():
            metrics.UPSTREAM_RETRIES.labels(self.name).inc()
            return True
        metrics.RETRIES_DENIED.labels(self.name).inc()
        return False


async def close_all(upstreams: Mapping[str, Upstream]) -> None:
    for upstream in upstreams.values():
        await upstream.session.close()
