"""RFC 9457 problem details: the one error shape of the platform, and its registry of types.

Every error any service or the gateway answers is a problem document whose ``type`` is one
of the ``ProblemType`` entries below. A slug has one meaning across the platform: "no token"
is ``authentication-required`` whichever part noticed it. Each type is described at
``/problems/<slug>`` (the gateway serves the registry), so a ``type`` URI can be followed.

``ProblemError`` is framework-free: domain code raises it, and one thin adapter per framework
(``fastapi_adapter``, ``flask_adapter``) turns it into a response.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, TypedDict

from shopstack_common.context import current_request_id

PROBLEM_CONTENT_TYPE = "application/problem+json"
# Where the descriptions live. Relative by default, so a type resolves against whatever origin
# answered: through NGINX that is the gateway's /problems/<slug>.
PROBLEM_TYPE_BASE = os.environ.get("SHOPSTACK_PROBLEM_TYPE_BASE", "/problems/")


class FieldError(TypedDict, total=False):
    """One invalid input: the field (``items[0].quantity``), where it came from (``body``,
    ``query``, ``path``, ``header``, ``form``) and what is wrong with it."""

    field: str
    message: str
    location: str
    code: str


@dataclass(frozen=True)
class ProblemType:
    """A kind of error: its slug, the status it is answered with, a short title, and what it
    means for a client (served at ``/problems/<slug>``)."""

    slug: str
    status: int
    title: str
    description: str
    # A type registered elsewhere (IANA's HTTP problem types) keeps its own URI.
    uri: str | None = None

    @property
    def type_uri(self) -> str:
        return self.uri or PROBLEM_TYPE_BASE + self.slug


_REGISTRY: dict[str, ProblemType] = {}


def _register(
    slug: str, status: int, title: str, description: str, uri: str | None = None
) -> ProblemType:
    if slug in _REGISTRY:
        raise ValueError(f"problem type {slug!r} registered twice")
    problem = ProblemType(slug=slug, status=status, title=title, description=description, uri=uri)
    _REGISTRY[slug] = problem
    return problem


def problem_types() -> Sequence[ProblemType]:
    """Every problem type of the platform, by slug."""
    return [_REGISTRY[slug] for slug in sorted(_REGISTRY)]


def get_problem_type(slug: str) -> ProblemType | None:
    return _REGISTRY.get(slug)


# -- requests the platform cannot take as they are ---------------------------------------
MALFORMED_REQUEST = _register(
    "malformed-request",
    400,
    "Malformed request",
    "The request could not be read: a body that is not valid JSON or form data, nested "
    "deeper than allowed, or bytes that are not valid text. Fix the request; retrying it "
    "unchanged fails the same way.",
)
VALIDATION = _register(
    "validation",
    422,
    "Invalid request",
    "One or more inputs are wrong. `errors` lists each one with the field it names, where it "
    "came from (body, query, path, header, form) and what is wrong with it.",
)
INVALID_CURSOR = _register(
    "invalid-cursor",
    422,
    "Invalid cursor",
    "The pagination cursor was not issued for this list or has been tampered with. Start "
    "again from the first page.",
)
NOT_FOUND = _register(
    "not-found",
    404,
    "Not found",
    "Nothing is at this URL, or it is not visible to the caller (other users' resources "
    "answer the same as missing ones).",
)
METHOD_NOT_ALLOWED = _register(
    "method-not-allowed",
    405,
    "Method not allowed",
    "The resource exists but does not support this method; `Allow` lists the methods it does.",
)
NOT_ACCEPTABLE = _register(
    "not-acceptable",
    406,
    "Not acceptable",
    "The resource cannot be answered in any media type the request's `Accept` allows.",
)
BODY_TOO_LARGE = _register(
    "body-too-large",
    413,
    "Request body too large",
    "The request body is larger than the platform accepts. Send less.",
)
URI_TOO_LONG = _register(
    "uri-too-long",
    414,
    "URI too long",
    "The request line or a header is longer than the platform accepts.",
)
UNSUPPORTED_MEDIA_TYPE = _register(
    "unsupported-media-type",
    415,
    "Unsupported media type",
    "The body's `Content-Type` is not one this operation reads (JSON, or form data for the "
    "token endpoint).",
)
NOT_IMPLEMENTED = _register(
    "not-implemented",
    501,
    "Not implemented",
    "The method, a transfer coding or a protocol upgrade (a WebSocket) of the request is not "
    "supported here.",
)

# -- who is calling ----------------------------------------------------------------------
AUTHENTICATION_REQUIRED = _register(
    "authentication-required",
    401,
    "Authentication required",
    "The operation needs a bearer access token and the request carried none. Get one from "
    "the token endpoint (`POST /api/v1/auth/token`) and send it as `Authorization: Bearer`.",
)
INVALID_TOKEN = _register(
    "invalid-token",
    401,
    "Invalid access token",
    "The access token is expired, not yet valid, malformed, signed by an unknown key or for "
    "another audience. Get a new one; `WWW-Authenticate` says what was wrong.",
)
INVALID_TICKET = _register(
    "invalid-ticket",
    401,
    "Invalid WebSocket ticket",
    "The ticket of a WebSocket upgrade is unknown, expired or already used. Tickets are "
    "single-use and short-lived: get a new one (`POST /api/v1/orders/events/ticket`) right "
    "before connecting.",
)
FORBIDDEN = _register(
    "forbidden",
    403,
    "Forbidden",
    "The caller is known but lacks the role or permission the operation needs.",
)
USER_REQUIRED = _register(
    "user-required",
    403,
    "User token required",
    "The operation acts for a user, and the token belongs to a service client with no user "
    "account (a client-credentials token). Use a token issued to a user.",
)
TOO_MANY_FAILED_LOGINS = _register(
    "too-many-failed-logins",
    429,
    "Too many failed sign-ins",
    "Too many wrong passwords were given for this account from this address. Wait for "
    "`Retry-After` seconds; the account is not locked for other addresses.",
)
QUOTA_EXCEEDED = _register(
    "quota-exceeded",
    429,
    "Too many requests",
    "The caller sent more requests than its rate limit allows. `RateLimit` and `Retry-After` "
    "say when to try again; `violated-policies` names the limit.",
    uri="https://iana.org/assignments/http-problem-types#quota-exceeded",
)
TOO_MANY_CONNECTIONS = _register(
    "too-many-connections",
    429,
    "Too many connections",
    "The caller holds as many live connections (WebSockets) as it may. Close one before "
    "opening another.",
)

# -- conflicts with the state of the platform --------------------------------------------
CONFLICT = _register(
    "conflict",
    409,
    "Conflict",
    "The change conflicts with the current state of the resource. Read it again and retry.",
)
EMAIL_TAKEN = _register(
    "email-taken",
    409,
    "Email already registered",
    "An account with this email address exists. Sign in instead, or use another address.",
)
LAST_ADMIN = _register(
    "last-admin",
    409,
    "Last administrator",
    "The change would leave the platform without an active administrator.",
)
SKU_TAKEN = _register(
    "sku-taken",
    409,
    "SKU already used",
    "Another product has this SKU. SKUs are unique across the catalog.",
)
OUT_OF_STOCK = _register(
    "out-of-stock",
    409,
    "Out of stock",
    "Not enough units of a product are in stock for the order; nothing was reserved. "
    "`errors` names the items.",
)
STOCK_LIMIT = _register(
    "stock-limit",
    422,
    "Stock limit exceeded",
    "The restock would take the product's stock above the largest amount it can hold.",
)
PRODUCT_NOT_ORDERABLE = _register(
    "product-not-orderable",
    422,
    "Product cannot be ordered",
    "An item names a product that does not exist or is no longer sold. `errors` names it.",
)
MIXED_CURRENCIES = _register(
    "mixed-currencies",
    422,
    "Mixed currencies",
    "All items of one order must be priced in the same currency.",
)
ILLEGAL_TRANSITION = _register(
    "illegal-transition",
    409,
    "Illegal order transition",
    "The order cannot move to the requested status from the one it is in (for example, a "
    "shipped order cannot be cancelled).",
)
IDEMPOTENCY_KEY_REUSED = _register(
    "idempotency-key-reused",
    422,
    "Idempotency-Key reused",
    "The Idempotency-Key was already used for a request with a different payload. Use a new "
    "key for a new request.",
)
IDEMPOTENCY_KEY_IN_FLIGHT = _register(
    "idempotency-key-in-flight",
    409,
    "Request with this Idempotency-Key in progress",
    "A request with the same Idempotency-Key is still being processed. Retry after it ends "
    "to get its answer replayed.",
)

# -- the platform cannot answer right now ------------------------------------------------
INTERNAL_ERROR = _register(
    "internal-error",
    500,
    "Internal server error",
    "The server failed to complete the request. It is logged with the request id; "
    "nothing was changed unless the operation's answer says otherwise.",
)
UPSTREAM_UNREACHABLE = _register(
    "upstream-unreachable",
    502,
    "Upstream unreachable",
    "The gateway could not reach the service behind this route, or it broke the answer off. "
    "Idempotent requests were retried already.",
)
UPSTREAM_TIMEOUT = _register(
    "upstream-timeout",
    504,
    "Upstream timeout",
    "The service behind this route did not answer in time. A request without an "
    "Idempotency-Key may or may not have taken effect.",
)
UPSTREAM_CIRCUIT_OPEN = _register(
    "upstream-circuit-open",
    503,
    "Upstream circuit open",
    "The service behind this route failed repeatedly, so the gateway stopped sending it "
    "requests for a moment. Retry after `Retry-After` seconds.",
)
DATABASE_UNAVAILABLE = _register(
    "database-unavailable",
    503,
    "Database unavailable",
    "The service's database did not answer. Nothing was changed; retry after `Retry-After` "
    "seconds.",
)
NOT_READY = _register(
    "not-ready",
    503,
    "Not ready",
    "A dependency of the service does not answer; `checks` says which. Served by /readyz.",
)
TOKEN_KEYS_UNAVAILABLE = _register(
    "token-keys-unavailable",
    503,
    "Token keys unavailable",
    "The gateway cannot fetch the keys that verify access tokens right now.",
)
RATE_LIMITER_UNAVAILABLE = _register(
    "rate-limiter-unavailable",
    503,
    "Rate limiter unavailable",
    "The gateway cannot check rate limits and is configured to refuse requests then.",
)
NO_SIGNING_KEY = _register(
    "no-signing-key",
    503,
    "No signing key",
    "The users service has no key to sign access tokens with (a configuration error).",
)
GATEWAY_UNAVAILABLE = _register(
    "gateway-unavailable",
    503,
    "Gateway unavailable",
    "NGINX, in front of the platform, could not reach the gateway. Retry after `Retry-After` "
    "seconds.",
)
EVENTS_UNAVAILABLE = _register(
    "events-unavailable",
    503,
    "Events unavailable",
    "The event stream (Redis) does not answer, so live events cannot be served or WebSocket "
    "tickets issued now. Orders are unaffected; retry after `Retry-After` seconds.",
)
OVERVIEW_UNAVAILABLE = _register(
    "overview-unavailable",
    503,
    "Overview unavailable",
    "None of the services the overview is made from answered.",
)

# The refusals of requests their schema accepts, for what no schema can say: what the
# database holds (an unknown or retired product, mixed currencies, a stock at its ceiling,
# an Idempotency-Key used for other data) or what the service issued (a cursor). A contract
# test accepts these and nothing else for a request valid by its document.
STATE_DEPENDENT = frozenset(
    {PRODUCT_NOT_ORDERABLE, MIXED_CURRENCIES, STOCK_LIMIT, IDEMPOTENCY_KEY_REUSED, INVALID_CURSOR}
)

_BY_STATUS = {
    400: MALFORMED_REQUEST,
    401: AUTHENTICATION_REQUIRED,
    403: FORBIDDEN,
    404: NOT_FOUND,
    405: METHOD_NOT_ALLOWED,
    406: NOT_ACCEPTABLE,
    409: CONFLICT,
    413: BODY_TOO_LARGE,
    414: URI_TOO_LONG,
    415: UNSUPPORTED_MEDIA_TYPE,
    422: VALIDATION,
    429: QUOTA_EXCEEDED,
    500: INTERNAL_ERROR,
    501: NOT_IMPLEMENTED,
    502: UPSTREAM_UNREACHABLE,
    503: NOT_READY,
    504: UPSTREAM_TIMEOUT,
}


def problem_for_status(status: int) -> ProblemType | None:
    """The generic type for an HTTP error the framework raised by itself (a 404 of an unknown
    route, a 405), so no answer of the platform is ``about:blank``."""
    return _BY_STATUS.get(status)


class ProblemError(Exception):
    """Raise anywhere to answer with a problem of type ``problem``.

    ``detail`` says what happened this time; ``errors`` lists invalid fields; ``headers`` go
    on the response (``Retry-After``, ``WWW-Authenticate``); ``extra`` adds members."""

    def __init__(
        self,
        problem: ProblemType,
        detail: str | None = None,
        *,
        errors: Sequence[FieldError] | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(detail or problem.title)
        self.problem = problem
        self.status = status or problem.status
        self.detail = detail
        self.errors = list(errors) if errors else None
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})

    def body(self) -> dict[str, Any]:
        return problem_body(
            self.status,
            problem=self.problem,
            detail=self.detail,
            errors=self.errors,
            extra=self.extra,
        )


def problem_body(
    status: int,
    *,
    problem: ProblemType | None = None,
    detail: str | None = None,
    errors: Sequence[FieldError] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A problem document. Without ``problem``, the generic type of ``status``."""
    problem = problem or problem_for_status(status)
    if problem is not None:
        type_uri, title = problem.type_uri, problem.title
    else:
        type_uri = "about:blank"
        try:
            title = HTTPStatus(status).phrase
        except ValueError:
            title = "Error"
    body: dict[str, Any] = {"type": type_uri, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if errors:
        body["errors"] = list(errors)
    if extra:
        body.update(extra)
    request_id = current_request_id()
    if request_id:
        body["request_id"] = request_id
    return body


def field_names(errors: Iterable[FieldError]) -> str:
    """``a, items[0].quantity``: the fields of a validation problem, for its ``detail``."""
    return ", ".join(sorted({error.get("field", "") for error in errors}))


def validation_error(errors: Sequence[FieldError]) -> ProblemError:
    return ProblemError(VALIDATION, f"Invalid fields: {field_names(errors)}", errors=errors)
