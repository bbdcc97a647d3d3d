"""Frames about the fleet's hosts: `hosts` (presence, labels, addresses) and `fleet` (every host's
latest summary). Pure."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .outbound import Frame, Labels


class HostInfo(Frame):
    host: str
    online: bool
    last_seen: float
    cpus: int
    labels: Labels = Field(default_factory=dict)
    address: str = ""  # how the exec worker reaches it over SSH


class FleetHost(Frame):
    """One host in a `fleet` frame: the latest summary, not the samples."""

    host: str
    online: bool
    total: float | None
    mem: float | None
    load1: float | None
    labels: Labels
    disk: float | None = None


class Fleet(Frame):
    type: Literal["fleet"] = "fleet"
    ts: float
    full: bool  # every known host (the first frame after subscribing), else only those that changed
    hosts: list[FleetHost]


class Hosts(Frame):
    type: Literal["hosts"] = "hosts"
    hosts: list[HostInfo]
    # For a client following with `hosts_format: "changes"` (v1.2): true on the whole list; false
    # when `hosts` holds only the hosts that changed and `gone` the ones forgotten since.
    full: bool | None = None
    gone: list[str] | None = None
