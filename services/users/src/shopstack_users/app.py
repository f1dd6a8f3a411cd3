"""The Flask app factory."""

from __future__ import annotations

from flask import Flask, request
from flask_smorest import Api
from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware

from shopstack_common.logs import configure_logging
from shopstack_common.telemetry import configure_tracing
from shopstack_common.wsgi import ROUTE_ENVIRON_KEY, RequestContextMiddleware
from shopstack_users import ops
from shopstack_users.accounts.routes import blp as accounts_blp
from shopstack_users.config import UsersSettings
from shopstack_users.errors import register_error_handlers
from shopstack_users.extensions import cache, db


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
    # flask-smorest's Api holds one app's OpenAPI document, so each app gets its own.
    api = Api(app)
    api.register_blueprint(accounts_blp)
    app.register_blueprint(ops.blp)
    register_error_handlers(app)

    @app.before_request
    def _record_route() -> None:
        if request.url_rule is not None:
            request.environ[ROUTE_ENVIRON_KEY] = request.url_rule.rule

    app.wsgi_app = OpenTelemetryMiddleware(RequestContextMiddleware(app.wsgi_app))  # type: ignore[method-assign]
    return app
