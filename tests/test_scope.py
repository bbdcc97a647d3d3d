"""Token scopes: a host is inside when the expression, as exec targets, would include it; wide
scopes cost nothing; terms that cannot bound a token are refused with the reason."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleetdeck_common.scope import parse_scope
from fleetdeck_common.targets import TargetError, TargetPolicy, expand_targets


def test_a_scope_holds_what_its_expression_names() -> None:
    scope = parse_scope("10.0.0.0/24 web[01-20],!web07 !10.0.0.7 *.db.example.net 10.1.0.250-10.1.1.5")
    assert scope.expression == "10.0.0.0/24,web[01-20],!web07,!10.0.0.7,*.db.example.net,10.1.0.250-10.1.1.5"
    inside = ["10.0.0.1", "10.0.0.254", "web01", "web20", "a.db.example.net", "10.1.0.255", "10.1.1.5"]
    outside = ["10.0.0.0", "10.0.0.255", "10.0.0.7", "web07", "web21", "db.example.net", "10.1.1.6", "web1"]
    assert [h for h in inside if not scope.allows(h)] == []
    assert [h for h in outside if scope.allows(h)] == []
    assert scope.first_outside(["10.0.0.1", "10.0.0.9", "8.8.8.8"]) == "8.8.8.8"
    with pytest.raises(TargetError, match=r"8\.8\.8\.8 is outside this token's targets"):
        scope.check(["10.0.0.1", "8.8.8.8"])


def test_ipv6_and_wide_scopes_are_spans_not_lists() -> None:
    scope = parse_scope("10.0.0.0/8,[fd00::1],fd00:1::/64")
    assert scope.allows("10.200.3.4") and not scope.allows("11.0.0.1")
    assert scope.allows("fd00::1") and scope.allows("fd00:1::ffff") and not scope.allows("fd00::2")


@pytest.mark.parametrize(
    ("expression", "fragment"),
    [
        ("@role=db", "labels"),
        ("10.0.0.1-300", "last octet 300 is more than 255"),
        ("127.0.0.1-²", "range end .* is not an address or a last octet"),
        ("10.0.0.9-10.0.0.2", "ends"),
        ("10.0.0.0/33", "not a valid CIDR"),
        ("web[1-", "brackets"),
        ("bad_name", "not an address"),
        ("!10.0.0.1", "at least one host"),
        ("", "at least one host"),
        ("*.", "domain"),
        ("x" * 5000, "at most"),
    ],
)
def test_terms_that_cannot_bound_a_token_are_refused(expression: str, fragment: str) -> None:
    with pytest.raises(TargetError, match=fragment):
        parse_scope(expression)


_TERMS = st.one_of(
    st.integers(0, 255).map(lambda n: f"10.0.0.{n}"),
    st.tuples(st.integers(0, 255), st.integers(0, 255)).map(lambda p: f"10.0.0.{min(p)}-{max(p)}"),
    st.integers(26, 32).map(lambda bits: f"10.0.0.{64 if bits < 32 else 77}/{bits}"),
    st.tuples(st.integers(1, 9), st.integers(1, 9)).map(lambda p: f"web[{min(p)}-{max(p)}]"),
    st.integers(1, 9).map(lambda n: f"web{n}"),
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(_TERMS, min_size=1, max_size=4),
    st.lists(_TERMS, max_size=2),
)
def test_inside_the_scope_means_inside_what_the_expression_expands_to(
    included: list[str], excluded: list[str]
) -> None:
    expression = ",".join(included + [f"!{term}" for term in excluded])
    names = [f"web{n}" for n in range(10)]
    policy = TargetPolicy((ipaddress.ip_network("10.0.0.0/24"),), tuple(names), max_hosts=4096)
    try:
        expanded = set(expand_targets(expression, policy))
    except TargetError:
        expanded = set()  # nothing left after the exclusions
    scope = parse_scope(expression)
    everything = [f"10.0.0.{n}" for n in range(256)] + names
    assert {h for h in everything if scope.allows(h)} == expanded
