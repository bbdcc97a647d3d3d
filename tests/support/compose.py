"""Read docker-compose.yml (with deploy/compose.sentinel.yml on top) and the Dockerfiles the way
Docker would, to run their services locally."""

from __future__ import annotations

import json
import posixpath
import re
import shlex
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
SENTINEL_FILE = ROOT / "deploy" / "compose.sentinel.yml"  # -f docker-compose.yml -f this
_VARIABLE = re.compile(r"\$\{([A-Z0-9_]+)(?::?-([^}]*))?\}")


def substitute(value: str, env: dict[str, str]) -> str:
    """Compose's `${VAR:-default}` interpolation."""
    return _VARIABLE.sub(lambda m: env.get(m.group(1)) or (m.group(2) or ""), value)


def compose_variables() -> set[str]:
    """Every `${VAR}` docker-compose.yml interpolates (a shell's value of one overrides an env file's)."""
    return {match.group(1) for match in _VARIABLE.finditer(COMPOSE_FILE.read_text())}


def load_compose(env: dict[str, str] | None = None) -> dict[str, Any]:
    text = substitute((ROOT / "docker-compose.yml").read_text(), env or {})
    data: dict[str, Any] = yaml.safe_load(text)
    return data


@dataclass
class Dockerfile:
    path: Path
    base: str = ""
    env: dict[str, str] = field(default_factory=dict)
    copies: list[str] = field(default_factory=list)
    user: str | None = None
    cmd: list[str] | str | None = None
    healthcheck: str | None = None


def parse_dockerfile(path: Path) -> Dockerfile:
    out = Dockerfile(path)
    text = re.sub(r"\\\n\s*", " ", path.read_text())
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, rest = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            out.base = rest.split()[0]
        elif instruction == "ENV":
            for pair in shlex.split(rest):
                key, _, value = pair.partition("=")
                out.env[key] = value
        elif instruction == "COPY":
            out.copies.extend(a for a in shlex.split(rest)[:-1] if not a.startswith("--"))
        elif instruction == "USER":
            out.user = rest.strip()
        elif instruction == "CMD":
            out.cmd = json.loads(rest) if rest.startswith("[") else rest
        elif instruction == "HEALTHCHECK":
            out.healthcheck = rest
    return out


def service_dockerfile(service: dict[str, Any]) -> Dockerfile:
    build = service["build"]
    return parse_dockerfile(ROOT / build.get("context", ".") / build["dockerfile"])


