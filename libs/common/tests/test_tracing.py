"""The gateway's SERVER span: continued from the client's traceparent, current while the edge
runs, its attributes and status recorded only when sampled."""

from __future__ import annotations

import pytest
from opentelemetry import baggage, trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased, Sampler, TraceIdRatioBased
from opentelemetry.trace import SpanKind, StatusCode

from shopstack_common.asgi import Message, Receive, Scope, Send
from shopstack_common.tracing import TracingMiddleware

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
# The gateway's default: a new trace sampled at OTEL_TRACES_SAMPLER_ARG=1.
DEFAULT_SAMPLER = ParentBased(TraceIdRatioBased(1.0))


def request(headers: list[tuple[bytes, bytes]] | None = None, **extra: object) -> Scope:
    return {
        "type": "http",
        "method": "GET",
        "scheme": "http",
        "path": "/api/v1/orders",
        "query_string": b"limit=5",
        "http_version": "1.1",
        "client": ("198.51.100.7", 52000),
        "server": ("127.0.0.1", 8000),
        "headers": headers or [(b"user-agent", b"wrk")],
        **extra,
    }


async def receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


class Traced:
    """A TracingMiddleware with its own provider, an app that answers ``status`` and notes
    the span that was current while it ran, and what it sent."""

    def __init__(self, sampler: Sampler = DEFAULT_SAMPLER) -> None:
        self.exporter = InMemorySpanExporter()
        provider = TracerProvider(sampler=sampler)
        provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.current: list[trace.Span] = []
        self.sent: list[Message] = []
        self.sends: list[Send] = []
        self.middleware = TracingMiddleware(self.app, tracer_provider=provider)
        self.status = 200
        self.error: Exception | None = None

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.current.append(trace.get_current_span())
        self.sends.append(send)
        if self.error is not None:
            raise self.error
        await send({"type": "http.response.start", "status": self.status, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    async def __call__(self, scope: Scope) -> None:
        async def send(message: Message) -> None:
            self.sent.append(message)

        self.downstream = send
        await self.middleware(scope, receive, send)

    @property
    def span(self) -> ReadableSpan:
        (span,) = self.exporter.get_finished_spans()
        return span


async def test_a_new_request_is_a_new_trace_whose_server_span_the_edge_runs_in() -> None:
    traced = Traced()
    await traced(request())
    span = traced.span
    assert span.kind is SpanKind.SERVER
    assert span.parent is None
    assert span.name == "GET"
    assert traced.current[0].get_span_context() == span.context
    assert span.attributes == {
        "http.request.method": "GET",
        "url.scheme": "http",
        "url.path": "/api/v1/orders",
        "url.query": "limit=5",
        "network.protocol.version": "1.1",
        "client.address": "198.51.100.7",
        "server.address": "127.0.0.1",
        "server.port": 8000,
        "user_agent.original": "wrk",
        "http.response.status_code": 200,
    }
    assert span.status.status_code is StatusCode.UNSET
    assert [m["type"] for m in traced.sent] == ["http.response.start", "http.response.body"]


async def test_a_sampled_traceparent_is_continued() -> None:
    traced = Traced()
    traceparent = f"00-{TRACE_ID}-{PARENT_ID}-01".encode()
    await traced(request([(b"traceparent", traceparent)]))
    span = traced.span
    assert f"{span.context.trace_id:032x}" == TRACE_ID
    assert span.parent is not None
    assert f"{span.parent.span_id:016x}" == PARENT_ID
    assert span.parent.is_remote


@pytest.mark.parametrize(
    ("sampler", "headers"),
    [
        (
            ParentBased(TraceIdRatioBased(1.0)),
            [(b"traceparent", f"00-{TRACE_ID}-{PARENT_ID}-00".encode())],
        ),
        (ParentBased(ALWAYS_OFF), []),
    ],
    ids=["unsampled traceparent", "new trace not sampled"],
)
async def test_an_unsampled_request_records_nothing_and_is_sent_on_as_it_is(
    sampler: Sampler, headers: list[tuple[bytes, bytes]]
) -> None:
    traced = Traced(sampler)
    await traced(request(headers))
    assert traced.exporter.get_finished_spans() == ()
    # The trace still travels (the proxy's traceparent continues it), at no cost to send.
    current = traced.current[0].get_span_context()
    assert current.is_valid
    if headers:
        assert f"{current.trace_id:032x}" == TRACE_ID
    assert traced.sends == [traced.downstream]


@pytest.mark.parametrize(("status", "code"), [(404, StatusCode.UNSET), (503, StatusCode.ERROR)])
async def test_a_server_error_marks_the_span_and_a_client_error_does_not(
    status: int, code: StatusCode
) -> None:
    traced = Traced()
    traced.status = status
    await traced(request())
    assert traced.span.attributes is not None
    assert traced.span.attributes["http.response.status_code"] == status
    assert traced.span.status.status_code is code


async def test_an_exception_is_recorded_and_raised_on() -> None:
    traced = Traced()
    traced.error = RuntimeError("boom")
    with pytest.raises(RuntimeError, match="boom"):
        await traced(request())
    assert traced.span.status.status_code is StatusCode.ERROR
    assert [event.name for event in traced.span.events] == ["exception"]
    assert trace.get_current_span() is trace.INVALID_SPAN  # the context was restored


async def test_an_accepted_websocket_is_status_101() -> None:
    traced = Traced()

    async def accept(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "websocket.accept"})

    traced.middleware.app = accept
    await traced(request(type="websocket"))
    assert traced.span.attributes is not None
    assert traced.span.attributes["http.response.status_code"] == 101


async def test_the_lifespan_is_not_traced() -> None:
    traced = Traced()
    await traced({"type": "lifespan"})
    assert traced.exporter.get_finished_spans() == ()
    assert traced.current == [trace.INVALID_SPAN]


async def test_baggage_alone_is_read_too() -> None:
    """Each header the propagators read counts, not only traceparent."""
    seen: list[dict[str, object]] = []
    traced = Traced()

    async def note_baggage(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(dict(baggage.get_all()))

    traced.middleware.app = note_baggage
    await traced(request([(b"baggage", b"tenant=acme")]))
    assert seen == [{"tenant": "acme"}]
