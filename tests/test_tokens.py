"""Token files: only hashes stored, roles checked, malformed lines named, expiry and targets kept,
edits atomic, and every kind of change picked up (in place, renamed over, replaced under a mount)."""

from __future__ import annotations

import os
import resource
import stat
import time
from pathlib import Path

import pytest

from fleetdeck_gateway.auth.identity import Identity, hash_token
from fleetdeck_gateway.auth.tokenedit import add_token, remove_token, rotate_token
from fleetdeck_gateway.auth.tokenfile import (
    TokenFileError,
    format_line,
    parse_line,
    parse_token_file,
    read_token_file,
)
from fleetdeck_gateway.auth.tokenstore import TokenStore
from tests.support.fakes import FakeClock

HASH = "a" * 64


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
        ("alice viewer " + "a" * 64 + " expire=1", "unknown field 'expire'"),
        ("alice viewer " + "a" * 64 + " expires=soon", "unix seconds"),
        ("alice viewer " + "a" * 64 + " expires=1 expires=2", "twice"),
        ("alice viewer " + "a" * 64 + " targets=10.0.0.1-300", "last octet 300"),
        ("alice viewer " + "a" * 64 + " targets=@role=db", "labels"),
    ],
)
def test_malformed_lines_are_named(line: str, fragment: str) -> None:
    with pytest.raises(TokenFileError, match=fragment) as caught:
        parse_token_file(f"# comment\n{line}\n", "tokens")
    assert "tokens:2" in str(caught.value)


def test_old_lines_stay_valid_and_new_fields_round_trip() -> None:
    old = parse_line(f"alice operator {HASH}  # laptop")
    assert old == Identity("alice", "operator", HASH)
    line = f"bob operator {HASH.upper()} expires=1796000000 targets=10.0.0.0/24,web[01-20]"
    new = parse_line(line)
    assert new == Identity("bob", "operator", HASH, 1796000000, "10.0.0.0/24,web[01-20]")
    assert format_line(new) == line.replace(HASH.upper(), HASH)
    assert parse_line("   # only a comment") is None


