"""The alert rules file (`FLEETDECK_ALERT_RULES`), YAML, parsed and checked. Pure.

```yaml
rules:
  - name: cpu-hot            # letters, digits, _ . : - (at most 64); unique in the file
    expr: total > 90         # METRIC OP NUMBER, or `offline`
    for: 5m                  # how long the condition must hold (30s, 5m, 1h, 1h30m; default 0s)
    targets: "@role=web"     # a target expression (default: every known host)
    severity: critical       # info | warning | critical (default warning)
    summary: "{host} at {value}% CPU"   # {host} {value} {rule} (default "{rule} on {host}")
```

METRIC is one of `total`, `mem`, `disk` (percent), `load1`, `net_rx`, `net_tx` (bytes/s); OP one
of `>`, `>=`, `<`, `<=`; NUMBER any finite number (`1e8`). In `targets`, `@key=value` also
matches offline hosts, and `@alert=…` is not allowed. Every error is one sentence naming the rule
(by name, or by its place in the list when it has none) and the field.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..messages import Severity
from ..targets import TargetError, expand_term, split_terms
from ..targets.labels import ALERT_KEY, SELECTOR
from ..targets.terms import address_span
from .expr import Condition, parse_duration, parse_expr
from .summary import DEFAULT_SUMMARY, check_template

RULE_NAME_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
MAX_RULES = 1000
MAX_FILE_BYTES = 1024 * 1024
MAX_SELECTED = 10_000  # hosts one rule's targets may name, as for history
FIELDS = ("name", "expr", "for", "targets", "severity", "summary")


class RulesError(ValueError):
    """A rules file that cannot be used; the message names the rule and the field."""


def check_targets(text: str) -> str:
    """A rule's target expression, checked term by term without listing hosts; ValueError if not."""
    terms = split_terms(text)
    if not terms:
        raise ValueError("is empty (leave it out to mean every known host)")
    for raw in terms:
        term = raw[1:] if raw.startswith("!") else raw
        try:
            if not term:
                raise TargetError(raw, "'!' must be followed by a host, range, network or label")
            selector = SELECTOR.match(term)
            if selector is not None and selector.group(1) == ALERT_KEY:
                raise TargetError(raw, "@alert=… cannot choose a rule's hosts")
            if address_span(term) is None:
                for _ in expand_term(term, MAX_SELECTED, raw != term, lambda key, value: [key]):
                    pass
        except TargetError as exc:
            raise ValueError(str(exc)) from None
    return text.strip()


class Rule(BaseModel):
    """One alert rule, checked."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = Field(pattern=RULE_NAME_PATTERN)
    expr: Condition
    for_: float = Field(0.0, alias="for")
    targets: str | None = None
    severity: Severity = "warning"
    summary: str = DEFAULT_SUMMARY

    @field_validator("expr", mode="before")
    @classmethod
    def _expr(cls, value: Any) -> Condition:
        if isinstance(value, Condition):
            return value
        if not isinstance(value, str):
            raise ValueError("must be a string such as `total > 90` or `offline`")
        return parse_expr(value)

    @field_validator("for_", mode="before")
    @classmethod
    def _for(cls, value: Any) -> float:
        if not isinstance(value, str | int | float):
            raise ValueError("must be a duration such as 30s, 5m or 1h")
        return parse_duration(value)

    @field_validator("targets", mode="before")
    @classmethod
    def _targets(cls, value: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise ValueError("must be a target expression (a string)")
        return check_targets(value)

    @field_validator("summary", mode="before")
    @classmethod
    def _summary(cls, value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError("must be a string")
        check_template(value)
        return value

    def describe(self) -> dict[str, Any]:
        """The rule as `GET /api/alerts/rules` shows it."""
        return {
            "name": self.name,
            "expr": str(self.expr),
            "for": self.for_,
            "targets": self.targets,
            "severity": self.severity,
            "summary": self.summary,
        }


def _reason(exc: ValidationError) -> tuple[str, str]:
    """The first error as (field, why), in the words of the rules file."""
    err = exc.errors()[0]
    field = str(err["loc"][0]) if err["loc"] else "rule"
    if err["type"] == "extra_forbidden":
        return field, f"unknown field (fields: {', '.join(FIELDS)})"
    if err["type"] == "missing":
        return field, "is missing"
    if field == "name" and err["type"] == "string_pattern_mismatch":
        return field, "must be 1 to 64 letters, digits, _ . : or -"
    if field == "severity":
        return field, f"{err.get('input')!r} is not one of info, warning, critical"
    return field, err["msg"].removeprefix("Value error, ")


def _rule(index: int, raw: object) -> Rule:
    where = f"rule {index + 1}"
    if not isinstance(raw, dict):
        raise RulesError(f"{where}: must be a mapping with name, expr and the other fields")
    name = raw.get("name")
    if isinstance(name, str) and name:
        where = f"rule {name!r}"
    try:
        return Rule.model_validate(raw)
    except ValidationError as exc:
        field, why = _reason(exc)
        raise RulesError(f"{where}: {field}: {why}") from None


def parse_rules(text: str) -> list[Rule]:
    """The rules a rules file holds, in order; RulesError naming the rule and field if any is wrong."""
    if len(text.encode()) > MAX_FILE_BYTES:
        raise RulesError(f"the rules file is larger than {MAX_FILE_BYTES // 1024} KiB")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "malformed"
        raise RulesError(f"the rules file is not valid YAML{at}: {problem}") from None
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
        raise RulesError("the rules file must be a mapping with `rules:`, a list of rules")
    unknown = sorted(str(k) for k in data if k != "rules")
    if unknown:
        raise RulesError(f"the rules file: unknown top-level field {unknown[0]!r} (only `rules`)")
    listed: Sequence[object] = data["rules"]
    if len(listed) > MAX_RULES:
        raise RulesError(f"the rules file holds {len(listed)} rules; at most {MAX_RULES} are allowed")
    rules: list[Rule] = []
    seen: set[str] = set()
    for index, raw in enumerate(listed):
        rule = _rule(index, raw)
        if rule.name in seen:
            raise RulesError(f"rule {index + 1}: name: {rule.name!r} is used by an earlier rule too")
        seen.add(rule.name)
        rules.append(rule)
    return rules