def service_environment(service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment", {})
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    return {k: "" if v is None else str(v) for k, v in environment.items()}


def compose_config(
    *files: Path, env: dict[str, str] | None = None, profiles: Sequence[str] = ()
) -> dict[str, Any]:
    """The files merged and interpolated by docker-compose itself (`config`) for a shell with `env`,
    run in the checkout (no files: docker-compose.yml, or what COMPOSE_FILE in `env` names). Like
    `docker compose config`, it leaves a `$$` in a value escaped."""
    run = subprocess.run(
        [
            "docker-compose",
            *(a for path in files for a in ("-f", str(path))),
            *(a for profile in profiles for a in ("--profile", profile)),
            "config",
        ],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
        cwd=ROOT,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    config: dict[str, Any] = yaml.safe_load(run.stdout)
    return config


def service_mounts(service: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(source, target, read-only) of each of a rendered service's volumes, short or long syntax."""
    out = []
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            out.append((str(volume.get("source", "")), volume["target"], bool(volume.get("read_only"))))
        else:
            source, target, *mode = str(volume).split(":")
            out.append((source, target, "ro" in ",".join(mode).split(",")))
    return out


def server_config(command: list[str]) -> str | None:
    """The config file of `redis-server FILE --options...`, if the command starts with one."""
    assert command and command[0] == "redis-server", command
    return command[1] if len(command) > 1 and not command[1].startswith("--") else None


def server_options(command: list[str]) -> dict[str, list[str]]:
    """`redis-server [FILE] --name value... --other value...` as {name: [values]}."""
    options: dict[str, list[str]] = {}
    name = ""
    for word in command[2 if server_config(command) else 1 :]:
        if word.startswith("--"):
            name = word[2:]
            assert name not in options, f"--{name} given twice"
            options[name] = []
        else:
            assert name, f"{word}: a value before any --option"
            options[name].append(word)
    return options


@dataclass
class SentinelCommand:
    """A sentinel service's `sh -ec SCRIPT`: the script makes a config file, then its last line
    execs `redis-sentinel CONFIG`."""

    make_config: str
    config: str
    exec_line: list[str]


def sentinel_command(service: dict[str, Any]) -> SentinelCommand:
    command = service["command"]
    assert isinstance(command, list) and command[:2] == ["sh", "-ec"], command
    # What the container's shell gets: compose turns `$$` into `$`, its `config` output does not.
    script = command[2].replace("$$", "$")
    *body, last = script.rstrip("\n").split("\n")
    exec_line = shlex.split(last)
    assert exec_line[:2] == ["exec", "redis-sentinel"] and len(exec_line) == 3, last
    return SentinelCommand("\n".join(body) + "\n", exec_line[2], exec_line)


def make_sentinel_config(service: dict[str, Any], data: Path, mounts: dict[str, Path] | None = None) -> Path:
    """Run the part of a sentinel's command that makes its config, with the container's /data
    (its volume) at `data` and its other mounts where `mounts` ({target: folder}) puts them;
    return the file it made or kept."""
    command = sentinel_command(service)
    volume = [target for _, target, _ in service_mounts(service) if command.config.startswith(target + "/")]
    assert len(volume) == 1, f"{command.config} is not on one of the service's volumes"
    data.mkdir(parents=True, exist_ok=True)
    script = command.make_config.replace(volume[0], str(data))
    for target, folder in (mounts or {}).items():
        script = script.replace(target + "/", f"{folder}/")
    run = subprocess.run(
        ["sh", "-ec", script],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", **service_environment(service)},
        timeout=30,
    )
    assert run.returncode == 0, run.stderr
    return data / command.config[len(volume[0]) + 1 :]


def read_sentinel_config(path: Path) -> list[list[str]]:
    """The directives of a sentinel config file, each as its words."""
    lines = (line.strip() for line in path.read_text().splitlines())
    return [shlex.split(line) for line in lines if line and not line.startswith("#")]


def directive(config: list[list[str]], *name: str) -> list[str]:
    """The words after `name` (e.g. "sentinel", "monitor") in the one line that starts with it."""
    found = [words[len(name) :] for words in config if tuple(words[: len(name)]) == name]
    assert len(found) == 1, f"{' '.join(name)}: {len(found)} lines"
    return found[0]


def without_option(command: list[str], option: str) -> list[str]:
    """`command` without `option` and the value after it."""
    if option not in command:
        return command
    at = command.index(option)
    return command[:at] + command[at + 2 :]


def one_shot_script(service: dict[str, Any]) -> list[list[str]]:
    """The `redis-users` one-shot's shell script (`sh -euc SCRIPT`), one word list per line."""
    command = service["command"]
    assert command[:2] == ["sh", "-euc"], command
    return [shlex.split(line) for line in command[2].splitlines() if line.strip()]


def one_shot_installs(script: list[list[str]]) -> dict[str, set[str]]:
    """Folder in the one-shot's container -> names of the files its `install` lines put there."""
    copies: dict[str, set[str]] = {}
    for line in script:
        if "install" not in line:
            continue
        # `[ ! -f FILE ] || install ...`: a copy made only when its source exists
        words = line[line.index("install") :]
        rest = words[1:]
        paths = [w for i, w in enumerate(rest) if not w.startswith("-") and rest[i - 1] not in ("-m", "-o")]
        *sources, folder = paths
        assert folder.endswith("/"), words  # copied into a folder, under the source's own name
        copies.setdefault(folder.rstrip("/"), set()).update(posixpath.basename(s) for s in sources)
    return copies


def run_one_shot(services: dict[str, Any], root: Path) -> dict[str, Path]:
    """The one-shot `redis-users` run here: its `fleetdeck redis-users` line, then its copies, each
    named volume a folder under `root` (modes and owners aside); {volume: its folder}."""
    from fleetdeck.redis_users import write_users

    one_shot = services["redis-users"]
    first, *copies = one_shot_script(one_shot)
    assert first[:2] == ["fleetdeck", "redis-users"], first
    mounts = {target: source for source, target, _ in service_mounts(one_shot)}
    folders = {source: root / source for source in mounts.values()}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    write_users(folders[mounts[first[2]]], first[first.index("--redis") + 1], "--rotate" in first)
    for target, names in one_shot_installs(copies).items():
        for name in names:
            source = folders[mounts["/secrets"]] / name
            if source.exists():  # the copies made only when their source exists
                shutil.copy2(source, folders[mounts[target]] / name)
    return folders


def local_mounts(service: dict[str, Any], volumes: dict[str, Path]) -> dict[str, Path]:
    """{target in the container: folder here} for a service's mounts of the one-shot's volumes."""
    return {target: volumes[source] for source, target, _ in service_mounts(service) if source in volumes}


def local_paths(words: list[str], mounts: dict[str, Path]) -> list[str]:
    """`words` with each path under a mount target moved to that mount's folder here."""
    out = []
    for word in words:
        moved = [str(folder / word[len(t) + 1 :]) for t, folder in mounts.items() if word.startswith(t + "/")]
        out.append(moved[0] if moved else word)
    return out
