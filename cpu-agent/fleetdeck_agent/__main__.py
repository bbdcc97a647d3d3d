"""`fleetdeck-agent`: one CPU agent."""

from __future__ import annotations

from collections.abc import Sequence

from fleetdeck_common.service import service_main
from fleetdeck_common.settings import AgentSettings

from .agent import run_agent


def main(argv: Sequence[str] | None = None) -> None:
    service_main(
        AgentSettings,
        "fleetdeck-agent",
        "Publish this host's CPU, memory and load to the fleetdeck broker every interval.",
        run_agent,
        # Healthy while a sample was published within three intervals.
        lambda s: (s.health_file, max(3 * s.interval, 5.0)),
        argv,
    )


if __name__ == "__main__":
    main()
