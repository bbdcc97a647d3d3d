"""Signed jobs, pure: a job's canonical bytes, its HMAC-SHA256 signature, and the job key file.

The gateway signs every job it queues with the key in `FLEETDECK_JOB_KEY_FILE`; a worker given
the same key runs only jobs whose signature verifies. The signature covers every field of the job
as it was queued. What the job's life rewrites afterwards (its state, summary, end and error) is
put back to its queued values before verifying, so a worker taking over a running job checks the
same bytes the gateway signed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from ..messages import Job

KEY_MIN_BYTES = 32

# The fields a job's life rewrites after it is queued, with their values in the queued record.
QUEUED_VALUES: dict[str, Any] = {
    "state": "queued",
    "summary": None,
    "finished": None,
    "cancelled_by": None,
    "error": None,
    "wave": None,
    "waves": None,
}


class JobKeyError(ValueError):
    """A job key file that cannot be used, with a sentence saying why."""


@dataclass(frozen=True)
class JobKey:
    """The shared secret of the gateway and the workers; never shown (not in repr, logs or Redis)."""

    secret: bytes = field(repr=False)


def load_job_key(path: Path) -> JobKey:
    """The key in `path`; JobKeyError if the file is missing, not a file, open to group or others,
    unreadable, empty or too short."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise JobKeyError(f"the job key file {path} does not exist") from None
    except OSError as exc:
        raise JobKeyError(f"the job key file {path} cannot be read ({exc.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        raise JobKeyError(f"the job key file {path} is not a regular file")
    if info.st_mode & 0o077:
        mode = stat.S_IMODE(info.st_mode)
        raise JobKeyError(
            f"the job key file {path} is readable by group or others (mode {mode:04o}); "
            "make it 0600, readable by its owner only"
        )
    try:
        secret = path.read_bytes()
    except OSError as exc:
        raise JobKeyError(f"the job key file {path} cannot be read ({exc.strerror})") from None
    if not secret:
        raise JobKeyError(f"the job key file {path} is empty")
    if len(secret) < KEY_MIN_BYTES:
        raise JobKeyError(
            f"the job key file {path} holds {len(secret)} bytes; a job key is at least "
            f"{KEY_MIN_BYTES} random bytes"
        )
    return JobKey(secret)


def canonical(job: BaseModel) -> bytes:
    """The bytes signed: every field of the job or terminal request (but a request's `ref`), as
    sorted-key JSON."""
    fields = job.model_dump(mode="json", exclude={"ref"})
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def as_queued(job: Job) -> Job:
    """The job as its record was when it was queued."""
    return job.model_copy(update=QUEUED_VALUES)


def sign(key: JobKey, job: BaseModel) -> str:
    """The job's (or terminal request's) signature (hex)."""
    return hmac.new(key.secret, canonical(job), hashlib.sha256).hexdigest()


def verify(key: JobKey, job: BaseModel, signature: str | None) -> bool:
    """Whether `signature` is the job's, compared in constant time."""
    if not signature:
        return False
    return hmac.compare_digest(sign(key, job).encode(), signature.encode("utf-8", "replace"))
