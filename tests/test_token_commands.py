"""`fleetdeck token add|list|remove|rotate` as a user runs them: the real command on real files."""

from __future__ import annotations

import argparse
import subprocess
import time
from pathlib import Path

import pytest

from fleetdeck.token_commands import format_table, parse_duration
from fleetdeck_gateway.auth.identity import Identity, hash_token
from fleetdeck_gateway.auth.tokenstore import TokenStore
from testbed.procs import BIN

FLEETDECK = str(BIN / "fleetdeck")


def fleetdeck(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FLEETDECK, "token", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
    )


def test_add_with_expiry_and_targets_then_list_shows_them_without_hashes(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    before = time.time()
    made = fleetdeck(
        "add",
        "dave",
        "--role",
        "operator",
        "--file",
        str(path),
        "--expires",
        "12h",
        "--targets",
        "10.0.0.0/24 web[01-20]",
    )
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith("fdk_") and "shown only once" in made.stderr
    identity = TokenStore(path).verify(token)
    assert identity is not None and identity.scope == "10.0.0.0/24,web[01-20]"
    assert (
        identity.expires is not None and before + 12 * 3600 - 1 <= identity.expires <= time.time() + 12 * 3600
    )
    assert fleetdeck("add", "erin", "--role", "viewer", "--file", str(path)).returncode == 0
    listed = fleetdeck("list", env={"FLEETDECK_TOKENS_FILE": str(path)})
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["NAME", "ROLE", "EXPIRES", "TARGETS"]
    assert lines[1].split()[:2] == ["dave", "operator"] and "(in 11h 59m)" in lines[1]
    assert lines[1].endswith("10.0.0.0/24,web[01-20]")
    assert lines[2].split()[:3] == ["erin", "viewer", "never"] and lines[2].endswith("(all allowed targets)")
    assert hash_token(token) not in listed.stdout and token not in listed.stdout


def test_list_marks_expired_tokens_and_names_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"old operator {'a' * 64} expires=1000\nnot a token line at all\n")
    listed = fleetdeck("list", "--file", str(path))
    assert listed.returncode == 1
    assert "1970-01-01 00:16 UTC (expired" in listed.stdout
    assert f"{path}:2:" in listed.stderr


def test_add_refuses_bad_input_and_points_to_rotate(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    assert fleetdeck("add", "dave", "--role", "operator", "--file", str(path)).returncode == 0
    again = fleetdeck("add", "dave", "--role", "viewer", "--file", str(path))
    assert again.returncode == 2 and "fleetdeck token rotate dave" in again.stderr
    bad_targets = fleetdeck(
        "add", "erin", "--role", "operator", "--file", str(path), "--targets", "10.0.0.1-300"
    )
    assert bad_targets.returncode == 2 and "last octet 300 is more than 255" in bad_targets.stderr
    labels = fleetdeck("add", "erin", "--role", "operator", "--file", str(path), "--targets", "@role=db")
    assert labels.returncode == 2 and "labels" in labels.stderr
    bad_expiry = fleetdeck("add", "erin", "--role", "operator", "--file", str(path), "--expires", "5 years")
    assert bad_expiry.returncode == 2 and "90m, 12h, 30d" in bad_expiry.stderr
    assert "erin" not in path.read_text()


def test_remove_and_rotate_rewrite_the_file_keeping_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text("# who may log in\n")
    path.chmod(0o600)
    dave = fleetdeck(
        "add", "dave", "--role", "operator", "--file", str(path), "--targets", "127.0.0.2-4"
    ).stdout.strip()
    erin = fleetdeck("add", "erin", "--role", "viewer", "--file", str(path)).stdout.strip()
    store = TokenStore(path)
    assert store.verify(dave) is not None and store.verify(erin) is not None

    rotated = fleetdeck("rotate", "dave", "--file", str(path))
    assert rotated.returncode == 0, rotated.stderr
    new = rotated.stdout.strip()
    assert new.startswith("fdk_") and new != dave
    assert store.verify(dave) is None
    assert store.verify(new) == Identity("dave", "operator", hash_token(new), None, "127.0.0.2-4")

    removed = fleetdeck("remove", "erin", "--file", str(path))
    assert removed.returncode == 0, removed.stderr
    assert store.verify(erin) is None
    assert path.read_text() == f"# who may log in\ndave operator {hash_token(new)} targets=127.0.0.2-4\n"
    assert path.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tokens"]

    missing = fleetdeck("remove", "erin", "--file", str(path))
    assert missing.returncode == 2 and "no token named 'erin'" in missing.stderr
    assert fleetdeck("rotate", "erin", "--file", str(path)).returncode == 2


def test_rotate_sets_a_new_lifetime_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"old operator {'a' * 64} expires=1000\n")
    refused = fleetdeck("rotate", "old", "--file", str(path))
    assert refused.returncode == 2 and "--expires" in refused.stderr
    renewed = fleetdeck("rotate", "old", "--file", str(path), "--expires", "30d")
    assert renewed.returncode == 0, renewed.stderr
    identity = TokenStore(path).verify(renewed.stdout.strip())
    assert (
        identity is not None and identity.expires is not None and identity.expires > time.time() + 29 * 86400
    )


@pytest.mark.parametrize(
    ("text", "seconds"), [("90m", 5400), ("12h", 43200), ("30d", 2592000), ("2w", 1209600), ("never", None)]
)
def test_durations(text: str, seconds: int | None) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "12", "1.5h", "-3d", "0m", "5y", "9999w"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_duration(text)


def test_the_table_never_shows_a_hash() -> None:
    rows = format_table(
        [Identity("a", "viewer", "f" * 64, 2000, "127.0.0.2"), Identity("b", "operator", "e" * 64)], now=1000
    )
    assert rows[1].split()[:2] == ["a", "viewer"] and "(in 16m)" in rows[1]
    assert all("f" * 64 not in row and "e" * 64 not in row for row in rows)
