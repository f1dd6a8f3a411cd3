"""Wires the users app: settings, resources, error handlers, blueprints, WSGI middleware."""

from __future__ import annotations

import logging

from flask import Flask, request
from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware
from werkzeug.middleware.proxy_fix import ProxyFix

from shopstack_common.flask_adapter import (
    BoundedRequest,
    install_problem_handlers,
    ops_blueprint,
)
from shopstack_common.logs import configure_logging
from shopstack_common.telemetry import configure_tracing
from shopstack_common.wsgi import ROUTE_ENVIRON_KEY, RequestContextMiddleware
from shopstack_users import commands
from shopstack_users.accounts.router import accounts, user_admin
from shopstack_users.config import UsersSettings
from shopstack_users.console import router as console
from shopstack_users.keys import SigningKeyError
from shopstack_users.openapi import UsersApi, install_document_route
from shopstack_users.resources import Resources
from shopstack_users.tokens.router import blp as tokens

logger = logging.getLogger(__name__)


def create_app(settings: UsersSettings | None = None) -> Flask:
    settings = settings or UsersSettings()  # read from the environment
    configure_logging(settings.service_name, settings.log_level)
    configure_tracing(
        settings.tracing_service_name,
        settings.otel_exporter_otlp_endpoint,
        settings.otel_traces_sampler_arg,
    )

    app = Flask(__name__)
    app.request_class = BoundedRequest
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_content_length,
        API_TITLE="shopstack users",
        API_VERSION="v1",
        OPENAPI_VERSION="3.1.0",
        # /openapi.json is served by install_document_route, with the platform's Problem.
        OPENAPI_URL_PREFIX=None,
    )
    # Neither a trailing slash nor a doubled one earns a redirect: a redirect would name this
    # service's own address, which is not the one clients reach it by.
    app.url_map.strict_slashes = False
    app.url_map.merge_slashes = False
    found = Resources.open(settings)
    found.install(app)
    _check_signing_key(found)

    api = UsersApi(app)
    api.spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    )
    api.spec.components.security_scheme("clientBasic", {"type": "http", "scheme": "basic"})
    api.register_blueprint(accounts)
    api.register_blueprint(user_admin)
    api.register_blueprint(tokens)
    install_document_route(app, api)
    # With a metrics port of its own (gunicorn serves it), /metrics is not on the API port.
    app.register_blueprint(
        ops_blueprint(found.readiness_checks, metrics=settings.metrics_port is None)
    )
    install_problem_handlers(app, database_log=found.database_log)
    # The admin console's pages under /admin (their errors are pages too).
    console.install(app, settings)
    commands.register(app)

    @app.before_request
    def _record_route() -> None:
        if request.url_rule is not None:
            request.environ[ROUTE_ENVIRON_KEY] = request.url_rule.rule

    wsgi_app = app.wsgi_app
    if settings.trusted_proxy_hops:
        # The client address (login throttling); see UsersSettings.trusted_proxy_hops.
        wsgi_app = ProxyFix(wsgi_app, x_for=settings.trusted_proxy_hops)
    app.wsgi_app = OpenTelemetryMiddleware(RequestContextMiddleware(wsgi_app))  # type: ignore[method-assign]
    return app


def _check_signing_key(found: Resources) -> None:
    """Outside development, a users service that cannot sign tokens must not start. In
    development it starts and the token endpoint answers 503: `make up` provides a key."""
    if found.keys.signing_key is not None:
        return
    message = (
        "no access-token signing key: set JWT_SIGNING_KEYS_DIR (a directory of <kid>.pem "
        "Ed25519 private keys) or JWT_SIGNING_KEYS (a JSON object {kid: PEM})"
    )
    if not found.settings.is_development:
        found.close()
        raise SigningKeyError(message)
    logger.warning("%s; the token endpoint will answer 503", message)
