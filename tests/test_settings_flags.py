"""Settings as command-line flags (fleetdeck_common.cli): every field a flag naming its variable
and default, flags over the environment, and bad values refused naming both."""

from __future__ import annotations

import argparse

import pytest
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from fleetdeck_common.cli import add_settings_arguments, describe_setting, load_settings, parse_settings


class Example(BaseSettings):
    model_config = SettingsConfigDict(populate_by_name=True)  # as every fleetdeck settings model

    port: int = Field(8000, validation_alias="EXAMPLE_PORT", description="where to listen")
    secure: bool = Field(False, validation_alias="EXAMPLE_SECURE", description="TLS only")
    name: str | None = Field(
        None, validation_alias="EXAMPLE_NAME", description="who (default: the host name)"
    )
    tags: list[str] = Field(default_factory=lambda: ["a", "b"], validation_alias="EXAMPLE_TAGS")


def test_every_field_is_a_flag_that_names_its_variable_and_default() -> None:
    parser = argparse.ArgumentParser()
    add_settings_arguments(parser, Example)
    text = " ".join(parser.format_help().split())
    assert "--port PORT where to listen [env EXAMPLE_PORT; default: 8000]" in text
    assert "--secure, --no-secure TLS only [env EXAMPLE_SECURE; default: off]" in text
    assert "who [env EXAMPLE_NAME; default: the host name]" in text
    assert "[env EXAMPLE_TAGS; default: a,b]" in text


def test_excluded_fields_get_no_flag() -> None:
    parser = argparse.ArgumentParser()
    add_settings_arguments(parser, Example, exclude={"tags"})
    assert "--tags" not in parser.format_help()


def test_a_description_note_replaces_the_shown_default() -> None:
    assert describe_setting("name", Example.model_fields["name"]) == ("who", "the host name")
    assert describe_setting("port", Example.model_fields["port"]) == ("where to listen", "8000")


def test_flags_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXAMPLE_PORT", "9000")
    monkeypatch.setenv("EXAMPLE_NAME", "from-env")
    settings = parse_settings(Example, "example", "an example", ["--port", "9100", "--secure"])
    assert settings.port == 9100 and settings.secure is True and settings.name == "from-env"


def test_bad_values_exit_naming_the_flag_and_the_variable(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="example")
    add_settings_arguments(parser, Example)
    with pytest.raises(SystemExit) as exited:
        load_settings(Example, parser.parse_args(["--port", "eighty"]), parser)
    assert exited.value.code == 2
    assert "--port / EXAMPLE_PORT:" in capsys.readouterr().err
