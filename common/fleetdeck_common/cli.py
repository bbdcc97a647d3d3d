"""Build an argparse CLI from a settings model: every field is a flag and names its variable."""

from __future__ import annotations

import argparse
from collections.abc import Collection, Sequence
from typing import Any, TypeVar

from pydantic import ValidationError
from pydantic_settings import BaseSettings

S = TypeVar("S", bound=BaseSettings)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_settings_arguments(
    parser: argparse.ArgumentParser, model: type[BaseSettings], exclude: Collection[str] = ()
) -> None:
    """One option per settings field, documenting its environment variable and default."""
    for name, info in model.model_fields.items():
        if name in exclude:
            continue
        env = info.validation_alias if isinstance(info.validation_alias, str) else name.upper()
        default = "computed" if info.default_factory is not None else info.default
        help_text = f"{info.description or name} [env {env}; default: {default}]"
        if info.annotation is bool:
            parser.add_argument(
                _flag(name),
                dest=name,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=help_text,
            )
        else:
            parser.add_argument(_flag(name), dest=name, default=None, metavar=env, help=help_text)


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
    add_settings_arguments(parser, model)
    args = parser.parse_args(argv)
    return load_settings(model, args, parser)
