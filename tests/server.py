"""Run an ASGI app on a real uvicorn server on a free loopback port, for the duration of a `with` block."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _Server(uvicorn.Server):
    """uvicorn's server, asked whether to stop every 10 ms instead of every 100 ms: the suite starts and stops a
    server in hundreds of tests, and the wait for the next tick was a tenth of a second of each."""

    async def main_loop(self) -> None:
        ticks = 0
        while not await self.on_tick(0 if ticks % 100 == 0 else 1):  # tick 0 renews the date header: once a second
            ticks += 1
            await asyncio.sleep(0.01)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """With no connection open (the test's clients closed theirs), uvicorn's tenth of a second for open
        connections to finish is skipped: the listening sockets close, and the app's lifespan ends."""
        if self.server_state.connections:
            return await super().shutdown(sockets)
        for server in self.servers:
            server.close()
            await server.wait_closed()
        for sock in sockets or []:
            sock.close()
        if not self.force_exit:
            await self.lifespan.shutdown()


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """The base URL of `app` served by uvicorn on loopback; the server stops when the block ends."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, access_log=False, log_level="warning")
    server = _Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def wait_for(condition: Any, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the condition did not hold in time"
        time.sleep(0.05)


def answers(url: str) -> bool:
    """Whether a GET of `url` answers 200 now."""
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
