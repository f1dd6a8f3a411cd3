"""The ASGI entry point uvicorn loads: ``shopstack_gateway.asgi:app``."""

from shopstack_gateway.main import create_app

app = create_app()
