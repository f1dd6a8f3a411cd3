"""The streaming reverse proxy, as a plain ASGI callable.

Bodies stream both ways; only an answer of a known length up to ``WHOLE_BODY_BYTES`` is read
whole before any of it is sent, so an upstream that dies in the middle of a small answer (most
of them: JSON) becomes a clean 502 or 504 problem instead of a cut connection. Hop-by-hop
headers are dropped, the ``X-Forwarded-*`` headers are set and the verified identity is added
(the client's own identity headers are gone already: ``middleware/identity_headers.py``);
``traceparent`` carries the gateway's span to the upstream. Statuses and bodies from the
upstream pass through unchanged, except that a ``Location`` or ``Content-Location`` on the
upstream's own origin becomes a path, so no answer carries an upstream's address. Only failures
the gateway sees itself become its own problem+json answers (413, 502, 503, 504).
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Mapping
from urllib.parse import quote, urlsplit

import aiohttp
from multidict import CIMultiDict, MultiMapping

from shopstack_common.asgi import Message, Receive, Scope, Send, send_problem
from shopstack_common.context import REQUEST_ID_HEADER, annotate_request, current_request_id
from shopstack_common.identity import Identity
from shopstack_common.problems import (
    BODY_TOO_LARGE,
    UPSTREAM_CIRCUIT_OPEN,
    UPSTREAM_TIMEOUT,
    UPSTREAM_UNREACHABLE,
    ProblemError,
)
from shopstack_gateway import metrics
from shopstack_gateway.resilience import CircuitOpenError
from shopstack_gateway.routing import Match
from shopstack_gateway.upstreams import (
    IDEMPOTENT_METHODS,
    Origin,
    Upstream,
    UpstreamTimeoutError,
    UpstreamUnreachableError,
    origin_of,
)

logger = logging.getLogger(__name__)

# RFC 9110 §7.6.1, plus the ones proxies conventionally treat the same way.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
# Answers of a known length up to this are read whole before the gateway sends any of them.
WHOLE_BODY_BYTES = 256 * 1024
_DROPPED_REQUEST = HOP_BY_HOP | {"host", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"}
# uvicorn writes the gateway's own Date (and no Server); the upstream's would be a duplicate.
_DROPPED_RESPONSE = HOP_BY_HOP | {REQUEST_ID_HEADER.lower(), "date", "server"}
_LOCATIONS = frozenset({b"location", b"content-location"})


class BodyTooLargeError(Exception):
    pass


class ClientGoneError(Exception):
    pass


def _connection_tokens(headers: list[tuple[bytes, bytes]]) -> set[str]:
    """Header names listed in ``Connection`` are hop-by-hop too (RFC 9110 §7.6.1)."""
    tokens: set[str] = set()
    for name, value in headers:
        if name == b"connection":
            tokens.update(t.strip().lower() for t in value.decode("latin-1").split(","))
    return tokens


def upstream_request_headers(
    scope: Scope, identity: Identity | None, *, keep_content_length: bool
) -> CIMultiDict[str]:
    raw: list[tuple[bytes, bytes]] = scope["headers"]
    dropped = _DROPPED_REQUEST | _connection_tokens(raw)
    if not keep_content_length:
        dropped = dropped | {"content-length"}
    headers: CIMultiDict[str] = CIMultiDict()
    forwarded_for = ""
    original_host = ""
    for raw_name, raw_value in raw:
        # ASGI servers hand header names over lower-cased.
        name = raw_name.decode("latin-1")
        if name in dropped:
            if name == "host":
                original_host = raw_value.decode("latin-1")
            elif name == "x-forwarded-for":
                forwarded_for = raw_value.decode("latin-1")
            continue
        headers.add(name, raw_value.decode("latin-1"))
    client = scope.get("client")
    client_host = client[0] if client else ""
    chain = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    # Behind a trusted proxy (NGINX) uvicorn already took the client from the end of the chain;
    # appending it again would list it twice.
    if client_host and (not chain or chain[-1] != client_host):
        chain.append(client_host)
    headers["X-Forwarded-For"] = ", ".join(chain)
    headers["X-Forwarded-Proto"] = scope.get("scheme", "http")
    if original_host:
        headers["X-Forwarded-Host"] = original_host
    request_id = current_request_id()
    if request_id:
        headers[REQUEST_ID_HEADER] = request_id
    if identity is not None:
        headers.update(identity.to_headers())
    # Upstream.open adds traceparent: each attempt's CLIENT span is the upstream's parent.
    return headers


def public_location(value: str, upstream_origin: Origin | None) -> str:
    """A URL on the upstream's own origin as a path (with query and fragment): the client
    resolves it against the origin it used, the public one. Any other URL is left alone."""
    if upstream_origin is None or origin_of(value) != upstream_origin:
        return value
    parts = urlsplit(value)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    if parts.fragment:
        path += "#" + parts.fragment
    return path


def response_headers(
    headers: MultiMapping[str], upstream_origin: Origin | None = None
) -> list[tuple[bytes, bytes]]:
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    dropped = _DROPPED_RESPONSE | _connection_tokens(raw)
    kept: list[tuple[bytes, bytes]] = []
    for name, value in raw:
        if name in _LOCATIONS:
            location = public_location(value.decode("latin-1"), upstream_origin)
            kept.append((name, location.encode("latin-1")))
        elif name.decode("latin-1") not in dropped:
            kept.append((name, value))
    return kept


class RequestBody:
    """The client's body as an async iterator for aiohttp, cut off past ``limit`` bytes.

    aiohttp wraps errors raised while it sends a body, so what went wrong is also remembered:
    ``too_large`` (answer 413, not 502) and ``client_failed`` (the client's fault, not the
    upstream's); ``started`` tells whether any of it was read (then it cannot be replayed)."""

    def __init__(self, receive: Receive, limit: int) -> None:
        self.receive = receive
        self.limit = limit
        self.too_large = False
        self.client_failed = False
        self.started = False

    async def stream(self) -> AsyncIterator[bytes]:
        received = 0
        while True:
            self.started = True
            message: Message = await self.receive()
            if message["type"] == "http.disconnect":
                # Gone mid-body: abort the upstream request rather than send half a body.
                self.client_failed = True
                raise ClientGoneError
            chunk: bytes = message.get("body", b"")
            received += len(chunk)
            if received > self.limit:
                self.too_large = self.client_failed = True
                raise BodyTooLargeError
            if chunk:
                yield chunk
            if not message.get("more_body", False):
                return

    async def read(self) -> bytes | None:
        """The whole body (within the limit), or None when the client went away."""
        try:
            return b"".join([chunk async for chunk in self.stream()])
        except ClientGoneError:
            return None


class ReplayableBody:
    """A body held in memory, sent again on every attempt (never "started" for good)."""

    started = False
    client_failed = False
    too_large = False

    def __init__(self, data: bytes) -> None:
        self.data = data

    async def stream(self) -> AsyncIterator[bytes]:
        yield self.data


class Proxy:
    def __init__(self, *, upstreams: Mapping[str, Upstream], max_body_bytes: int) -> None:
        self.upstreams = upstreams
        self.max_body_bytes = max_body_bytes

    async def __call__(
        self, scope: Scope, receive: Receive, send: Send, match: Match, identity: Identity | None
    ) -> None:
        upstream = self.upstreams[match.upstream]
        annotate_request(upstream=match.upstream)

        content_length, chunked, idempotency_key = _body_headers(scope)
        if content_length is not None and (
            not content_length.isdigit() or int(content_length) > self.max_body_bytes
        ):
            await send_problem(scope, send, self._too_large())
            return

        method: str = scope["method"]
        # The path as the client sent it (still percent-encoded); ASGI makes raw_path optional.
        raw_path = scope.get("raw_path") or quote(scope["path"]).encode()
        target = raw_path.decode("latin-1")
        if scope.get("query_string"):
            target += "?" + scope["query_string"].decode("latin-1")
        body: RequestBody | ReplayableBody | None = None
        if method not in IDEMPOTENT_METHODS or content_length not in (None, b"0") or chunked:
            body = RequestBody(receive, self.max_body_bytes)
            replay_limit = upstream.settings.retry.replay_body_bytes
            if idempotency_key and not chunked and int(content_length or 0) <= replay_limit:
                # Small enough to hold: read it whole, so a retry can send it again.
                data = await body.read()
                if data is None:
                    return  # the client left before its body arrived
                body = ReplayableBody(data)
        headers = upstream_request_headers(
            scope, identity, keep_content_length=content_length is not None and not chunked
        )
        try:
            response = await upstream.open(
                method,
                target,
                headers=headers,
                body=body,
                idempotent=method in IDEMPOTENT_METHODS or idempotency_key,
            )
        except CircuitOpenError as error:
            metrics.CIRCUIT_REJECTED.labels(error.upstream).inc()
            await send_problem(
                scope,
                send,
                ProblemError(
                    UPSTREAM_CIRCUIT_OPEN,
                    f"{error.upstream} is failing; the gateway sends it nothing for now.",
                    headers={"Retry-After": str(max(1, math.ceil(error.retry_after)))},
                ),
            )
        except UpstreamTimeoutError:
            await send_problem(
                scope,
                send,
                ProblemError(UPSTREAM_TIMEOUT, f"{match.upstream} did not answer in time."),
            )
        except (BodyTooLargeError, ClientGoneError, UpstreamUnreachableError, aiohttp.ClientError):
            if body is not None and body.too_large:
                await send_problem(scope, send, self._too_large())
            elif body is None or not body.client_failed:  # else nobody waits for an answer
                await send_problem(
                    scope,
                    send,
                    ProblemError(UPSTREAM_UNREACHABLE, f"{match.upstream} is unreachable."),
                )
        else:
            try:
                await self._answer(scope, send, match.upstream, upstream.origin, response)
            finally:
                response.release()

    async def _answer(
        self,
        scope: Scope,
        send: Send,
        name: str,
        origin: Origin | None,
        response: aiohttp.ClientResponse,
    ) -> None:
        """The upstream's answer; a small one that breaks off is the gateway's 502 or 504."""
        try:
            whole = await read_whole(response)
        except TimeoutError:
            problem = ProblemError(UPSTREAM_TIMEOUT, f"{name} did not finish its answer in time.")
        except aiohttp.ClientError:
            problem = ProblemError(UPSTREAM_UNREACHABLE, f"{name} broke off its answer.")
        else:
            await relay(response, send, origin, whole)
            return
        await send_problem(scope, send, problem)

    def _too_large(self) -> ProblemError:
        return ProblemError(
            BODY_TOO_LARGE, f"The request body is larger than {self.max_body_bytes} bytes."
        )


def _body_headers(scope: Scope) -> tuple[bytes | None, bool, bool]:
    """Content-Length, whether the body is chunked, whether an Idempotency-Key was sent."""
    content_length = None
    chunked = idempotency_key = False
    for name, value in scope["headers"]:
        if name == b"content-length":
            content_length = value
        elif name == b"transfer-encoding":
            chunked = True
        elif name == b"idempotency-key":
            idempotency_key = True
    return content_length, chunked, idempotency_key


async def read_whole(response: aiohttp.ClientResponse) -> bytes | None:
    """The body, when its length is known and at most ``WHOLE_BODY_BYTES``; else None (it
    streams). Raises what aiohttp raises when the upstream breaks off or stalls."""
    length = response.content_length
    if length is None or length > WHOLE_BODY_BYTES:
        return None
    if response.method == "HEAD" or response.status in (204, 304):
        return None  # no body follows, whatever Content-Length says
    body = await response.content.read()
    if len(body) != length:
        raise aiohttp.ClientPayloadError(f"{len(body)} of {length} bytes")
    return body


async def relay(
    response: aiohttp.ClientResponse,
    send: Send,
    upstream_origin: Origin | None,
    whole: bytes | None = None,
) -> None:
    """Status, headers and body: ``whole`` when it was read already, else as they come. An
    upstream that fails in the middle of a streamed body raises here: the server then cuts the
    connection, which tells the client the body is incomplete."""
    await send(
        {
            "type": "http.response.start",
            "status": response.status,
            "headers": response_headers(response.headers, upstream_origin),
        }
    )
    if whole is not None:
        await send({"type": "http.response.body", "body": whole})
        return
    content = response.content
    while True:
        chunk = await content.readany()
        if not chunk:
            await send({"type": "http.response.body", "body": b""})
            return
        # A small body arrives whole: one message, without an empty one to end it.
        more = not content.at_eof()
        await send({"type": "http.response.body", "body": chunk, "more_body": more})
        if not more:
            return
