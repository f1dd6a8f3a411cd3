"""/healthz, /readyz and /metrics: for probes and scrapes, not part of the public API."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from shopstack_common.health import HEALTHY_BODY, readiness, run_checks_sync
from shopstack_common.metrics import METRICS_CONTENT_TYPE, metrics_payload
from shopstack_common.problem import PROBLEM_CONTENT_TYPE
from shopstack_users.extensions import cache, db

blp = Blueprint("ops", __name__)


@blp.get("/healthz")
def healthz() -> Response:
    return jsonify(HEALTHY_BODY)


@blp.get("/readyz")
def readyz() -> Response:
    status, body = readiness(run_checks_sync({"postgres": db.ping, "redis": cache.ping}))
    response = jsonify(body)
    response.status_code = status
    if status != 200:
        response.mimetype = PROBLEM_CONTENT_TYPE
    return response


@blp.get("/metrics")
def metrics() -> Response:
    return Response(metrics_payload(), mimetype=METRICS_CONTENT_TYPE)
