"""The streaming reverse proxy, as a plain ASGI app.

Bodies stream both ways (nothing is buffered whole); hop-by-hop headers are dropped, the
``X-Forwarded-*`` headers are set, and identity headers from the client are always removed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Mapping

import aiohttp
from multidict import CIMultiDict, MultiMapping

from shopstack_common.asgi import ROUTE_SCOPE_KEY, Message, Receive, Scope, Send
from shopstack_common.context import REQUEST_ID_HEADER, annotate_request, current_request_id
from shopstack_common.identity import is_identity_header
from shopstack_common.problem import PROBLEM_CONTENT_TYPE, problem_body, problem_type
from shopstack_gateway.routing import RouteTable

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
CHUNK_SIZE = 64 * 1024


class BodyTooLargeError(Exception):
    pass


async def send_problem(
    send: Send, status: int, *, slug: str | None = None, detail: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> None:  # fmt: skip
    body = json.dumps(
        problem_body(status, detail=detail, type_=problem_type(slug) if slug else None)
    ).encode()
    raw_headers = [
        (b"content-type", PROBLEM_CONTENT_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    raw_headers += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


def _connection_tokens(headers: list[tuple[bytes, bytes]]) -> set[str]:
    """Header names listed in ``Connection`` are hop-by-hop too (RFC 9110 §7.6.1)."""
    tokens: set[str] = set()
    for name, value in headers:
        if name == b"connection":
            tokens.update(t.strip().lower() for t in value.decode("latin-1").split(","))
    return tokens


def upstream_request_headers(scope: Scope, extra: Mapping[str, str]) -> CIMultiDict[str]:
    raw: list[tuple[bytes, bytes]] = scope["headers"]
    dropped = HOP_BY_HOP | _connection_tokens(raw) | {"host", "content-length"}
    headers: CIMultiDict[str] = CIMultiDict()
    client_host = ""
    forwarded_for = ""
    original_host = ""
    for raw_name, raw_value in raw:
        name = raw_name.decode("latin-1")
        value = raw_value.decode("latin-1")
        lowered = name.lower()
        if lowered == "host":
            original_host = value
        if lowered == "x-forwarded-for":
            forwarded_for = value
            continue
        if lowered in dropped or is_identity_header(lowered) or lowered.startswith("x-forwarded-"):
            continue
        headers.add(name, value)
    client = scope.get("client")
    if client:
        client_host = client[0]
    headers["X-Forwarded-For"] = ", ".join(p for p in (forwarded_for, client_host) if p)
    headers["X-Forwarded-Proto"] = scope.get("scheme", "http")
    if original_host:
        headers["X-Forwarded-Host"] = original_host
    request_id = current_request_id()
    if request_id:
        headers[REQUEST_ID_HEADER] = request_id
    headers.update(extra)
    return headers


def response_headers(headers: MultiMapping[str]) -> list[tuple[bytes, bytes]]:
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    dropped = HOP_BY_HOP | _connection_tokens(raw) | {REQUEST_ID_HEADER.lower()}
    return [(k, v) for k, v in raw if k.decode("latin-1") not in dropped]


class RequestBody:
    """The client's body as an async iterator for aiohttp, cut off past ``limit`` bytes.

    aiohttp wraps errors raised while it sends a body, so the cut-off is also remembered in
    ``too_large`` for the proxy to answer 413 instead of 502."""

    def __init__(self, receive: Receive, limit: int) -> None:
        self.receive = receive
        self.limit = limit
        self.too_large = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        received = 0
        while True:
            message: Message = await self.receive()
            if message["type"] == "http.disconnect":
                return
            chunk: bytes = message.get("body", b"")
            received += len(chunk)
            if received > self.limit:
                self.too_large = True
                raise BodyTooLargeError
            if chunk:
                yield chunk
            if not message.get("more_body", False):
                return


class Proxy:
    def __init__(
        self,
        *,
        routes: RouteTable,
        sessions: Mapping[str, aiohttp.ClientSession],
        base_urls: Mapping[str, str],
        max_body_bytes: int,
    ) -> None:
        self.routes = routes
        self.sessions = sessions
        self.base_urls = {name: url.rstrip("/") for name, url in base_urls.items()}
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = self.routes.match(scope["path"])
        if match is None:
            await send_problem(send, 404, detail="No route serves this path.")
            return
        scope[ROUTE_SCOPE_KEY] = f"{match.prefix}/*"
        annotate_request(upstream=match.upstream)

        content_length = _header(scope, b"content-length")
        if (
            content_length is not None
            and content_length.isdigit()
            and int(content_length) > self.max_body_bytes
        ):
            await send_problem(
                send, 413, slug="body-too-large",
                detail=f"The request body is larger than {self.max_body_bytes} bytes.",
            )  # fmt: skip
            return

        url = self.base_urls[match.upstream] + scope["raw_path"].decode("latin-1")
        if scope.get("query_string"):
            url += "?" + scope["query_string"].decode("latin-1")
        method: str = scope["method"]
        body = None
        if (
            method not in {"GET", "HEAD", "OPTIONS"}
            or content_length
            or _header(scope, b"transfer-encoding")
        ):
            body = RequestBody(receive, self.max_body_bytes)
        session = self.sessions[match.upstream]
        response_started = False
        try:
            async with session.request(
                method,
                url,
                headers=upstream_request_headers(scope, {}),
                data=body.__aiter__() if body is not None else None,
                allow_redirects=False,
            ) as upstream:
                await send(
                    {
                        "type": "http.response.start",
                        "status": upstream.status,
                        "headers": response_headers(upstream.headers),
                    }
                )
                response_started = True
                async for chunk in upstream.content.iter_chunked(CHUNK_SIZE):
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b""})
        except TimeoutError:
            if response_started:
                raise
            logger.warning("upstream %s timed out", match.upstream)
            await send_problem(
                send,
                504,
                slug="upstream-timeout",
                detail=f"{match.upstream} did not answer in time.",
            )
        except (BodyTooLargeError, aiohttp.ClientError) as error:
            if response_started:
                raise
            if isinstance(error, BodyTooLargeError) or (body is not None and body.too_large):
                await send_problem(
                    send, 413, slug="body-too-large",
                    detail=f"The request body is larger than {self.max_body_bytes} bytes.",
                )  # fmt: skip
                return
            logger.warning("upstream %s unreachable: %s", match.upstream, error)
            await send_problem(
                send, 502, slug="upstream-unreachable", detail=f"{match.upstream} is unreachable."
            )


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            decoded: str = value.decode("latin-1")
            return decoded
    return None
