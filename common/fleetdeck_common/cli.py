"""Build an argparse CLI from a settings model: every field is a flag and names its variable."""

from __future__ import annotations

import argparse
import re
from collections.abc import Collection, Sequence
from typing import Any, TypeVar

from pydantic import ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

from . import __version__

S = TypeVar("S", bound=BaseSettings)


# "(default: the agent name)" in a field's description: what the default means, when its value
# alone (None, a factory) would not say it.
_DEFAULT_NOTE = re.compile(r"\s*\(default:?\s+([^()]+)\)")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_version_argument(parser: argparse.ArgumentParser) -> None:
    """`-V` / `--version`: the program and the version every fleetdeck project is built with."""
    parser.add_argument("-V", "--version", action="version", version=f"%(prog)s {__version__}")


def _shown(value: Any) -> str:
    if value is None:
        return "not set"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items()) or "none"
    if isinstance(value, list | tuple | set):
        return ",".join(str(v) for v in value) or "none"
    return str(value)


def describe_setting(name: str, info: FieldInfo) -> tuple[str, str]:
    """A field's description and its default as `--help` shows them: the description's own
    "(default: ...)" note when it has one, else the value (a factory's is worked out now)."""
    description = info.description or name
    note = _DEFAULT_NOTE.search(description)
    if note:
        return description[: note.start()] + description[note.end() :], note.group(1).strip()
    if info.default_factory is None:
        return description, _shown(info.default)
    try:
        return description, _shown(info.get_default(call_default_factory=True))
    except Exception:  # a factory that fails here fails at start too, with the settings' message
        return description, "worked out at start"


def add_settings_arguments(
    parser: argparse.ArgumentParser, model: type[BaseSettings], exclude: Collection[str] = ()
) -> None:
    """One option per settings field, documenting its environment variable and default.

    The placeholder is the field's name (`--port PORT`); the variable is named in the help text."""
    for name, info in model.model_fields.items():
        if name in exclude:
            continue
        env = info.validation_alias if isinstance(info.validation_alias, str) else name.upper()
        description, default = describe_setting(name, info)
        help_text = f"{description} [env {env}; default: {default}]".replace("%", "%%")
        if info.annotation is bool:
            parser.add_argument(
                _flag(name),
                dest=name,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=help_text,
            )
        else:
            parser.add_argument(_flag(name), dest=name, default=None, metavar=name.upper(), help=help_text)


def load_settings(model: type[S], args: argparse.Namespace, parser: argparse.ArgumentParser) -> S:
    """Settings from the environment, overridden by the flags given; bad values exit with a clear message."""
    overrides: dict[str, Any] = {
        name: getattr(args, name) for name in model.model_fields if getattr(args, name, None) is not None
    }
    try:
        return model(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else "settings"
            info = model.model_fields.get(field)
            env = info.validation_alias if info and isinstance(info.validation_alias, str) else field
            lines.append(f"{_flag(field)} / {env}: {err['msg']}")
        parser.error("invalid settings:\n  " + "\n  ".join(lines))


def parse_settings(model: type[S], prog: str, description: str, argv: Sequence[str] | None = None) -> S:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    add_version_argument(parser)
    add_settings_arguments(parser, model)
    args = parser.parse_args(argv)
    return load_settings(model, args, parser)
