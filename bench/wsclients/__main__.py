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


def main() -> None:
    parser = argparse.ArgumentParser(description="Many WebSocket clients in one process (bench/wsclients/).")
    parser.add_argument("--url", required=True, help="ws://127.0.0.1:PORT/ws")
    parser.add_argument("--token", default="")
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--mode", choices=("fleet", "cpu"), required=True)
    parser.add_argument("--redis", required=True, help="redis://127.0.0.1:PORT/0 (the publisher's)")
    parser.add_argument("--probe-every", type=int, default=20)
    parser.add_argument("--connect-concurrency", type=int, default=50)
    parser.add_argument("--ready-timeout", type=float, default=120)
    parser.add_argument("--max-seconds", type=float, default=900)
    parser.add_argument("--light", action="store_true", help="non-probe fleet clients count, not parse")
    parser.add_argument(
        "--reach", action="store_true", help="fleet: which samples reached probes, which were superseded"
    )
    parser.add_argument("--churn-lifetime", type=float, default=0, help="churn: mean seconds a session lasts")
    parser.add_argument("--cpu-hosts", type=int, default=0, help="fleet: also follow K random hosts' `cpu`")
    parser.add_argument("--batch", action="store_true", help="open /ws?batch=1, as the dashboard does")
    parser.add_argument("--also-topics", default="", help="comma list of topics followed besides the mode's")
    parser.add_argument(
        "--fleet-format", choices=("json", "compact"), default="json", help="fleet frames' format"
    )
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
