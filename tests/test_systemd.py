"""deploy/systemd's agent unit: the agent's Redis URL comes from a root-only file, never the environment."""

from __future__ import annotations

from tests.support.compose import ROOT

UNIT = ROOT / "deploy" / "systemd" / "fleetdeck-agent.service"


def _service() -> dict[str, list[str]]:
    """The [Service] section, every value of a repeated key in order."""
    values: dict[str, list[str]] = {}
    section = ""
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line
        elif section == "[Service]":
            key, value = line.split("=", 1)
            values.setdefault(key, []).append(value)
    return values


def test_the_agent_unit_reads_its_url_from_a_root_only_file_as_a_credential() -> None:
    service = _service()
    # systemd (root) reads the file and gives it to this service only: the agent's dynamic user
    # could not read /etc/fleetdeck/agent.url (mode 0600, root) itself.
    assert service["DynamicUser"] == ["yes"]
    assert service["LoadCredential"] == ["redis-url:/etc/fleetdeck/agent.url"]
    assert "REDIS_URL_FILE=%d/redis-url" in service["Environment"]
    assert not any(value.startswith("REDIS_URL=") for value in service["Environment"])
    assert service["EnvironmentFile"] == ["-/etc/fleetdeck/agent.env"]  # optional, other settings only
    assert "install -D -m 0600 -o root -g root agent.url /etc/fleetdeck/agent.url" in UNIT.read_text()
    assert "://" not in "".join(v for values in service.values() for v in values)  # no URL inline
