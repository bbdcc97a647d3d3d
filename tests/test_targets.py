"""The target grammar: expansion, exclusion, allowlist, cap, and errors that name the bad term."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleetdeck_common.grouping import fold_hosts, targets_expression
from fleetdeck_common.targets import (
    KnownAddresses,
    TargetError,
    TargetPolicy,
    expand_nodeset,
    expand_targets,
    parse_labels,
    sort_hosts,
    split_terms,
)

OPEN = TargetPolicy.from_entries(["0.0.0.0/0", "::/0", "*.example.com", "db1"], max_hosts=1024)
LOOPBACK = TargetPolicy.from_entries(["127.0.0.0/8"], max_hosts=1024)


def test_last_octet_range_is_the_tutorials_syntax() -> None:
    hosts = expand_targets("10.0.0.1-100", OPEN)
    assert len(hosts) == 100
    assert hosts[0] == "10.0.0.1" and hosts[-1] == "10.0.0.100"


def test_every_term_kind_combines_ordered_and_deduplicated() -> None:
    hosts = expand_targets("10.0.0.9, 10.0.0.250-10.0.1.2 10.0.0.8/30,10.0.0.9 web.example.com db1", OPEN)
    assert hosts == [
        "10.0.0.9",
        "10.0.0.10",
        "10.0.0.250",
        "10.0.0.251",
        "10.0.0.252",
        "10.0.0.253",
        "10.0.0.254",
        "10.0.0.255",
        "10.0.1.0",
        "10.0.1.1",
        "10.0.1.2",
        "db1",
        "web.example.com",
    ]


def test_cidr_excludes_network_and_broadcast_only_above_slash_31() -> None:
    assert expand_targets("10.1.0.0/30", OPEN) == ["10.1.0.1", "10.1.0.2"]
    assert expand_targets("10.1.0.0/31", OPEN) == ["10.1.0.0", "10.1.0.1"]
    assert expand_targets("10.1.0.7/32", OPEN) == ["10.1.0.7"]


def test_exclusions_remove_hosts() -> None:
    assert expand_targets("127.0.0.1-5 !127.0.0.2 !127.0.0.4-5", LOOPBACK) == ["127.0.0.1", "127.0.0.3"]


def test_ipv6_addresses_and_ranges() -> None:
    assert expand_targets("::1", OPEN) == ["::1"]
    assert expand_targets("fd00::1-fd00::3", OPEN) == ["fd00::1", "fd00::2", "fd00::3"]
    assert expand_targets("[fd00::5]", OPEN) == ["fd00::5"]


@pytest.mark.parametrize(
    ("expression", "term", "reason"),
    [
        ("", "", "empty"),
        ("  ,, ", "", "empty"),
        ("10.0.0.300", "10.0.0.300", "not a valid IP address"),
        ("10.0.0.5-2", "10.0.0.5-2", "ends (10.0.0.2) before it starts"),
        ("10.0.0.1-300", "10.0.0.1-300", "more than 255"),
        ("10.0.0.1-foo", "10.0.0.1-foo", "not an address or a last octet"),
        ("10.0.0.0/33", "10.0.0.0/33", "not a valid CIDR"),
        ("10.0.0.1-::1", "10.0.0.1-::1", "mixes IPv4 and IPv6"),
        ("bad_host!", "bad_host!", "not an address, range, CIDR or valid host name"),
        ("127.0.0.1 !", "!", "must be followed"),
        ("127.0.0.1 !127.0.0.1", "127.0.0.1 !127.0.0.1", "no hosts left"),
    ],
)
def test_bad_terms_are_named_with_the_reason(expression: str, term: str, reason: str) -> None:
    with pytest.raises(TargetError) as caught:
        expand_targets(expression, OPEN)
    assert caught.value.term == term
    assert reason in caught.value.reason


def test_hosts_outside_the_allowlist_are_refused_naming_the_term() -> None:
    with pytest.raises(TargetError) as caught:
        expand_targets("127.0.0.1,10.0.0.1-100", LOOPBACK)
    assert caught.value.term == "10.0.0.1-100"
    assert "10.0.0.1 is outside the allowed targets (127.0.0.0/8)" in str(caught.value)
    with pytest.raises(TargetError, match="outside"):
        expand_targets("web.example.com", LOOPBACK)


def test_the_host_cap_is_enforced() -> None:
    policy = TargetPolicy.from_entries(["10.0.0.0/8"], max_hosts=50)
    assert len(expand_targets("10.0.0.1-50", policy)) == 50
    with pytest.raises(TargetError, match="expands to more than 50 hosts"):
        expand_targets("10.0.0.1-51", policy)
    with pytest.raises(TargetError, match="network has 16777214 addresses, too many"):
        expand_targets("10.0.0.0/8", policy)


def test_a_large_term_may_be_cut_down_by_exclusions() -> None:
    policy = TargetPolicy.from_entries(["10.0.0.0/8"], max_hosts=100)
    hosts = expand_targets("10.0.0.0/24 !10.0.0.0/25 !10.0.0.128/26", policy)
    assert (len(hosts), hosts[0], hosts[-1]) == (63, "10.0.0.192", "10.0.0.254")


@given(st.integers(0, 255), st.integers(0, 255), st.integers(0, 255))
def test_last_octet_range_matches_ipaddress(third: int, first: int, last: int) -> None:
    start, end = sorted((first, last))
    hosts = expand_targets(f"10.0.{third}.{start}-{end}", OPEN)
    expected = [str(ipaddress.IPv4Address(f"10.0.{third}.0") + i) for i in range(start, end + 1)]
    assert hosts == expected


ipv4 = st.integers(int(ipaddress.IPv4Address("10.0.0.0")), int(ipaddress.IPv4Address("10.0.3.255"))).map(
    lambda n: str(ipaddress.IPv4Address(n))
)


@given(st.lists(ipv4, min_size=1, max_size=60), st.lists(ipv4, max_size=20))
def test_result_is_sorted_unique_and_respects_exclusions(include: list[str], exclude: list[str]) -> None:
    expression = " ".join(include + [f"!{h}" for h in exclude])
    wanted = set(include) - set(exclude)
    if not wanted:
        with pytest.raises(TargetError):
            expand_targets(expression, OPEN)
        return
    hosts = expand_targets(expression, OPEN)
    assert set(hosts) == wanted
    assert len(hosts) == len(set(hosts))
    assert hosts == sorted(hosts, key=lambda h: int(ipaddress.IPv4Address(h)))


@given(st.sets(ipv4, min_size=1, max_size=80))
def test_folded_expression_expands_back_to_the_same_hosts(hosts: set[str]) -> None:
    assert set(expand_targets(targets_expression(hosts), OPEN)) == hosts


def test_node_sets_expand_like_clustershell() -> None:
    names = TargetPolicy.from_entries(
        ["*.example.com", "10.0.0.0/24", *[f"web{n:02d}" for n in range(1, 21)]]
    )
    assert expand_targets("web[01-03]", names) == ["web01", "web02", "web03"]
    assert expand_targets("10.0.0.[1-3,42]", names) == ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.42"]
    assert expand_targets("n[1-2]-[a,b].example.com", names) == [
        "n1-a.example.com",
        "n1-b.example.com",
        "n2-a.example.com",
        "n2-b.example.com",
    ]
    assert expand_targets("web[01-20],!web[02-19] 10.0.0.5", names) == ["10.0.0.5", "web01", "web20"]


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("web[a-c]", "not a number, a range of numbers or a word"),
        ("web[3-1]", "ends before it starts"),
        ("web[1-2", "brackets hold numbers"),
        ("10.0.0.[1-300]", "10.0.0.256: not a valid IP address"),
        ("@role", "a label selector is @key=value"),
    ],
)
def test_bad_node_sets_and_selectors_are_named(expression: str, reason: str) -> None:
    with pytest.raises(TargetError) as caught:
        expand_targets(expression, TargetPolicy.from_entries(["0.0.0.0/0"]), labels=lambda k, v: [])
    assert reason in str(caught.value) and caught.value.term == expression


def test_hosts_sort_naturally_addresses_first() -> None:
    assert sort_hosts(["web10", "127.0.0.10", "web2", "127.0.0.2", "db1", "::1"]) == [
        "127.0.0.2",
        "127.0.0.10",
        "::1",
        "db1",
        "web2",
        "web10",
    ]


def test_label_selectors_ask_the_lookup_and_combine_with_exclusions() -> None:
    policy = TargetPolicy.from_entries(["127.0.0.0/8"])
    online = {("role", "web"): ["127.0.0.2", "127.0.0.3"], ("dc", "eu"): ["127.0.0.3"]}
    hosts = expand_targets(
        "@role=web,!@dc=eu,127.0.0.9", policy, lambda key, value: online.get((key, value), [])
    )
    assert hosts == ["127.0.0.2", "127.0.0.9"]
    with pytest.raises(TargetError, match="not available here"):
        expand_targets("@role=web", policy)  # a worker resolves nothing: the gateway did
    with pytest.raises(TargetError, match="outside the allowed"):
        expand_targets("@role=web", policy, lambda key, value: ["10.0.0.1"])


def test_known_hosts_names_stand_for_their_addresses_excluded_and_in_node_sets_too() -> None:
    known = {"vm": "127.0.0.1", "web1": "127.0.0.11", "web2": "127.0.0.12", "db1": "db1"}
    named = KnownAddresses(known.get)
    assert expand_targets("vm", LOOPBACK, addresses=named) == ["127.0.0.1"]
    assert named.names == {"127.0.0.1": "vm"}
    assert expand_targets("web[1-2],127.0.0.20,!web1", LOOPBACK, addresses=named) == [
        "127.0.0.12",
        "127.0.0.20",
    ]
    # A host whose address is its name, or an unknown name, stays a name (and the allowlist says).
    plain = KnownAddresses(known.get)
    assert expand_targets("db1", OPEN, addresses=plain) == ["db1"] and not plain.used
    with pytest.raises(TargetError, match="elsewhere is outside the allowed targets"):
        expand_targets("elsewhere", LOOPBACK, addresses=plain)
    # The allowlist is checked on the address the name stands for.
    with pytest.raises(TargetError, match=r"10\.0\.0\.5 is outside the allowed targets"):
        expand_targets("far", LOOPBACK, addresses=KnownAddresses({"far": "10.0.0.5"}.get))


def test_labels_parse_from_the_setting() -> None:
    assert parse_labels("role=web, dc=eu-west,zone=a:b/c") == {
        "role": "web",
        "dc": "eu-west",
        "zone": "a:b/c",
    }
    assert parse_labels("") == {}
    with pytest.raises(ValueError, match="'role' is not key=value"):
        parse_labels("role")


@given(
    st.sets(st.integers(min_value=1, max_value=254), min_size=1, max_size=40),
    st.sets(st.integers(min_value=0, max_value=120), max_size=40),
    st.sampled_from([1, 2, 3]),
)
def test_what_fleetdeck_prints_as_a_host_set_is_valid_input(
    octets: set[int], numbers: set[int], width: int
) -> None:
    hosts = [f"127.0.0.{o}" for o in octets] + [f"web{n:0{width}d}" for n in numbers]
    policy = TargetPolicy.from_entries(
        ["127.0.0.0/8", *{h for h in hosts if h.startswith("web")}], max_hosts=500
    )
    assert expand_targets(fold_hosts(hosts), policy) == sort_hosts(hosts)


def test_hostile_expressions_are_refused_without_listing_them() -> None:
    """1,024 distinct /18 networks (15 KB of text) once took 30 s and 1.8 GB; the budget refuses it."""
    policy = TargetPolicy.from_entries(["10.0.0.0/8"])
    many = ",".join(f"10.{n // 4}.{(n % 4) * 64}.0/18" for n in range(1024))
    with pytest.raises(TargetError, match="more than 1024 hosts"):
        expand_targets(many, policy)
    with pytest.raises(TargetError, match="too many to expand"):
        expand_targets(
            ",".join(["10.0.0.0/18"] * 1024), TargetPolicy.from_entries(["10.0.0.0/8"], max_hosts=100)
        )
    with pytest.raises(TargetError, match="too many addresses"):  # many small terms add up
        expand_targets(
            ",".join(["10.0.0.1"] * 2000), TargetPolicy.from_entries(["10.0.0.0/8"], max_hosts=100)
        )
    # Huge exclusions cost nothing: they are spans, not lists.
    everywhere = TargetPolicy.from_entries(["0.0.0.0/0"])
    assert expand_targets("192.168.0.1,10.0.0.1,!0.0.0.0/1", everywhere) == ["192.168.0.1"]


def test_exclusions_as_spans_still_remove_exactly_their_addresses() -> None:
    policy = TargetPolicy.from_entries(["10.0.0.0/8"])
    assert expand_targets("10.0.0.1-10,!10.0.0.4-6,!10.0.0.9", policy) == [
        f"10.0.0.{n}" for n in (1, 2, 3, 7, 8, 10)
    ]
    assert expand_targets("10.0.0.0/29,!10.0.0.0/30", policy) == ["10.0.0.4", "10.0.0.5", "10.0.0.6"]
    with pytest.raises(TargetError, match="no hosts left"):
        expand_targets("10.0.0.1-3,!10.0.0.0/8", policy)


@given(
    st.from_regex(r"[a-z]{1,6}", fullmatch=True),
    st.integers(0, 500),
    st.integers(0, 40),
    st.integers(1, 4),
    st.lists(st.from_regex(r"[a-z]{1,3}", fullmatch=True), min_size=1, max_size=4, unique=True),
)
def test_node_sets_are_the_product_of_their_brackets_zero_padded(
    prefix: str, low: int, span: int, width: int, words: list[str]
) -> None:
    first = f"{low:0{width}d}"
    term = f"{prefix}[{first}-{low + span}]-[{','.join(words)}]"
    names = expand_nodeset(term, 100_000)
    numbers = [f"{n:0{len(first)}d}" for n in range(low, low + span + 1)]
    assert names == [f"{prefix}{n}-{w}" for n in numbers for w in words]
    with pytest.raises(TargetError, match="too many"):
        expand_nodeset(term, len(names) - 1)


@given(
    st.lists(
        st.from_regex(r"(!?[a-z0-9.@=-]{1,8}|x\[[0-9,-]{1,6}\])", fullmatch=True), min_size=1, max_size=8
    )
)
def test_terms_split_on_commas_and_spaces_but_never_inside_brackets(terms: list[str]) -> None:
    assert split_terms(" ,".join(terms)) == terms
    assert split_terms(" ".join(terms)) == terms
