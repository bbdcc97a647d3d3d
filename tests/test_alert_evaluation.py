"""One evaluation of the rules against the fleet, pure: what each rule selects and reads, the
transitions it makes, and silences."""

from __future__ import annotations

from fleetdeck_common.alerts.rules import parse_rules
from fleetdeck_common.messages import HostInfo
from fleetdeck_gateway.alerts.evaluation import Key, Tracked, evaluate
from fleetdeck_gateway.alerts.selection import Selections, selected
from fleetdeck_gateway.alerts.silences import Silence, SilenceMatcher, SilenceRequest, make_silence
from fleetdeck_gateway.feeds.fleet import Latest
from fleetdeck_gateway.feeds.hosttable import HostEntry
from fleetdeck_gateway.history.select import select_hosts

RULES = parse_rules(
    """
rules:
  - {name: hot, expr: total > 90, for: 2s, targets: "@role=web", summary: "{host} at {value}%"}
  - {name: gone, expr: offline, severity: critical}
"""
)


def _host(name: str, online: bool = True, role: str = "web") -> HostInfo:
    return HostInfo(host=name, online=online, last_seen=0, cpus=1, labels={"role": role}, address=name)


class Fleet:
    def __init__(self) -> None:
        self.hosts = {"web-1": _host("web-1"), "web-2": _host("web-2"), "db-1": _host("db-1", role="db")}
        self.latest: dict[str, Latest] = {}
        self.tracks: dict[Key, Tracked] = {}

    def sample(self, host: str, ts: float, total: float) -> None:
        self.latest[host] = Latest(total=total, ts=ts)

    def evaluate(self, now: float) -> list[tuple[str, str, str]]:
        outcome = evaluate(RULES, list(self.hosts.values()), self.latest.get, self.tracks, now)
        self.tracks = outcome.tracks
        return [(a.rule, a.host, a.state) for a in outcome.changes]


def test_a_threshold_fires_after_its_duration_on_the_selected_hosts_only_and_resolves() -> None:
    fleet = Fleet()
    for ts in (100, 101):
        for host in fleet.hosts:
            fleet.sample(host, ts, 95)
        assert fleet.evaluate(ts) == []
    for host in fleet.hosts:
        fleet.sample(host, 102, 96)
    assert fleet.evaluate(102) == [("hot", "web-1", "firing"), ("hot", "web-2", "firing")]
    firing = [t.alert for t in fleet.tracks.values() if t.alert]
    assert [a.summary for a in firing if a] == ["web-1 at 96%", "web-2 at 96%"]
    assert fleet.evaluate(102.5) == []
    fleet.sample("web-1", 103, 40)
    assert fleet.evaluate(103) == [("hot", "web-1", "resolved")]


def test_offline_reads_presence_and_an_offline_host_resolves_its_metric_alerts() -> None:
    fleet = Fleet()
    fleet.sample("web-1", 100, 99)
    fleet.tracks = {}
    for ts in (100, 101, 102):
        fleet.sample("web-1", ts, 99)
        fleet.evaluate(ts)
    fleet.hosts["web-1"] = _host("web-1", online=False)
    assert fleet.evaluate(110) == [("hot", "web-1", "resolved"), ("gone", "web-1", "firing")]
    fleet.hosts["web-1"] = _host("web-1")
    fleet.sample("web-1", 111, 10)
    assert fleet.evaluate(111) == [("gone", "web-1", "resolved")]


def test_a_host_without_a_sample_here_yet_keeps_its_state() -> None:
    fleet = Fleet()
    for ts in (100, 101, 102):
        fleet.sample("web-2", ts, 99)
        fleet.evaluate(ts)
    fleet.latest.clear()  # a gateway just started: no sample of it yet
    assert fleet.evaluate(103) == [] and ("hot", "web-2") in fleet.tracks


def test_a_forgotten_host_and_a_rule_removed_resolve_what_fired() -> None:
    fleet = Fleet()
    fleet.hosts["db-1"] = _host("db-1", online=False)
    assert fleet.evaluate(100) == [("gone", "db-1", "firing")]
    del fleet.hosts["db-1"]
    assert fleet.evaluate(101) == [("gone", "db-1", "resolved")]
    fleet.hosts["db-1"] = _host("db-1", online=False)
    fleet.evaluate(102)
    outcome = evaluate(RULES[:1], list(fleet.hosts.values()), fleet.latest.get, fleet.tracks, 103)
    assert [(a.rule, a.host, a.state, a.severity) for a in outcome.changes] == [
        ("gone", "db-1", "resolved", "critical")
    ]
    assert outcome.removed == [("gone", "db-1")] and outcome.tracks == {}


