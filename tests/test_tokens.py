"""Token files: only hashes stored, roles checked, malformed lines named, changes picked up."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fleetdeck_gateway.tokens import TokenFileError, TokenStore, add_token, hash_token, parse_token_file


def test_add_token_stores_only_the_hash(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    token = add_token(path, "alice", "operator")
    text = path.read_text()
    assert token not in text
    assert f"alice operator {hash_token(token)}" in text
    assert os.stat(path).st_mode & 0o077 == 0


def test_store_verifies_tokens_and_roles(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    op, viewer = add_token(path, "alice", "operator"), add_token(path, "bob", "viewer")
    store = TokenStore(path)
    alice, bob = store.verify(op), store.verify(viewer)
    assert alice is not None and alice.name == "alice" and alice.is_operator
    assert bob is not None and bob.role == "viewer" and not bob.is_operator
    assert store.verify("fdk_wrong") is None
    assert store.verify("") is None


def test_store_sees_tokens_added_and_removed_while_running(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    first = add_token(path, "alice", "operator")
    store = TokenStore(path)
    identity = store.verify(first)
    assert identity is not None
    later = add_token(path, "carol", "viewer")
    os.utime(path, (1, 1))  # make sure the mtime differs even on coarse clocks
    assert store.verify(later) is not None
    path.write_text("# nobody\n")
    os.utime(path, (2, 2))
    assert store.still_valid(identity) is False


def test_without_a_file_one_operator_token_is_generated() -> None:
    store = TokenStore(None)
    assert store.generated_token is not None
    identity = store.verify(store.generated_token)
    assert identity is not None and identity.role == "operator"


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("alice operator", "expected 'NAME ROLE SHA256HEX'"),
        ("alice root " + "a" * 64, "role must be viewer or operator"),
        ("alice viewer abc", "64 hex digits"),
        ("al ice viewer " + "a" * 64, "expected"),
    ],
)
def test_malformed_lines_are_named(line: str, fragment: str) -> None:
    with pytest.raises(TokenFileError, match=fragment) as caught:
        parse_token_file(f"# comment\n{line}\n", "tokens")
    assert "tokens:2" in str(caught.value)


def test_duplicate_names_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    add_token(path, "alice", "operator")
    with pytest.raises(TokenFileError, match="already has"):
        add_token(path, "alice", "viewer")


def test_an_unusable_token_file_is_refused_at_start_with_its_path(tmp_path: Path) -> None:
    with pytest.raises(TokenFileError, match=f"cannot use token file {tmp_path}"):
        TokenStore(tmp_path)  # a directory, as Docker makes when the bind source is missing
    with pytest.raises(TokenFileError, match="No such file"):
        TokenStore(tmp_path / "missing")