def test_duplicate_names_are_refused_with_a_pointer_to_rotate(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    add_token(path, "alice", "operator")
    with pytest.raises(TokenFileError, match="already has") as caught:
        add_token(path, "alice", "viewer")
    assert "fleetdeck token rotate alice" in str(caught.value)


def test_add_refuses_bad_targets_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    add_token(path, "alice", "operator")
    before = path.read_text()
    for bad in ("10.0.0.1-300", "@role=web", "web[1-", "!10.0.0.1", ""):
        with pytest.raises(TokenFileError, match="bad targets"):
            add_token(path, "carol", "operator", scope=bad)
    assert path.read_text() == before


def test_add_normalises_targets_and_keeps_expiry(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    token = add_token(path, "carol", "operator", expires=1796000000, scope="10.0.0.0/24  web[01-20] !web07")
    assert path.read_text() == (
        f"carol operator {hash_token(token)} expires=1796000000 targets=10.0.0.0/24,web[01-20],!web07\n"
    )


def test_add_starts_a_new_line_when_the_file_does_not_end_with_one(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"alice operator {HASH}")
    add_token(path, "bob", "viewer")
    assert [i.name for i in parse_token_file(path.read_text()).values()] == ["alice", "bob"]


def _same_file(path: Path) -> tuple[int, int]:
    info = path.stat()
    return info.st_ino, stat.S_IMODE(info.st_mode)


def test_remove_rewrites_atomically_keeping_comments_and_mode(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"# team tokens\nalice operator {HASH}  # laptop\nbob viewer {'b' * 64}\n\n# end\n")
    path.chmod(0o640)
    inode, _ = _same_file(path)
    assert remove_token(path, "alice") == 1
    assert path.read_text() == f"# team tokens\nbob viewer {'b' * 64}\n\n# end\n"
    new_inode, mode = _same_file(path)
    assert new_inode != inode and mode == 0o640  # replaced by rename, mode kept
    assert [p.name for p in tmp_path.iterdir()] == ["tokens"]  # no temporary file left behind
    with pytest.raises(TokenFileError, match="no token named 'alice'"):
        remove_token(path, "alice")


def test_remove_takes_a_malformed_line_of_that_name_too(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"alice operator {HASH} expires=soon\nbob viewer {'b' * 64}\n")
    remove_token(path, "alice")
    assert path.read_text() == f"bob viewer {'b' * 64}\n"


def test_rotate_gives_a_new_token_and_keeps_role_targets_expiry_and_comment(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    old = add_token(path, "alice", "operator", expires=4_000_000_000, scope="127.0.0.2-4")
    with path.open("a") as handle:
        handle.write("# kept\n")
    path.chmod(0o600)
    store = TokenStore(path)
    assert store.verify(old) is not None
    new, identity = rotate_token(path, "alice")
    assert new != old and new.startswith("fdk_") and identity.token_hash == hash_token(new)
    assert path.read_text() == (
        f"alice operator {hash_token(new)} expires=4000000000 targets=127.0.0.2-4\n# kept\n"
    )
    assert _same_file(path)[1] == 0o600
    assert store.verify(old) is None
    rotated = store.verify(new)
    assert rotated == Identity("alice", "operator", hash_token(new), 4_000_000_000, "127.0.0.2-4")
    _, forever = rotate_token(path, "alice", expires=None)
    assert forever.expires is None and "expires=" not in path.read_text()


def test_rotate_refuses_an_expired_token_without_a_new_lifetime(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    add_token(path, "alice", "operator", expires=1000)
    with pytest.raises(TokenFileError, match="--expires"):
        rotate_token(path, "alice")
    _, identity = rotate_token(path, "alice", expires=4_000_000_000)
    assert identity.expires == 4_000_000_000
    with pytest.raises(TokenFileError, match="no token named 'carol'"):
        rotate_token(path, "carol")


def test_list_reads_every_good_line_and_names_the_bad_ones(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"alice operator {HASH} targets=127.0.0.2\nbroken line\nbob viewer {'b' * 64}\n")
    identities, errors = read_token_file(path)
    assert [i.name for i in identities] == ["alice", "bob"]
    assert len(errors) == 1 and f"{path}:2:" in errors[0]


def test_an_expired_token_is_refused_and_its_sessions_end(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    token = add_token(path, "alice", "operator", expires=2000)
    clock = FakeClock(1000)
    store = TokenStore(path, clock=clock)
    identity = store.verify(token)
    assert identity is not None and store.ended(identity) is None
    clock.now = 2000
    assert store.verify(token) is None
    assert store.current(identity.token_hash) is None
    assert store.ended(identity) == "token expired"


def test_ended_says_why(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    alice_token = add_token(path, "alice", "operator")
    bob_token = add_token(path, "bob", "operator")
    store = TokenStore(path)
    alice, bob = store.verify(alice_token), store.verify(bob_token)
    assert alice is not None and bob is not None
    rotate_token(path, "alice")
    remove_token(path, "bob")
    store.refresh()
    assert store.ended(alice) == "token rotated"
    assert store.ended(bob) == "token revoked"
    # A changed line (here: new targets) ends sessions too, so they come back with the new terms.
    carol_token = add_token(path, "carol", "operator")
    carol = store.verify(carol_token)
    assert carol is not None
    path.write_text(path.read_text().replace(carol.token_hash, carol.token_hash + " targets=127.0.0.2"))
    store.refresh(thorough=True)
    assert store.ended(carol) is not None and "changed" in str(store.ended(carol))
    assert store.current(carol.token_hash) == Identity(
        "carol", "operator", carol.token_hash, None, "127.0.0.2"
    )


def test_a_file_renamed_over_the_old_one_is_noticed_even_with_the_same_size_and_mtime(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    token = add_token(path, "alice", "operator")
    store = TokenStore(path)
    assert store.verify(token) is not None
    info = path.stat()
    replacement = tmp_path / "tokens.new"
    replacement.write_text(f"alice operator {'c' * 64}\n")  # same size, another hash
    os.utime(replacement, ns=(info.st_atime_ns, info.st_mtime_ns))
    os.replace(replacement, path)
    assert path.stat().st_size == info.st_size and path.stat().st_mtime_ns == info.st_mtime_ns
    assert store.verify(token) is None  # at once, on the next use


def test_an_edit_in_place_keeping_size_and_mtime_is_noticed(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    token = add_token(path, "alice", "operator")
    store = TokenStore(path)
    identity = store.verify(token)
    assert identity is not None
    info = path.stat()
    text = path.read_text()
    with path.open("r+") as handle:  # same inode, same size, mtime put back
        handle.write(text.replace(identity.token_hash, "d" * 64))
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))
    assert path.stat().st_ino == info.st_ino and path.stat().st_mtime_ns == info.st_mtime_ns
    store.refresh(thorough=True)
    assert store.ended(identity) == "token rotated"
    assert store.verify(token) is None


def test_an_unreadable_or_missing_file_refuses_every_token_until_it_is_back(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    token = add_token(path, "alice", "operator")
    store = TokenStore(path)
    identity = store.verify(token)
    assert identity is not None
    saved = path.read_text()
    path.unlink()
    assert store.verify(token) is None
    assert store.ended(identity) == "token file unreadable"
    path.write_text(saved)
    assert store.verify(token) == identity


def test_a_bad_line_written_while_running_refuses_only_that_token(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    alice, bob = add_token(path, "alice", "operator"), add_token(path, "bob", "viewer")
    store = TokenStore(path)
    text = path.read_text().replace(" viewer ", " viewr ")
    path.write_text(text)
    os.utime(path, (5, 5))
    assert store.verify(alice) is not None
    assert store.verify(bob) is None


def test_a_replaced_file_seen_through_a_single_file_mount_refuses_every_token(tmp_path: Path) -> None:
    # /proc/self/fd/N behaves like a file bind-mounted on its own: it keeps showing the inode it was
    # opened on after the name is given to a new file, with no links left.
    path = tmp_path / "tokens"
    token = add_token(path, "alice", "operator")
    with path.open() as mounted:
        store = TokenStore(Path(f"/proc/self/fd/{mounted.fileno()}"))
        identity = store.verify(token)
        assert identity is not None
        rotate_token(path, "alice")  # replaced by rename
        assert store.verify(token) is None
        assert store.ended(identity) == "token file unreadable"


def test_an_unusable_token_file_is_refused_at_start_with_its_path(tmp_path: Path) -> None:
    with pytest.raises(TokenFileError, match=f"cannot use token file {tmp_path}"):
        TokenStore(tmp_path)  # a directory, as Docker makes when the bind source is missing
    with pytest.raises(TokenFileError, match="No such file"):
        TokenStore(tmp_path / "missing")


def test_exec_refusal_names_the_host_outside_the_targets() -> None:
    scoped = Identity("dave", "operator", HASH, None, "127.0.0.2-4")
    assert scoped.exec_refusal(["127.0.0.2", "127.0.0.4"]) is None
    refusal = scoped.exec_refusal(["127.0.0.2", "127.0.0.5"])
    assert refusal is not None and "127.0.0.5 is outside the targets dave's token may reach" in refusal
    assert Identity("eve", "operator", HASH, 1000).exec_refusal(["127.0.0.2"]) == "eve's token has expired"
    assert Identity("alice", "operator", HASH).exec_refusal(["10.9.9.9"]) is None


def test_running_out_of_file_descriptors_keeps_the_tokens_read_last(tmp_path: Path) -> None:
    """EMFILE is the process's trouble, not a revocation: refusing every token then would close
    every open session of the gateway."""
    path = tmp_path / "tokens"
    token = add_token(path, "alice", "operator")
    store = TokenStore(path)
    identity = store.verify(token)
    assert identity is not None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))  # changed: the next check reads it
    lowest_free = os.dup(0)  # a new descriptor takes the lowest free number: below the limit, none is free
    os.close(lowest_free)
    resource.setrlimit(resource.RLIMIT_NOFILE, (lowest_free, hard))
    try:
        with pytest.raises(OSError, match="Too many open files"):
            path.open().close()
        verified, ended = store.verify(token), store.ended(identity)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert (verified, ended) == (identity, None)
    assert store.verify(token) == identity  # and read again once it can be
