"""Gateway unit tests: the upstreams are small aiohttp apps on loopback, built per test."""

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import httpx
import pytest
from aiohttp import web

from shopstack_devstack.ports import free_port
from shopstack_gateway.config import GatewaySettings, UpstreamSettings
from shopstack_gateway.main import create_app

GatewayFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]
UpstreamServer = Callable[[web.Application], AbstractAsyncContextManager[str]]


@asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture
def serve_upstream() -> UpstreamServer:
    """Serve an aiohttp app on a loopback port; yields its base URL."""
    return serve


@pytest.fixture
def make_gateway() -> GatewayFactory:
    @asynccontextmanager
    async def make(
        upstreams: dict[str, str], **overrides: object
    ) -> AsyncIterator[httpx.AsyncClient]:
        read_timeout = overrides.pop("read_timeout_seconds", 5.0)
        settings = GatewaySettings(
            redis_url=f"redis://127.0.0.1:{free_port()}/0",
            upstreams={
                name: UpstreamSettings(url=url, read_timeout_seconds=read_timeout)  # type: ignore[arg-type]
                for name, url in upstreams.items()
            },
            **overrides,  # type: ignore[arg-type]
        )
        app = create_app(settings)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app, client=("203.0.113.9", 5555)),
                base_url="http://shop.example",
            ) as client,
        ):
            yield client

    return make
