"""The docs stay true to the code: every setting documented, the README's commands exist."""

from __future__ import annotations

import os
import re

from fleetdeck_agent.settings import AgentSettings
from fleetdeck_common.targets import TargetPolicy, expand_targets
from fleetdeck_gateway.settings import GatewaySettings
from fleetdeck_worker.settings import WorkerSettings
from testbed.procs import ROOT


def test_every_setting_is_documented_in_the_deploy_guide() -> None:
    guide = (ROOT / "docs" / "deploy.md").read_text()
    for model in (AgentSettings, GatewaySettings, WorkerSettings):
        for field in model.model_fields.values():
            assert f"`{field.validation_alias}" in guide or f"{field.validation_alias}`" in guide, (
                field.validation_alias
            )


def test_readme_commands_exist_and_are_executable() -> None:
    readme = (ROOT / "README.md").read_text()
    for script in set(re.findall(r"scripts/[a-z-]+", readme)):
        assert os.access(ROOT / script, os.X_OK), script
    assert "scripts/test" in readme and "scripts/up" in readme and "docker compose up" in readme


def test_vendored_versions_match_the_pins() -> None:
    import json

    pins = json.loads((ROOT / "web" / "package.json").read_text())["dependencies"]
    recorded = (ROOT / "web" / "vendor" / "VERSIONS").read_text()
    for name, version in pins.items():
        assert f"{name} {version} " in recorded
    page = (ROOT / "web" / "index.html").read_text() + (ROOT / "web" / "login.html").read_text()
    assert not re.search(r"""(src|href)=["']https?://""", page), (
        "the dashboard must load nothing from the internet"
    )


def test_every_test_the_security_page_names_exists() -> None:
    """docs/security.md proves each control with named tests: they must exist under those names."""
    page = (ROOT / "docs" / "security.md").read_text()
    named: set[tuple[str, str | None]] = set()
    for path, function in re.findall(r"`(tests/[\w/]+\.py)(?:::(\w+))?`", page):
        named.add((path, function or None))
    for path, inside in re.findall(r"`(tests/[\w/]+\.py)` \(([^)]*)\)", page):
        named.update((path, function) for function in re.findall(r"`(test_\w+)`", inside))
    assert len(named) > 50
    for path, function in sorted(named, key=str):
        source = ROOT / path
        assert source.is_file(), f"docs/security.md names {path}, which does not exist"
        if function is not None:
            assert re.search(rf"def {function}\(", source.read_text()), f"{path} has no {function}"


def test_every_target_example_in_the_readme_expands() -> None:
    """The README's target grammar paragraph: each example it gives is accepted as written."""
    readme = (ROOT / "README.md").read_text()
    paragraph = readme[readme.index("Target expressions:") :].split("\n\n", 1)[0]
    examples = [e for e in re.findall(r"`([^`]+)`", paragraph) if not e.startswith(("FLEETDECK_", "'", "!"))]
    assert {"web[01-20]", "db[1-3]-[a,b]", "@role=db"} <= set(examples), examples

    class Anywhere(TargetPolicy):
        def allows(self, host: str) -> bool:
            return True  # the grammar is under test here, not the allowlist

    for example in examples:
        hosts = expand_targets(example, Anywhere(), labels=lambda key, value: ["10.9.9.9"])
        assert hosts, example


def test_every_quoted_benchmark_block_is_closed_before_the_next_opens() -> None:
    """bench/harness.py replaces a block up to the next `<!-- /bench -->`: an unclosed one would
    swallow the next section the next time its benchmark runs."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    for page in pages:
        open_block = None
        for number, line in enumerate(page.read_text().splitlines(), 1):
            opened = re.fullmatch(r"<!-- bench:([\w-]+) -->", line)
            if opened:
                assert open_block is None, f"{page.name}:{number} opens {opened[1]} inside {open_block}"
                open_block = opened[1]
            elif line == "<!-- /bench -->":
                assert open_block is not None, f"{page.name}:{number} closes a block never opened"
                open_block = None
        assert open_block is None, f"{page.name}: {open_block} is never closed"
