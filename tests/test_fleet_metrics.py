"""`GET /metrics/fleet`: label names made valid for Prometheus (pure), the exposition accepted by
`promtool check metrics`, the API's token rules, and a real Prometheus scraping a real gateway on
loopback with a viewer token and answering a query for a live agent's CPU."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from fleetdeck_common.messages import HostInfo
from fleetdeck_gateway.auth.tokenedit import add_token, remove_token
from fleetdeck_gateway.feeds.fleet import Latest
from fleetdeck_gateway.fleetexport import GAUGES, exposition, prometheus_labels
from testbed.procs import RedisServer, start_agent, start_gateway, wait_until
from testbed.prometheus import PrometheusServer, check_metrics, prometheus_binary, promtool_binary

needs_promtool = pytest.mark.skipif(
    promtool_binary() is None, reason="promtool is not installed (Debian package `prometheus`)"
)
needs_prometheus = pytest.mark.skipif(
    prometheus_binary() is None, reason="prometheus is not installed (Debian package `prometheus`)"
)
AWKWARD_LABELS = {"role": "web", "host": "other", "a-b": "1", "a.b": "2", "9lives": "y", "__meta": "z"}


def test_label_names_are_cleaned_and_never_clash_with_host_or_each_other() -> None:
    assert prometheus_labels("web01", AWKWARD_LABELS) == {
        "host": "web01",
        "label___meta": "z",  # `__` names are Prometheus's own
        "label_9lives": "y",  # a name cannot start with a digit
        "a_b": "1",
        "a_b_2": "2",  # `a.b` cleans to `a_b` as well
        "label_host": "other",  # the host's own label named `host` does not replace the host
        "role": "web",
    }


def _fleet() -> tuple[list[HostInfo], dict[str, Latest]]:
    hosts = [
        HostInfo(host="web01", online=True, last_seen=1.0, cpus=2, labels=AWKWARD_LABELS),
        HostInfo(
            host='we"ird\\one', online=True, last_seen=1.0, cpus=1, labels={"note": 'a "quoted"\nvalue'}
        ),
        HostInfo(host="old01", online=True, last_seen=1.0, cpus=1),  # an agent from before v1.2
        HostInfo(host="gone01", online=False, last_seen=1.0, cpus=1, labels={"role": "db"}),
        HostInfo(host="new01", online=True, last_seen=1.0, cpus=1),  # no sample yet
    ]
    full = Latest(total=12.5, mem=40.0, load1=0.5, disk=81.2, net_rx=1500.0, net_tx=250.5, uptime=86400.0)
    latest = {
        "web01": full,
        'we"ird\\one': full,
        "old01": Latest(total=1.0, mem=2.0, load1=0.1),
        "gone01": full,
    }
    return hosts, latest


def _values(text: str) -> dict[str, float]:
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line[:1] != "#"
    }


def test_every_known_host_is_up_or_down_and_online_ones_have_their_latest_values() -> None:
    hosts, latest = _fleet()
    values = _values(exposition(lambda: hosts, latest.get).decode())
    web = 'a_b="1",a_b_2="2",host="web01",label_9lives="y",label___meta="z",label_host="other",role="web"'
    assert values[f"fleetdeck_host_up{{{web}}}"] == 1.0
    assert values[f"fleetdeck_host_cpu_percent{{{web}}}"] == 12.5
    assert values[f"fleetdeck_host_disk_used_percent{{{web}}}"] == 81.2
    assert values[f"fleetdeck_host_network_transmit_bytes_per_second{{{web}}}"] == 250.5
    assert values[f"fleetdeck_host_uptime_seconds{{{web}}}"] == 86400.0
    assert len([k for k in values if k.endswith(f"{{{web}}}")]) == 1 + len(GAUGES)
    assert values['fleetdeck_host_up{host="gone01",role="db"}'] == 0.0  # offline: no stale values
    assert [k for k in values if "gone01" in k] == ['fleetdeck_host_up{host="gone01",role="db"}']
    assert values['fleetdeck_host_load1{host="old01"}'] == 0.1
    assert not any("old01" in k and "disk" in k for k in values)  # not measured: left out, not 0
    assert [k for k in values if "new01" in k] == ['fleetdeck_host_up{host="new01"}']
    assert values['fleetdeck_host_cpu_percent{host="we\\"ird\\\\one",note="a \\"quoted\\"\\nvalue"}'] == 12.5


@needs_promtool
def test_promtool_accepts_the_exposition() -> None:
    hosts, latest = _fleet()
    check = check_metrics(exposition(lambda: hosts, latest.get))
    assert check.returncode == 0, check.stdout + check.stderr
    assert check_metrics(b"bad metric{ 1\n").returncode != 0  # it does reject a broken one


@needs_prometheus
@needs_promtool
def test_a_real_prometheus_scrapes_the_fleet_through_one_gateway(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    viewer, revoked = add_token(tokens, "scraper", "viewer"), add_token(tokens, "old", "viewer")
    remove_token(tokens, "old")
    redis = RedisServer(tmp_path)
    redis.start()
    labels = "role=web,host=elsewhere,team.name=ops"
    agent = start_agent("prom-agent", redis.url, tmp_path, 0.5, FLEETDECK_AGENT_LABELS=labels)
    gateway = start_gateway(redis.url, tmp_path, tokens, name="gateway-prom")
    prometheus = PrometheusServer(
        tmp_path / "prometheus", f"127.0.0.1:{gateway.port}", "/metrics/fleet", viewer
    )
    url = f"{gateway.url}/metrics/fleet"
    try:
        assert httpx.get(url).status_code == 401
        assert httpx.get(url, headers={"Authorization": f"Bearer {revoked}"}).status_code == 401  # as /api
        bearer = {"Authorization": f"Bearer {viewer}"}
        wait_until(
            lambda: "fleetdeck_host_cpu_percent{" in httpx.get(url, headers=bearer).text, 15, what="a value"
        )
        answer = httpx.get(url, headers=bearer)
        assert answer.headers["content-type"].startswith("text/plain")
        check = check_metrics(answer.content)
        assert check.returncode == 0, check.stdout + check.stderr
        prometheus.start()
        query = 'fleetdeck_host_cpu_percent{host="prom-agent"}'
        wait_until(
            lambda: prometheus.query(query), 30, interval=0.5, what="prometheus to have scraped a value"
        )
        [series] = prometheus.query(query)
        assert series["metric"]["role"] == "web" and series["metric"]["team_name"] == "ops"
        assert series["metric"]["label_host"] == "elsewhere" and series["metric"]["job"] == "fleetdeck"
        assert 0 <= float(series["value"][1]) <= 100
        [up] = prometheus.query('fleetdeck_host_up{host="prom-agent"}')
        assert up["value"][1] == "1"
        [target] = prometheus.targets()
        assert target["health"] == "up", target["lastError"]
    finally:
        prometheus.stop()
        gateway.stop()
        agent.stop()
        redis.stop()
