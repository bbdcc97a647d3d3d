"""Read docker-compose.yml and the Dockerfiles the way Docker would, to run their services locally."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
_VARIABLE = re.compile(r"\$\{([A-Z0-9_]+)(?::?-([^}]*))?\}")


def substitute(value: str, env: dict[str, str]) -> str:
    """Compose's `${VAR:-default}` interpolation."""
    return _VARIABLE.sub(lambda m: env.get(m.group(1)) or (m.group(2) or ""), value)


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
