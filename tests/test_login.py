"""Logging in and out: failed logins are logged (with the address, never the token) and throttled
per address; a throttled address gets 429 with Retry-After whatever token it sends; logout checks
Origin like every cookie-authenticated POST."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from fleetdeck_common.broker.memory import MemoryBroker
from fleetdeck_gateway.app import create_app
from fleetdeck_gateway.auth.authenticator import SESSION_COOKIE
from fleetdeck_gateway.auth.loginguard import LoginThrottle, throttle_key
from fleetdeck_gateway.auth.tokenedit import add_token
from fleetdeck_gateway.auth.tokenstore import TokenStore
from fleetdeck_gateway.settings import GatewaySettings
from testbed.procs import ROOT, start_gateway
from tests.support.fakes import FakeClock
from tests.support.redis_users import RedisUsers
from tests.support.stacks import Tokens


@dataclass
class App:
    http: TestClient
    clock: FakeClock
    operator: str
    viewer: str

    def login(self, token: str, address: str) -> Any:
        """The answer to a login from `address` (as a trusted proxy would forward it)."""
        return self.http.post("/api/login", json={"token": token}, headers={"X-Forwarded-For": address})


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    """The gateway behind uvicorn's proxy-header handling, trusting the test client as its proxy
    (as FORWARDED_ALLOW_IPS would), so each request can come from an address of its own."""
    token_file = tmp_path / "tokens"
    operator, viewer = add_token(token_file, "alice", "operator"), add_token(token_file, "bob", "viewer")
    settings = GatewaySettings(redis_url="memory://", tokens_file=token_file, web_dir=ROOT / "web")
    clock = FakeClock()
    starlette_app = create_app(
        settings, broker=MemoryBroker(), tokens=TokenStore(token_file), login_clock=clock
    )
    proxied = ProxyHeadersMiddleware(starlette_app, trusted_hosts=["testclient"])  # type: ignore[arg-type]
    with TestClient(proxied, base_url="http://testserver") as http:  # type: ignore[arg-type]
        yield App(http, clock, operator, viewer)


def test_failed_logins_are_throttled_per_address_with_retry_after(
    app: App, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    wrong = [f"fdk_{secrets.token_urlsafe(32)}" for _ in range(12)]
    first, second = "198.51.100.7", "203.0.113.9"
    for token in wrong[:10]:
        assert app.login(token, first).status_code == 401
    throttled = app.login(wrong[10], first)
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "6"
    assert throttled.json()["error"] == "rate_limited" and first in throttled.json()["message"]
    # While throttled the token is not even looked at: a right one gets 429 too.
    assert app.login(app.viewer, first).status_code == 429
    # Another address is not affected.
    assert app.login(wrong[11], second).status_code == 401
    assert app.login(app.viewer, second).status_code == 200
    # One more try every 6 s (10 a minute).
    app.clock.now += 6
    assert app.login(wrong[0], first).status_code == 401
    assert app.login(app.viewer, first).status_code == 429
    app.clock.now += 60
    assert app.login(app.viewer, first).status_code == 200

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings.count(f"login refused from {first}: unknown or expired token") == 11
    assert f"logins from {first} refused for the next 6 s: too many failed logins" in warnings
    assert f"login refused from {second}: unknown or expired token" in warnings
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert not [token for token in [*wrong, app.viewer] if token in logged]

    audit = app.http.get("/api/audit", headers={"Authorization": f"Bearer {app.operator}"}).json()["entries"]
    refused = [e["address"] for e in audit if e["action"] == "login" and e["outcome"] == "refused"]
    assert refused.count(first) == 11 and refused.count(second) == 1  # the 429s are not failures


def test_a_successful_login_does_not_buy_more_guesses(app: App) -> None:
    address = "192.0.2.44"
    for _ in range(9):
        assert app.login("fdk_wrong", address).status_code == 401
    assert app.login(app.operator, address).status_code == 200
    assert app.login("fdk_wrong", address).status_code == 401
    assert app.login("fdk_wrong", address).status_code == 429


def test_logout_checks_origin_like_every_cookie_authenticated_post(app: App) -> None:
    assert app.login(app.viewer, "192.0.2.1").status_code == 200
    foreign = app.http.post("/api/logout", headers={"Origin": "http://evil.example"})
    assert foreign.status_code == 403 and "origin" in foreign.json()["message"]
    look_alike = app.http.post("/api/logout", headers={"Origin": "http://testserver.evil.example"})
    assert look_alike.status_code == 403
    assert app.http.get("/api/me").status_code == 200  # still logged in
    assert SESSION_COOKIE in app.http.cookies
    assert app.http.post("/api/logout", headers={"Origin": "http://testserver"}).status_code == 200
    assert app.http.get("/api/me").status_code == 401


def test_addresses_count_as_themselves_and_ipv6_by_their_64() -> None:
    assert throttle_key("192.0.2.7") == "192.0.2.7"
    assert throttle_key("2001:db8:1:2:aaaa::1") == throttle_key("2001:db8:1:2:bbbb::2") == "2001:db8:1:2::/64"
    assert throttle_key("2001:db8:1:3::1") != throttle_key("2001:db8:1:2::1")
    assert throttle_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert throttle_key("testclient") == "testclient"


def test_the_throttle_holds_a_bounded_number_of_addresses() -> None:
    clock = FakeClock()
    throttle = LoginThrottle(failures=2, max_addresses=100, clock=clock)
    for n in range(5000):
        throttle.failed(f"10.{n // 65536}.{n // 256 % 256}.{n % 256}")
    assert len(throttle) == 100
    throttle.failed("10.0.19.135")  # among the last 100: its bucket is still there, and now empty
    assert throttle.retry_after("10.0.19.135") == 30


def test_a_failed_login_spray_gets_a_bounded_number_of_audit_entries() -> None:
    clock = FakeClock()
    throttle = LoginThrottle(failures=10, audited=5, clock=clock)
    assert [throttle.audit_failure() for _ in range(8)] == [0, 0, 0, 0, 0, None, None, None]
    clock.now += 12  # one more entry every 12 s at 5 a minute; it says how many were left out
    assert throttle.audit_failure() == 3
    assert throttle.audit_failure() is None


def test_the_gateway_throttles_by_the_address_uvicorn_sees(
    redis_users: RedisUsers, tokens: Tokens, tmp_path: Path
) -> None:
    """A real gateway behind a proxy on loopback (trusted by uvicorn's default FORWARDED_ALLOW_IPS):
    the address is the one X-Forwarded-For names, in the throttle, the log and the audit."""
    address = f"203.0.113.{secrets.randbelow(254) + 1}"
    forwarded = {"X-Forwarded-For": f"{address}, 127.0.0.1"}  # the client, then a proxy on loopback
    wrong = [f"fdk_{secrets.token_urlsafe(32)}" for _ in range(11)]
    gateway = start_gateway(
        redis_users.url("gateway"),
        tmp_path,
        tokens.file,
        name="gateway-login",
        FLEETDECK_JOB_KEY_FILE=redis_users.job_key,
    )
    try:
        with httpx.Client(base_url=gateway.url) as http:
            answers = [
                http.post("/api/login", json={"token": t}, headers=forwarded).status_code for t in wrong
            ]
            assert answers == [401] * 10 + [429]
            throttled = http.post("/api/login", json={"token": tokens.viewer}, headers=forwarded)
            assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) >= 1
            assert http.post("/api/login", json={"token": tokens.viewer}).status_code == 200  # from 127.0.0.1
            audit = http.get(
                "/api/audit",
                params={"since": "5m", "limit": "1000"},
                headers={"Authorization": f"Bearer {tokens.operator}"},
            ).json()["entries"]

        async def burst() -> list[int]:
            """30 wrong logins sent at once from another address: they cannot all slip past the check."""
            other = {"X-Forwarded-For": f"198.51.100.{secrets.randbelow(254) + 1}"}
            async with httpx.AsyncClient(base_url=gateway.url) as http:
                answers = await asyncio.gather(
                    *(http.post("/api/login", json={"token": t}, headers=other) for t in wrong[:1] * 30)
                )
            return sorted(a.status_code for a in answers)

        assert asyncio.run(burst()) == [401] * 10 + [429] * 20
    finally:
        gateway.stop()
    assert len([e for e in audit if e["action"] == "login" and e.get("address") == address]) == 10
    log = gateway.service.log()
    assert f"login refused from {address}: unknown or expired token" in log
    assert not [token for token in wrong if token in log]
