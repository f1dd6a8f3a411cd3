"""A service's SERVER span, one per request or WebSocket: continued from the ``traceparent``
a client sent (or a new trace), current while the app runs, so the spans it makes (the
gateway's CLIENT span to an upstream and the ``traceparent`` it sends on, orders' database and
Redis spans) are its children, and ended with the answer's last byte. The ASGI services use
it (users, under WSGI, keeps OpenTelemetry's WSGI middleware).

OpenTelemetry's ASGI middleware did this at about a sixth of a proxied request's cost: it
builds every attribute of the HTTP conventions twice, wraps ``receive`` and records
histograms whether or not anything reads them. Here the span is started bare, the sampler
decides, and only a recorded span gets its attributes (the stable HTTP conventions' request
ones, then the status) and a wrapped ``send``: an unsampled request costs the propagation
and a non-recording span, nothing more. The route template names the span later
(``shopstack_common.telemetry.name_server_span``, from the request context middleware).
"""

from __future__ import annotations

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import SpanKind, StatusCode

from shopstack_common.asgi import SCOPE_TYPES, ASGIApp, Message, Receive, Scope, Send

Headers = list[tuple[bytes, bytes]]


class _ASGIHeaders(Getter[Headers]):
    """The propagators read a request's ASGI header list (names lower-case) as it is."""

    def get(self, carrier: Headers, key: str) -> list[str] | None:
        name = key.lower().encode("latin-1")
        values = [value.decode("latin-1") for header, value in carrier if header == name]
        return values or None

    def keys(self, carrier: Headers) -> list[str]:
        return [header.decode("latin-1") for header, _ in carrier]


_GETTER = _ASGIHeaders()
_STATUS_MESSAGES = frozenset({"http.response.start", "websocket.http.response.start"})


def request_attributes(scope: Scope) -> dict[str, str | int]:
    """The stable HTTP conventions' request attributes (``OTEL_SEMCONV_STABILITY_OPT_IN=http``)."""
    attributes: dict[str, str | int] = {
        "http.request.method": scope.get("method", "GET"),
        "url.scheme": scope.get("scheme", "http"),
        "url.path": scope["path"],
        "network.protocol.version": scope.get("http_version", "1.1"),
    }
    if scope.get("query_string"):
        attributes["url.query"] = scope["query_string"].decode("latin-1")
    if client := scope.get("client"):
        attributes["client.address"] = client[0]
    if server := scope.get("server"):
        attributes["server.address"], attributes["server.port"] = server[0], server[1]
    for name, value in scope["headers"]:
        if name == b"user-agent":
            attributes["user_agent.original"] = value.decode("latin-1")
            break
    return attributes


class TracingMiddleware:
    def __init__(self, app: ASGIApp, *, tracer_provider: trace.TracerProvider | None = None):
        self.app = app
        # Through the global provider when none is given: the one configure_tracing sets.
        self.tracer = trace.get_tracer(__name__, tracer_provider=tracer_provider)
        # traceparent, tracestate and baggage by default; OTEL_PROPAGATORS may name others.
        self.propagation_fields = frozenset(
            field.lower().encode("latin-1") for field in propagate.get_global_textmap().fields
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in SCOPE_TYPES:
            await self.app(scope, receive, send)
            return
        headers: Headers = scope["headers"]
        # Most requests carry no trace context: then there is nothing for the propagators to
        # parse (they name the headers they read), and the span begins a new trace.
        fields = self.propagation_fields
        if any(name in fields for name, _ in headers):
            parent = propagate.extract(headers, getter=_GETTER)
        else:
            parent = otel_context.get_current()
        # Named by the method until routing knows the route template.
        span = self.tracer.start_span(scope.get("method", "GET"), parent, kind=SpanKind.SERVER)
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        try:
            if span.is_recording():
                span.set_attributes(request_attributes(scope))
                await self.app(scope, receive, _noting_status(send, span))
            else:
                await self.app(scope, receive, send)
        except BaseException as error:
            span.record_exception(error)
            span.set_status(StatusCode.ERROR, type(error).__name__)
            raise
        finally:
            span.end()
            otel_context.detach(token)


def _noting_status(send: Send, span: trace.Span) -> Send:
    async def send_noting_status(message: Message) -> None:
        kind = message["type"]
        if kind in _STATUS_MESSAGES:
            _set_status(span, message["status"])
        elif kind == "websocket.accept":
            _set_status(span, 101)
        await send(message)

    return send_noting_status


def _set_status(span: trace.Span, status: int) -> None:
    span.set_attribute("http.response.status_code", status)
    if status >= 500:  # a 4xx is the client's error, not the server span's (the conventions)
        span.set_status(StatusCode.ERROR)
