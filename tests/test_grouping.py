"""Output grouping and host-set folding, ClusterShell style."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from fleetdeck.exec_output import format_summary
from fleetdeck_common.grouping import (
    HOST_LEGEND,
    fold_hosts,
    group_outputs,
    retry_targets,
    shows_placeholder,
    summarize,
    targets_expression,
)
from fleetdeck_common.messages import Done, HostStatus, Result
from fleetdeck_common.targets import TargetPolicy, expand_targets

LOOPBACK = TargetPolicy.from_entries(["127.0.0.0/8"])


def result(host: str, status: HostStatus = "ok", out: str = "", code: int | None = 0, seq: int = 1) -> Result:
    return Result(
        job="j",
        seq=seq,
        host=host,
        status=status,
        exit_code=code,
        stdout=out,
        stderr="",
        duration_ms=1,
        truncated=False,
    )


def test_fold_ipv4_hosts_into_ranges() -> None:
    hosts = [f"127.0.0.{i}" for i in [*range(2, 10), 12]]
    assert fold_hosts(reversed(hosts)) == "127.0.0.[2-9,12]"
    assert fold_hosts(["127.0.0.5"]) == "127.0.0.5"
    assert fold_hosts(["10.0.0.1", "10.0.1.1", "10.0.1.2"]) == "10.0.0.1,10.0.1.[1-2]"


def test_fold_numbered_names_keeps_padding() -> None:
    assert fold_hosts(["web01", "web02", "web03", "web10", "db", "::1"]) == "web[01-03,10],::1,db"


def test_targets_expression_uses_our_own_grammar() -> None:
    hosts = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.9", "web1"]
    assert targets_expression(hosts) == "127.0.0.2-4,127.0.0.9,web1"


def test_identical_outputs_fold_into_one_group_biggest_first() -> None:
    results = [result(f"127.0.0.{i}", out="v1\n") for i in range(2, 8)]
    results += [result("127.0.0.9", "failed", "boom\n", 2), result("127.0.0.10", out="v2\n")]
    groups = group_outputs(results)
    assert [(g.hosts, g.count, g.status) for g in groups] == [
        ("127.0.0.[2-7]", 6, "ok"),
        ("127.0.0.9", 1, "failed"),
        ("127.0.0.10", 1, "ok"),
    ]
    assert groups[0].output == "v1\n"


def test_summary_and_retry_targets_cover_every_host_that_did_not_succeed() -> None:
    results = [
        result("127.0.0.2"),
        result("127.0.0.3", "timeout", code=None),
        result("127.0.0.4", "unreachable", code=None),
        result("127.0.0.6", "failed", code=1),
    ]
    assert summarize(results) == {"ok": 1, "failed": 1, "timeout": 1, "unreachable": 1}
    assert retry_targets(results) == "127.0.0.3-4,127.0.0.6"
    assert retry_targets([result("127.0.0.2")]) == ""


def test_group_output_is_cut_for_the_summary_but_grouping_uses_all_of_it() -> None:
    same_start = "x" * 3000
    results = [result("127.0.0.2", out=same_start + "a"), result("127.0.0.3", out=same_start + "b")]
    groups = group_outputs(results, output_chars=2000)
    assert len(groups) == 2
    assert all(len(g.output) == 2000 and g.output_truncated for g in groups)
    assert not group_outputs([result("127.0.0.2", out="short")])[0].output_truncated


def test_outputs_that_differ_only_by_the_hosts_own_name_fall_in_one_group() -> None:
    refused = [
        result(f"127.0.0.{n}", "unreachable", code=None).model_copy(
            update={"error": f"Connect call failed ('127.0.0.{n}', 22)"}
        )
        for n in range(2, 21)
    ]
    greeting = [result(h, "ok", f"hello from {h}\n") for h in ("web01", "web02", "web10")]
    same = [result(h, "ok", "same\n") for h in ("db1", "db2")]
    groups = {g.hosts: g for g in group_outputs(refused + greeting + same)}
    assert groups["127.0.0.[2-20]"].count == 19
    assert groups["127.0.0.[2-20]"].output == "Connect call failed ('{host}', 22)"
    assert groups["web[01-02,10]"].output == "hello from {host}\n"
    assert groups["db[1-2]"].output == "same\n"  # identical outputs are shown as they are
    # A host named inside another host's output is not that host's own name.
    other = [result("127.0.0.1", "ok", "peer 127.0.0.10\n"), result("127.0.0.10", "ok", "peer 127.0.0.10\n")]
    assert len(group_outputs(other)) == 2


def test_the_summary_says_once_what_host_stands_for_where_it_shows() -> None:
    greeting = [result(h, "ok", f"hello from {h}\n") for h in ("web01", "web02")]
    echoed = [result(h, "failed", f"no {h}\n", code=1) for h in ("db1", "db2")]
    literal = [result("solo", "ok", "prints {host} as it is\n")]  # one host: its own output, no legend
    groups = group_outputs(greeting + echoed + literal)
    assert {g.hosts: shows_placeholder(g) for g in groups} == {
        "web[01-02]": True,
        "db[1-2]": True,
        "solo": False,
    }
    done = Done(
        job="j1", summary={"ok": 3, "failed": 2}, duration_ms=10, groups=groups, retry_targets="db[1-2]"
    )
    lines = format_summary(done, colour=False)
    assert lines.count(f"    {HOST_LEGEND}") == 1
    first = next(i for i, line in enumerate(lines) if "{host}" in line)  # said where it first shows
    assert lines[first + 1] == f"    {HOST_LEGEND}"
    assert not any(
        HOST_LEGEND in line
        for line in format_summary(
            done.model_copy(update={"groups": [g for g in groups if g.hosts == "solo"]}), False
        )
    )


@given(
    st.dictionaries(
        st.integers(1, 254).map(lambda n: f"127.0.0.{n}"),
        st.tuples(st.sampled_from(["ok", "failed", "timeout"]), st.sampled_from(["", "a", "b"])),
        min_size=1,
        max_size=60,
    )
)
def test_every_host_is_in_exactly_one_group_with_its_own_output(
    outcomes: dict[str, tuple[HostStatus, str]],
) -> None:
    results = [result(host, status, out) for host, (status, out) in outcomes.items()]
    groups = group_outputs(results)
    assert sum(g.count for g in groups) == len(results)
    seen: list[str] = []
    for group in groups:
        hosts = expand_targets(group.hosts, LOOPBACK)
        assert len(hosts) == group.count
        assert all(outcomes[h] == (group.status, group.output) for h in hosts)
        seen += hosts
    assert sorted(seen) == sorted(outcomes)
    assert [g.count for g in groups] == sorted((g.count for g in groups), reverse=True)
