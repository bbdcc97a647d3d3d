"""Alerts in Alertmanager's formats (`alerts/payload.py`): the webhook payload version "4" and the
`POST /api/v2/alerts` body, checked against what Alertmanager itself sends and computes."""

from __future__ import annotations

from fleetdeck_common.alerts.payload import (
    ZERO_TIME,
    alert_labels,
    alertmanager_alert,
    fingerprint,
    rfc3339,
    webhook_payload,
)
from fleetdeck_common.messages import Alert

EXTERNAL = "https://fleet.example.org"


def _alert(
    host: str = "web01", state: str = "firing", since: float = 1_700_000_000.25, **extra: object
) -> Alert:
    fields: dict[str, object] = {
        "rule": "cpu-hot",
        "host": host,
        "state": state,
        "value": 97.5,
        "since": since,
        "severity": "critical",
        "summary": f"CPU at 97.5% on {host}",
        "labels": {"role": "web"},
    }
    fields.update(extra)
    return Alert.model_validate(fields)


def test_the_fingerprint_is_the_one_alertmanager_gives_the_same_labels() -> None:
    # Both pushed to a real Alertmanager 0.25 (Debian's prometheus-alertmanager) and read back
    # from its GET /api/v2/alerts; test_alertmanager.py checks the same against a running one.
    probe = {
        "alertname": "ProbeFailure",
        "instance": "https://server.example.org",
        "job": "http_checks",
        "monitor": "master",
        "severity": "critical",
    }
    assert fingerprint(probe) == "fe986f5dcb3e6510"
    assert fingerprint({"alertname": "a", "host": "hé"}) == "fb38eb3e7187bec7"  # bytes of UTF-8


def test_times_are_rfc3339_in_utc_with_milliseconds() -> None:
    assert rfc3339(1_700_000_000.25) == "2023-11-14T22:13:20.250Z"
    assert rfc3339(0) == "1970-01-01T00:00:00.000Z"


def test_labels_are_alertname_host_severity_and_the_hosts_own_cleaned() -> None:
    alert = _alert(labels={"role": "web", "severity": "low", "rack-id": "r1", "host": "x"})
    assert alert_labels(alert) == {
        "alertname": "cpu-hot",
        "host": "web01",
        "severity": "critical",
        "label_host": "x",  # a host label never replaces what fleetdeck sets
        "label_severity": "low",
        "rack_id": "r1",  # Alertmanager refuses names Prometheus would not accept
        "role": "web",
    }


def test_a_firing_alert_has_alertmanagers_zero_end_time_and_the_payload_its_fields() -> None:
    payload = webhook_payload([_alert()], EXTERNAL)
    assert payload["version"] == "4"
    assert payload["status"] == "firing"
    assert payload["receiver"] == "fleetdeck"
    assert payload["groupLabels"] == {}
    assert payload["groupKey"] == "{}:{}"
    assert payload["truncatedAlerts"] == 0
    assert payload["externalURL"] == EXTERNAL
    [entry] = payload["alerts"]
    assert entry["status"] == "firing"
    assert entry["labels"] == {"alertname": "cpu-hot", "host": "web01", "severity": "critical", "role": "web"}
    assert entry["annotations"] == {"summary": "CPU at 97.5% on web01"}
    assert entry["startsAt"] == "2023-11-14T22:13:20.250Z"
    assert entry["endsAt"] == ZERO_TIME == "0001-01-01T00:00:00Z"
    assert entry["generatorURL"] == f"{EXTERNAL}/?alert=cpu-hot"
    assert entry["fingerprint"] == fingerprint(entry["labels"])
    assert len(entry["fingerprint"]) == 16
    assert payload["commonLabels"] == entry["labels"]
    assert payload["commonAnnotations"] == entry["annotations"]


def test_a_resolved_alert_keeps_its_fingerprint_and_start_and_gains_an_end() -> None:
    fired = webhook_payload([_alert(since=100.0)], EXTERNAL)["alerts"][0]
    resolved = webhook_payload(
        [_alert(state="resolved", since=160.0)], EXTERNAL, {("cpu-hot", "web01"): 100.0}
    )
    entry = resolved["alerts"][0]
    assert resolved["status"] == "resolved"
    assert entry["status"] == "resolved"
    assert entry["fingerprint"] == fired["fingerprint"]
    assert entry["startsAt"] == rfc3339(100.0)
    assert entry["endsAt"] == rfc3339(160.0)


def test_a_resolved_alert_whose_start_is_unknown_starts_when_it_ends() -> None:
    entry = webhook_payload([_alert(state="resolved", since=160.0)], EXTERNAL)["alerts"][0]
    assert entry["startsAt"] == entry["endsAt"] == rfc3339(160.0)


def test_a_group_fires_while_any_of_its_alerts_does_and_shares_only_common_labels() -> None:
    payload = webhook_payload(
        [
            _alert("web01", labels={"role": "web", "dc": "a"}),
            _alert("web02", state="resolved", labels={"role": "web"}),
        ],
        EXTERNAL,
    )
    assert payload["status"] == "firing"
    assert payload["commonLabels"] == {"alertname": "cpu-hot", "severity": "critical", "role": "web"}
    assert payload["commonAnnotations"] == {}  # the summaries name different hosts
    assert [a["status"] for a in payload["alerts"]] == ["firing", "resolved"]


def test_the_api_v2_body_is_valid_for_a_while_when_firing_and_ends_when_resolved() -> None:
    firing = alertmanager_alert(_alert(since=100.0), EXTERNAL, now=200.0, valid_for=240.0)
    assert set(firing) == {"labels", "annotations", "startsAt", "endsAt", "generatorURL"}
    assert firing["startsAt"] == rfc3339(100.0)
    assert firing["endsAt"] == rfc3339(440.0)
    assert firing["labels"]["alertname"] == "cpu-hot"
    resolved = alertmanager_alert(
        _alert(state="resolved", since=300.0), EXTERNAL, 310.0, 240.0, started=100.0
    )
    assert (resolved["startsAt"], resolved["endsAt"]) == (rfc3339(100.0), rfc3339(300.0))
    assert resolved["labels"] == firing["labels"]


def test_a_rule_name_is_quoted_in_the_generator_url() -> None:
    entry = webhook_payload([_alert(rule="disk full/var")], EXTERNAL)["alerts"][0]
    assert entry["generatorURL"] == f"{EXTERNAL}/?alert=disk%20full%2Fvar"
