"""The client process's command line, and its stdin/stdout protocol (see the package's docstring)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import uvloop

from .. import cli
from ..measure import raise_fd_limit
from .churn import ChurningClients
from .clients import Clients
from .compact import CompactClients


def _say(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def _commands(loop: asyncio.AbstractEventLoop, clients: Clients, closing: asyncio.Event) -> None:
    """Read stdin on a thread, each command served on the loop; the end of stdin is a `close`."""
    for line in sys.stdin:
        with contextlib.suppress(ValueError):
            asyncio.run_coroutine_threadsafe(_serve(json.loads(line), clients, closing), loop)
    loop.call_soon_threadsafe(closing.set)


async def _serve(command: dict[str, Any], clients: Clients, closing: asyncio.Event) -> None:
    if command.get("cmd") == "close":
        closing.set()
    elif command.get("cmd") == "window":
        clients.open_window(float(command["start"]), float(command["end"]))
        await asyncio.sleep(max(0.0, clients.window.end + float(command.get("grace", 2)) - time.time()))
        _say(clients.result())
    elif command.get("cmd") == "stall":
        _say(clients.stall(int(command["count"])))
    elif command.get("cmd") == "resume":
        _say(await clients.resume(float(command.get("wait", 10))))


async def main_async(args: argparse.Namespace) -> None:
    kind = ChurningClients if args.churn_lifetime > 0 else Clients
    clients = (CompactClients if args.fleet_format == "compact" else kind)(args)
    closing = asyncio.Event()
    subscribed = asyncio.Event()
    watcher = asyncio.create_task(clients.book.watch(args.redis, subscribed))
    await asyncio.wait_for(subscribed.wait(), 10)
    gate = asyncio.Semaphore(args.connect_concurrency)
    started = time.monotonic()
    tasks = [asyncio.create_task(clients.run(i, gate, closing)) for i in range(args.count)]
    ready = asyncio.create_task(clients.all_ready.wait())
    closed = asyncio.create_task(closing.wait())
    # Commands are served from the start (a soak opens its window while clients still connect).
    loop = asyncio.get_running_loop()
    threading.Thread(target=_commands, args=(loop, clients, closing), daemon=True).start()
    await asyncio.wait({ready, closed}, timeout=args.ready_timeout, return_when=asyncio.FIRST_COMPLETED)
    ready.cancel()
    _say(
        {
            "event": "ready",
            "ready": clients.ready,
            "failed": clients.failed,
            "failures": dict(clients.failures),
            "seconds": round(time.monotonic() - started, 2),
        }
    )
    await closed
    for socket in clients.sockets.values():
        socket.transport.abort()  # no closing handshakes: the server sees the sockets drop
    for task in [*tasks, watcher]:
        task.cancel()
    await asyncio.gather(*tasks, watcher, return_exceptions=True)


OPTIONS = {"url": "", "token": "", "count": 500, "mode": ("fleet", "cpu"), "redis": "", "probe_every": 20}
OPTIONS |= {"connect_concurrency": 50, "ready_timeout": 120.0, "max_seconds": 900.0, "light": False}
OPTIONS |= {"reach": False, "churn_lifetime": 0.0, "cpu_hosts": 0, "batch": False, "also_topics": ""}
OPTIONS |= {"fleet_format": ("json", "compact")}
HELPS = {
    "url": "ws://127.0.0.1:PORT/ws",
    "redis": "redis://127.0.0.1:PORT/0 (the publisher's)",
    "light": "non-probe fleet clients count, not parse",
    "reach": "fleet: which samples reached probes, which were superseded",
    "churn_lifetime": "churn: mean seconds a session lasts",
    "cpu_hosts": "fleet: also follow K random hosts' `cpu`",
    "batch": "open /ws?batch=1, as the dashboard does",
    "also_topics": "comma list of topics followed besides the mode's",
    "fleet_format": "fleet frames' format",
}


def main() -> None:
    parser = cli.parser(__doc__ or "", OPTIONS, HELPS, common=False)
    args = parser.parse_args()
    if args.fleet_format == "compact" and (
        args.mode != "fleet" or args.churn_lifetime or args.cpu_hosts or args.reach
    ):
        parser.error("--fleet-format compact follows `fleet`, without churn, --cpu-hosts or --reach")
    if args.churn_lifetime > 0 and args.mode != "fleet":
        parser.error("--churn-lifetime follows `fleet`")
    for url in (args.url, args.redis):
        if urlsplit(url).hostname not in ("127.0.0.1", "localhost"):
            parser.error(f"{url}: the benchmark clients only connect to 127.0.0.1")
    raise_fd_limit()

    async def bounded() -> None:
        try:
            await asyncio.wait_for(main_async(args), args.max_seconds)
        except TimeoutError:
            _say({"event": "error", "error": f"stopped after --max-seconds {args.max_seconds}"})

    uvloop.run(bounded())


if __name__ == "__main__":
    main()
