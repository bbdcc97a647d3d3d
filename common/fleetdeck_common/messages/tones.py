"""How each host status looks to a person: a tone the terminal and the dashboard colour. Pure."""

from __future__ import annotations

from typing import Literal

from .values import HostStatus

Tone = Literal["good", "bad", "slow", "unreachable", "muted"]

# How each status looks to a person (colours in the terminal and on the dashboard).
STATUS_TONES: dict[HostStatus, Tone] = {
    "ok": "good",
    "failed": "bad",
    "error": "bad",
    "timeout": "slow",
    "lost": "slow",
    "unreachable": "unreachable",
    "auth_failed": "unreachable",
    "cancelled": "muted",
}
