"""The alert rules file, pure: every field parsed, every mistake one sentence naming the rule and field."""

from __future__ import annotations

import pytest

from fleetdeck_common.alerts.expr import Condition, parse_duration, parse_expr
from fleetdeck_common.alerts.rules import Rule, RulesError, parse_rules
from fleetdeck_common.alerts.summary import render

GOOD = """
rules:
  - name: cpu-hot
    expr: total > 90
    for: 5m
    targets: "@role=web !web-3"
    severity: critical
    summary: "{host} at {value}% CPU ({rule})"
  - name: agent-gone
    expr: offline
  - name: busy-net
    expr: net_rx >= 1e8
    for: 1h30m
"""


def _error(text: str) -> str:
    with pytest.raises(RulesError) as caught:
        parse_rules(text)
    return str(caught.value)


def _one(fields: str) -> str:
    return _error("rules:\n  - " + fields.replace("\n", "\n    "))


def test_a_good_file_gives_its_rules_in_order_with_defaults() -> None:
    cpu, gone, net = parse_rules(GOOD)
    assert cpu.name == "cpu-hot" and cpu.expr == Condition("total", ">", 90.0) and cpu.for_ == 300
    assert cpu.targets == "@role=web !web-3" and cpu.severity == "critical"
    assert gone.expr.offline and gone.for_ == 0 and gone.targets is None
    assert gone.severity == "warning" and gone.summary == "{rule} on {host}"
    assert net.expr == Condition("net_rx", ">=", 1e8) and net.for_ == 5400
    assert cpu.describe()["expr"] == "total > 90" and net.describe()["expr"] == "net_rx >= 1e+08"
    assert parse_rules("rules: []") == []


@pytest.mark.parametrize(
    ("text", "condition"),
    [
        ("total>90", Condition("total", ">", 90)),
        ("mem <= 10.5", Condition("mem", "<=", 10.5)),
        ("load1 < 0.5", Condition("load1", "<", 0.5)),
        ("disk >= 95", Condition("disk", ">=", 95)),
        ("net_tx > 1e8", Condition("net_tx", ">", 1e8)),
        (" offline ", Condition(None)),
    ],
)
def test_expressions(text: str, condition: Condition) -> None:
    assert parse_expr(text) == condition


def test_conditions_compare_as_written() -> None:
    assert Condition("total", ">", 90).holds(90.5) and not Condition("total", ">", 90).holds(90)
    assert Condition("total", ">=", 90).holds(90) and Condition("mem", "<", 5).holds(4.9)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("0s", 0), ("30s", 30), ("5m", 300), ("1h", 3600), ("1h30m", 5400), ("2d", 172800), (15, 15)],
)
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ("name: a\nexpr: cpu > 90", "rule 'a': expr: unknown metric 'cpu'; one of total, mem, load1"),
        ("name: a\nexpr: total => 90", "rule 'a': expr: bad operator '=>'; one of >, >=, <, <="),
        ("name: a\nexpr: total == 90", "rule 'a': expr: bad operator '=='"),
        ("name: a\nexpr: total > lots", "rule 'a': expr: 'lots' is not a number"),
        ("name: a\nexpr: total > nan", "rule 'a': expr: 'nan' is not a finite number"),
        ("name: a\nexpr: 90", "rule 'a': expr: must be a string"),
        ("name: a\nexpr: offline\nfor: 5 minutes", "rule 'a': for: '5 minutes' is not a duration"),
        ("name: a\nexpr: offline\nfor: -5s", "rule 'a': for: '-5s' is not a duration"),
        ("name: a\nexpr: offline\nfor: 90d", "rule 'a': for: '90d' is out of range"),
        (
            "name: a\nexpr: offline\ntargets: 10.0.0.1-300",
            "rule 'a': targets: '10.0.0.1-300': last octet 300",
        ),
        ("name: a\nexpr: offline\ntargets: 'web[01-'", "rule 'a': targets:"),
        (
            "name: a\nexpr: offline\ntargets: '@role'",
            "rule 'a': targets: '@role': a label selector is @key=value",
        ),
        ("name: a\nexpr: offline\ntargets: '@alert=b'", "rule 'a': targets: '@alert=b': @alert=… cannot"),
        ("name: a\nexpr: offline\ntargets: ''", "rule 'a': targets: is empty"),
        (
            "name: a\nexpr: offline\nseverity: page",
            "rule 'a': severity: 'page' is not one of info, warning, critical",
        ),
        (
            "name: a\nexpr: offline\nsummary: '{host.__class__}'",
            "rule 'a': summary: unknown placeholder {host.__class__}",
        ),
        ("name: a\nexpr: offline\nsummary: '{value:>{host}}'", "rule 'a': summary: "),
        ("name: a\nexpr: offline\nsummary: 'a { b'", "rule 'a': summary: has a lone '{'"),
        (
            "name: a\nexpr: offline\nlabels: {x: y}",
            "rule 'a': labels: unknown field (fields: name, expr, for",
        ),
        ("expr: offline", "rule 1: name: is missing"),
        ("name: a", "rule 'a': expr: is missing"),
        ("name: 'a b'\nexpr: offline", "rule 'a b': name: must be 1 to 64 letters"),
    ],
)
def test_each_mistake_is_one_sentence_naming_the_rule_and_field(fields: str, expected: str) -> None:
    assert _one(fields).startswith(expected)


def test_file_level_mistakes() -> None:
    assert "used by an earlier rule" in _error(
        "rules:\n- {name: a, expr: offline}\n- {name: a, expr: offline}"
    )
    assert _error("rules:\n- {name: a, expr: offline}\n- {name: a, expr: offline}").startswith(
        "rule 2: name:"
    )
    assert _error("").startswith("the rules file must be a mapping with `rules:`")
    assert _error("rules: {a: 1}").startswith("the rules file must be a mapping")
    assert _error("rules: []\nextra: 1") == "the rules file: unknown top-level field 'extra' (only `rules`)"
    assert _error("rules: [\n").startswith("the rules file is not valid YAML at line")
    assert (
        _error("rules:\n- just-a-string") == "rule 1: must be a mapping with name, expr and the other fields"
    )
    assert "not valid YAML" in _error("!!python/object:os.system {}")


def test_summaries_substitute_the_three_names_only() -> None:
    assert (
        render("{host} at {value}% ({rule}) {{literal}}", "cpu", "web-1", 97.25)
        == "web-1 at 97.25% (cpu) {literal}"
    )
    assert render("{rule} on {host}", "gone", "db-1", None) == "gone on db-1"
    assert render("{value}", "r", "h", 1e8) == "100000000" and render("{value}", "r", "h", 0.5) == "0.5"


def test_a_rule_is_frozen_and_model_validated() -> None:
    rule = Rule.model_validate({"name": "x", "expr": "disk > 95", "for": "30s"})
    assert rule.for_ == 30 and rule.expr.metric == "disk"
