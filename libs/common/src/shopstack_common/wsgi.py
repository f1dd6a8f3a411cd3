"""WSGI middleware for the Flask service: request id, metrics and the access log.

The app records the matched route template in ``environ[ROUTE_ENVIRON_KEY]`` (Flask knows it
only inside the request); everything else happens here, around the whole request.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any

from shopstack_common.context import (
    REQUEST_ID_HEADER,
    RequestContext,
    accept_request_id,
    request_context_var,
)
from shopstack_common.metrics import HTTP_REQUESTS_IN_FLIGHT, UNMATCHED_ROUTE, observe_request
from shopstack_common.observability import log_access
from shopstack_common.telemetry import name_server_span

ROUTE_ENVIRON_KEY = "shopstack.route"
CONTEXT_ENVIRON_KEY = "shopstack.context"

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]
StartResponse = Callable[..., Callable[[bytes], object]]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class RequestContextMiddleware:
    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        context = RequestContext(request_id=accept_request_id(environ.get("HTTP_X_REQUEST_ID")))
        environ[CONTEXT_ENVIRON_KEY] = context
        token = request_context_var.set(context)
        started = time.perf_counter()
        status = 500

        def start_with_request_id(
            status_line: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = None
        ) -> Callable[[bytes], object]:
            nonlocal status
            status = int(status_line.split(" ", 1)[0])
            # Routed by now, and the server span is still the current one.
            name_server_span(environ.get("REQUEST_METHOD", "GET"), environ.get(ROUTE_ENVIRON_KEY))
            headers = [(k, v) for k, v in headers if k.lower() != REQUEST_ID_HEADER.lower()]
            headers.append((REQUEST_ID_HEADER, context.request_id))
            if exc_info is None:
                return start_response(status_line, headers)
            return start_response(status_line, headers, exc_info)

        def finish() -> None:
            HTTP_REQUESTS_IN_FLIGHT.dec()
            duration = time.perf_counter() - started
            route = environ.get(ROUTE_ENVIRON_KEY) or UNMATCHED_ROUTE
            method = environ.get("REQUEST_METHOD", "GET")
            observe_request(route=route, method=method, status=status, duration=duration)
            log_access(
                method=method,
                route=route,
                path=environ.get("PATH_INFO", ""),
                status=status,
                duration=duration,
                fields=context.fields,
            )

        HTTP_REQUESTS_IN_FLIGHT.inc()
        try:
            body = self.app(environ, start_with_request_id)
        except BaseException:
            finish()
            raise
        finally:
            request_context_var.reset(token)
        return _ClosingIterable(body, finish, context)


class _ClosingIterable:
    """Passes the body through and finishes the request's bookkeeping when the server closes it,
    that is after the last byte went out."""

    def __init__(
        self, body: Iterable[bytes], on_close: Callable[[], None], context: RequestContext
    ) -> None:
        self._body = body
        self._on_close = on_close
        self._context = context

    def __iter__(self) -> Iterator[bytes]:
        token = request_context_var.set(self._context)
        try:
            yield from self._body
        finally:
            request_context_var.reset(token)

    def close(self) -> None:
        token = request_context_var.set(self._context)
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._on_close()
            request_context_var.reset(token)
