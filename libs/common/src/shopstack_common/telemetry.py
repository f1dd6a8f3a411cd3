"""Tracing: a tracer provider per process, exporting OTLP only when an endpoint is configured.

Without an endpoint spans are still made, so trace ids reach log lines and ``traceparent``
travels to upstream services; nothing is sent anywhere.

- Stable HTTP semantic conventions (``OTEL_SEMCONV_STABILITY_OPT_IN=http``, unless the
  environment says otherwise): the ASGI and WSGI instrumentations read it when the first
  middleware is built, which is after this runs.
- The sampler is ``parentbased_traceidratio``: a request that arrives with a sampled (or an
  unsampled) ``traceparent`` keeps that decision; a new trace is sampled with probability
  ``OTEL_TRACES_SAMPLER_ARG`` (``ServiceSettings.otel_traces_sampler_arg``, default 1).
- Redis commands are CLIENT spans (``opentelemetry-instrumentation-redis``, redis-py sync and
  asyncio); database statements are CLIENT spans from ``shopstack_common.database``.
"""

from __future__ import annotations

import os

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

SEMCONV_OPT_IN = "OTEL_SEMCONV_STABILITY_OPT_IN"

_configured = False


def configure_tracing(service: str, otlp_endpoint: str | None, sample_ratio: float = 1.0) -> None:
    global _configured  # noqa: PLW0603 - a process has one tracer provider; set it once
    if _configured:
        return
    os.environ.setdefault(SEMCONV_OPT_IN, "http")
    provider = TracerProvider(
        resource=Resource.create({"service.name": service}),
        sampler=ParentBased(TraceIdRatioBased(sample_ratio)),
    )
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        endpoint = otlp_endpoint.rstrip("/") + "/v1/traces"
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    trace.set_tracer_provider(provider)
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    instrumentor = RedisInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(tracer_provider=provider)
    _configured = True


def name_server_span(method: str, route: str | None) -> None:
    """Name the request's SERVER span by its route template once routing knows it
    (``GET /api/v1/products/{product_id}``, ``http.route``), as the HTTP conventions ask: the
    ASGI and WSGI middlewares name it by the raw path, one name per product id. A request no
    route matched is named by its method alone."""
    span = trace.get_current_span()
    if not span.is_recording():
        return
    if route:
        span.update_name(f"{method} {route}")
        span.set_attribute("http.route", route)
    else:
        span.update_name(method)