def test_silences_mute_by_rule_and_targets_while_active() -> None:
    hosts = [_host("web-1"), _host("db-1", role="db")]
    by_rule = make_silence(SilenceRequest(rule="hot", for_="1h", comment="deploy"), "alice", 1000, {"hot"})
    by_role = make_silence(
        SilenceRequest(targets="@role=db", until=2000, comment="x"), "alice", 1000, {"hot"}
    )
    muted = SilenceMatcher([by_rule, by_role], hosts, now=1500)
    assert muted("hot", "web-1") and muted("gone", "db-1") and not muted("gone", "web-1")
    assert not SilenceMatcher([by_role], hosts, now=2000)("gone", "db-1")  # ended
    assert by_rule.until == 4600 and isinstance(by_rule, Silence)


def test_silence_requests_are_refused_with_a_sentence_naming_the_field() -> None:
    def refused(**fields: object) -> str:
        try:
            make_silence(SilenceRequest.model_validate({"comment": "c", **fields}), "alice", 1000, {"hot"})
        except ValueError as exc:
            return str(exc)
        raise AssertionError("accepted")

    assert refused(**{"for": "1h"}).startswith("give a rule, targets or both")
    assert refused(rule="nope", **{"for": "1h"}) == "rule: there is no rule named 'nope'"
    assert refused(rule="hot").startswith("give exactly one of until")
    assert refused(rule="hot", until=999).startswith("until: must be a time in the future")
    assert refused(rule="hot", until="tomorrow").startswith("until: 'tomorrow' is not unix seconds")
    assert refused(rule="hot", **{"for": "soon"}).startswith("for: 'soon' is not a duration")
    assert refused(targets="10.0.0.1-300", **{"for": "1h"}).startswith("targets: '10.0.0.1-300'")
    assert refused(rule="hot", comment=" ", **{"for": "1h"}).startswith("comment: say why")


def test_labels_and_names_are_matched_directly_as_history_would_select_them() -> None:
    known = [
        HostEntry("web-1", True, {"role": "web", "dc": "eu"}, "127.0.0.11"),
        HostEntry("web-2", False, {"role": "web", "dc": "us"}, "127.0.0.12"),
        HostEntry("db-1", True, {"role": "db", "dc": "eu"}, "db-1"),
    ]
    for targets in (
        "@role=web",
        "@dc=eu !web-1",
        "web-2 db-1",
        "@role=web,!@dc=us",
        "127.0.0.12",
        "!db-1 @dc=eu",
    ):
        fast = [h.host for h in selected(targets, known)]
        assert fast == [h.host for h in known if h.host in select_hosts(targets, known)], targets
    assert [h.host for h in selected("127.0.0.0/24,!web-2", known)] == ["web-1"]  # through history's path
    choices = Selections()
    assert [h.host for h in choices.choose("@role=web", known, version=1)] == ["web-1", "web-2"]
    relabelled = [known[0]._replace(labels={"role": "db"}), *known[1:]]
    assert [h.host for h in choices.choose("@role=web", relabelled, version=1)] == ["web-1", "web-2"]  # kept
    assert [h.host for h in choices.choose("@role=web", relabelled, version=2)] == ["web-2"]  # read again


def test_only_a_phase_change_is_written_not_a_pending_states_progress() -> None:
    fleet = Fleet()
    written: list[list[Key]] = []
    for ts, total in ((100, 95), (101, 96), (102, 97), (103, 98), (104, 99), (105, 40)):
        fleet.sample("web-1", ts, total)
        outcome = evaluate(RULES, list(fleet.hosts.values()), fleet.latest.get, fleet.tracks, ts)
        fleet.tracks = outcome.tracks
        written.append(sorted(outcome.written))
        if ts == 105:
            assert outcome.removed == [("hot", "web-1")]
    started, fired = [("hot", "web-1")], [("hot", "web-1")]
    # pending begins, counts on in memory, fires, fires on unwritten, resolves (removed)
    assert written == [started, [], fired, [], [], []]
    assert fleet.tracks == {}
