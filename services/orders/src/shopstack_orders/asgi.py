"""The ASGI entry point uvicorn loads: ``shopstack_orders.asgi:app``."""

from shopstack_orders.main import create_app

app = create_app()
