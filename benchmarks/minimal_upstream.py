"""The fastest honest upstream: one Starlette JSON endpoint (any GET path answers the same
small product document) under uvicorn with httptools and uvloop, no access log.

    python -m benchmarks.minimal_upstream --port 8101
"""

from __future__ import annotations

import argparse

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from benchmarks.processes import run_uvicorn

# A cached product read's size and shape; encoded once, as a cache hit would be.
BODY = (
    b'{"id":"0a57f37b-9a43-4c2e-9d7e-1f1b2f2f6a10","sku":"BENCH-1","name":"Benchmark kettle",'
    b'"price":2599,"currency":"EUR","stock":10}'
)


async def document(request: Request) -> Response:
    return Response(BODY, media_type="application/json")


app = Starlette(routes=[Route("/{path:path}", document, methods=["GET"])])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    run_uvicorn(app, parser.parse_args().port)


if __name__ == "__main__":
    main()
