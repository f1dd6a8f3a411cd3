"""The gateway's edge: small plain ASGI middlewares, one concern each, in this order.

1. ``identity_headers``: every ``X-Shopstack-*`` header a client sent is removed.
2. ``authentication``: a bearer token, when sent, is verified; the identity (or the refusal of
   a bad token) is recorded in the scope.
3. ``rate_limit``: one bucket is checked per request; over it, 429.
4. ``dispatch``: who answers: a refusal recorded by authentication (sent only now, so that
   token guessing counts against the rate limit), the proxy for a path in the route table
   (after its token requirement), or the gateway's own FastAPI routes.

Each one handles ``websocket`` scopes as it handles ``http``: a WebSocket upgrade has its
identity headers stripped, is authenticated and rate-limited like a request, and a refused
upgrade gets the same problem+json (``shopstack_common.asgi.send_problem``). ``main.py``
assembles the chain.
"""
