"""A rule's summary template: `{host}`, `{value}` and `{rule}` substituted, nothing else. Pure.

Never `str.format`: a rules file is not trusted to reach attributes through format specs.
`{{` and `}}` stand for literal braces.
"""

from __future__ import annotations

import re

PLACEHOLDERS = ("host", "value", "rule")
DEFAULT_SUMMARY = "{rule} on {host}"
MAX_SUMMARY_CHARS = 1000

_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


def check_template(template: str) -> None:
    """ValueError naming an unknown placeholder or a stray brace."""
    if len(template) > MAX_SUMMARY_CHARS:
        raise ValueError(f"is longer than {MAX_SUMMARY_CHARS} characters")
    for match in _TOKEN.finditer(template):
        token = match.group(0)
        if token in ("{{", "}}"):
            continue
        name = match.group(1)
        if name is None:
            raise ValueError(f"has a lone {token!r} (write {token * 2} for a literal brace)")
        if name not in PLACEHOLDERS:
            raise ValueError(f"unknown placeholder {{{name}}}; use {{host}}, {{value}} or {{rule}}")


def format_value(value: float | None) -> str:
    """A metric's value as a summary shows it: `97.3`, `8`, `120000000`; empty for none."""
    if value is None:
        return ""
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.2f}".rstrip("0").rstrip(".")


def render(template: str, rule: str, host: str, value: float | None) -> str:
    """The summary for one alert; the template must have passed `check_template`."""
    values = {"host": host, "value": format_value(value), "rule": rule}

    def substitute(match: re.Match[str]) -> str:
        token = match.group(0)
        if token in ("{{", "}}"):
            return token[0]
        return values.get(match.group(1) or "", token)

    return _TOKEN.sub(substitute, template)
