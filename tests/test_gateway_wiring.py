"""The gateway is wired in one place: `build_gateway` hands every part its collaborators and
callbacks at construction, and the socket code sees the gateway only through `ws.ports`."""

from __future__ import annotations

import ast
from pathlib import Path

from fleetdeck_common.broker.memory import MemoryBroker
from fleetdeck_gateway.auth.tokenstore import TokenStore
from fleetdeck_gateway.build import build_gateway
from fleetdeck_gateway.settings import GatewaySettings
from fleetdeck_gateway.ws import ports
from testbed.procs import ROOT

GATEWAY = ROOT / "gateway" / "fleetdeck_gateway"


def _sources() -> list[tuple[Path, ast.Module]]:
    return [(path, ast.parse(path.read_text())) for path in sorted(GATEWAY.rglob("*.py"))]


async def test_the_built_gateway_offers_what_the_socket_code_uses() -> None:
    gateway = build_gateway(
        GatewaySettings(redis_url="memory://", web_dir=ROOT / "web"), MemoryBroker(), TokenStore(None)
    )
    services: ports.SocketServices = gateway  # mypy checks the whole protocol here
    for name in ("chat", "jobs", "clients", "fleet", "watches", "presence", "history", "queue", "auth"):
        assert getattr(services, name) is getattr(gateway, name)


def test_no_callback_or_collaborator_is_assigned_after_construction() -> None:
    """`x.on_y = ...` (a callback) or `x.y.z = ...` (into a part of a part) outside the object's
    own `__init__`: a part patched after it was built. A record's own fields (a watch's position)
    may change; `app.state.gateway` is Starlette's place for it."""
    patched = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path, tree in _sources()
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Attribute)
        and not (isinstance(target.value, ast.Name) and target.value.id == "self")
        and (target.attr.startswith("on_") or isinstance(target.value, ast.Attribute))
        and ast.unparse(target) != "app.state.gateway"
    ]
    assert patched == []


def test_no_call_reaches_through_three_objects() -> None:
    """`a.b.c.d()` from outside `a`: a missing parameter."""

    def depth(node: ast.expr) -> tuple[int, str]:
        hops = 0
        while isinstance(node, ast.Attribute):
            hops, node = hops + 1, node.value
        return hops, node.id if isinstance(node, ast.Name) else ""

    chains = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path, tree in _sources()
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and (found := depth(node.func))[0] >= 3
        and found[1] not in {"self", "asyncio", "os", "socket"}
    ]
    assert chains == []
