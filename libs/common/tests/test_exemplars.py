"""Exemplars: a sampled request's trace id on its latency bucket, shown only in the OpenMetrics
format, and never in multiprocess mode (prometheus-client keeps none there)."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, Sampler

from shopstack_common.metrics import negotiated_payload, observe_request, trace_exemplar

OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"
ROUTE = "/exemplar-test/{id}"


def tracer(sampler: Sampler) -> TracerProvider:
    return TracerProvider(sampler=sampler)


def test_a_sampled_request_leaves_its_trace_id_on_its_bucket() -> None:
    with tracer(ALWAYS_ON).get_tracer("test").start_as_current_span("request") as span:
        observe_request(route=ROUTE, method="get", status=200, duration=0.003)
        trace_id = format(span.get_span_context().trace_id, "032x")
    payload, content_type = negotiated_payload(OPENMETRICS)
    assert content_type.startswith("application/openmetrics-text")
    lines = [
        line
        for line in payload.decode().splitlines()
        if line.startswith("shopstack_http_request_duration_seconds_bucket") and ROUTE in line
    ]
    assert any(f'# {{trace_id="{trace_id}"}} 0.003' in line for line in lines), lines
    # The classic text format has no exemplars.
    text, text_type = negotiated_payload("*/*")
    assert text_type.startswith("text/plain")
    assert trace_id not in text.decode()


def test_no_exemplar_without_a_sampled_span_or_in_multiprocess_mode(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert trace_exemplar() is None  # no span at all
    with tracer(ALWAYS_OFF).get_tracer("test").start_as_current_span("unsampled"):
        assert trace_exemplar() is None
    with tracer(ALWAYS_ON).get_tracer("test").start_as_current_span("sampled"):
        assert trace_exemplar() is not None
        monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "/nonexistent")
        assert trace_exemplar() is None
