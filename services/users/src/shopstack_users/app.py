"""The Flask app factory."""

from __future__ import annotations

import logging

from flask import Flask, request
from flask_smorest import Api
from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware
from werkzeug.middleware.proxy_fix import ProxyFix

from shopstack_common.logs import configure_logging
from shopstack_common.telemetry import configure_tracing
from shopstack_common.wsgi import ROUTE_ENVIRON_KEY, RequestContextMiddleware
from shopstack_users import commands, ops
from shopstack_users.accounts.admin import blp as users_admin_blp
from shopstack_users.accounts.routes import blp as accounts_blp
from shopstack_users.config import UsersSettings
from shopstack_users.errors import register_error_handlers
from shopstack_users.extensions import cache, db, security
from shopstack_users.keys import KeyRing, SigningKeyError
from shopstack_users.tokens.routes import blp as tokens_blp

logger = logging.getLogger(__name__)


def create_app(settings: UsersSettings | None = None) -> Flask:
    settings = settings or UsersSettings()  # read from the environment
    configure_logging(settings.service_name, settings.log_level)
    configure_tracing(
        settings.otel_service_name or settings.service_name, settings.otel_exporter_otlp_endpoint
    )

    app = Flask(__name__)
    app.config.update(
        SHOPSTACK_SETTINGS=settings,
        MAX_CONTENT_LENGTH=settings.max_content_length,
        API_TITLE="shopstack users",
        API_VERSION="v1",
        OPENAPI_VERSION="3.1.0",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
    )
    db.init_app(app, settings)
    cache.init_app(app, settings)
    security.init_app(app, settings)
    _check_signing_key(app, settings)
    # flask-smorest's Api holds one app's OpenAPI document, so each app gets its own.
    api = Api(app)
    api.spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    )
    api.register_blueprint(accounts_blp)
    api.register_blueprint(users_admin_blp)
    api.register_blueprint(tokens_blp)
    app.register_blueprint(ops.blp)
    register_error_handlers(app)
    commands.register(app)

    @app.before_request
    def _record_route() -> None:
        if request.url_rule is not None:
            request.environ[ROUTE_ENVIRON_KEY] = request.url_rule.rule

    wsgi_app = app.wsgi_app
    if settings.trusted_proxy_hops:
        # The client address (login throttling) is the entry NGINX added to
        # X-Forwarded-For; see UsersSettings.trusted_proxy_hops.
        wsgi_app = ProxyFix(wsgi_app, x_for=settings.trusted_proxy_hops)
    app.wsgi_app = OpenTelemetryMiddleware(RequestContextMiddleware(wsgi_app))  # type: ignore[method-assign]
    return app


def _check_signing_key(app: Flask, settings: UsersSettings) -> None:
    """Outside development, a users service that cannot sign tokens must not start. In
    development it starts and the token endpoint answers 503: `make up` provides a key."""
    keys: KeyRing = app.extensions["shopstack_users"]["keys"]
    if keys.signing_key is not None:
        return
    message = (
        "no access-token signing key: set JWT_SIGNING_KEYS_DIR (a directory of <kid>.pem "
        "Ed25519 private keys) or JWT_SIGNING_KEYS (a JSON object {kid: PEM})"
    )
    if not settings.is_development:
        raise SigningKeyError(message)
    logger.warning("%s; the token endpoint will answer 503", message)
