"""The worker process's connections: bound to TAGSWEEP_SOURCE_ADDRESS when set (#23)."""

from __future__ import annotations

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from worker.runtime import make_connector
from worker.settings import Settings


async def remote_seen(settings: Settings) -> str:
    """The address a server on 127.0.0.1 sees a request of ``settings``'s session come from."""

    async def echo(request: web.Request) -> web.Response:
        return web.Response(text=request.remote or "")

    app = web.Application()
    app.router.add_get("/", echo)
    async with (
        TestServer(app, host="127.0.0.1") as server,
        aiohttp.ClientSession(connector=make_connector(settings)) as session,
        session.get(server.make_url("/")) as response,
    ):
        return await response.text()


async def test_connections_leave_from_the_source_address_when_one_is_set() -> None:
    """Two workers on one host look like two addresses to a gateway counting per address."""
    assert await remote_seen(Settings(source_address="127.0.0.2")) == "127.0.0.2"
    assert await remote_seen(Settings()) == "127.0.0.1"
