"""Start and stop a simulator on a loopback port, in-process or as ``tagsweep simulator``."""

from __future__ import annotations

import asyncio
import signal
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from simulator.app import Simulator, make_app
from simulator.config import SimulatorConfig


@dataclass
class RunningSimulator:
    """A simulator serving HTTP; ``url`` is its base address."""

    sim: Simulator
    runner: web.AppRunner
    url: str

    async def close(self) -> None:
        await self.runner.cleanup()


def build_simulator(
    config: SimulatorConfig, *, seed_csv: Path | list[Path] | None = None
) -> Simulator:
    """A simulator holding the images and tags of the seed CSVs (under ``config.project_id``)."""
    sim = Simulator(config)
    seeds = [seed_csv] if isinstance(seed_csv, Path) else seed_csv or []
    for seed in seeds:
        sim.store.load_seed(seed, default_project_id=config.project_id)
    return sim


async def start_simulator(
    sim: Simulator, *, host: str = "127.0.0.1", port: int = 0
) -> RunningSimulator:
    """Serve ``sim`` on ``host:port`` (port 0: any free port) and return where."""
    runner = web.AppRunner(make_app(sim), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    server = site._server
    assert isinstance(server, asyncio.base_events.Server)
    bound_port = server.sockets[0].getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    return RunningSimulator(sim, runner, f"http://{shown}:{bound_port}")


async def serve_forever(sim: Simulator, *, host: str, port: int) -> None:
    """Serve until SIGINT or SIGTERM; print the URL first, for scripts and tests."""
    running = await start_simulator(sim, host=host, port=port)
    print(f"simulator listening on {running.url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await running.close()
