"""The previous job key, kept beside the current one by `redis-users --rotate`, and how long it counts.

The rule: a job whose signature verifies only with the previous key is accepted when its signed
`queued_until` is no later than the current key file's modification time (the rotation) plus the
queue timeout. Together with the worker's own check that a job is first taken before its
`queued_until`, the previous key stops working one queue timeout after the rotation, whatever a
holder of the old key signs; a job the gateway queued before the rotation always fits.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .signing import JobKey, JobKeyError, load_job_key

SUFFIX = ".previous"


@dataclass(frozen=True)
class PreviousKey:
    """The key before the last rotation, good for jobs whose queue deadline is at most `until`."""

    key: JobKey
    until: float

    def covers(self, queued_until: float | None) -> bool:
        """Whether a job with this signed queue deadline may still be signed with the previous key."""
        return queued_until is not None and queued_until <= self.until


def previous_key_path(key_file: Path) -> Path:
    """Where the previous key of `key_file` is kept: beside it, `.previous` appended."""
    return key_file.with_name(key_file.name + SUFFIX)


def load_previous_key(key_file: Path, queue_timeout: float) -> PreviousKey | None:
    """The previous key beside `key_file`, if there is one; JobKeyError if it cannot be used."""
    path = previous_key_path(key_file)
    if not path.exists() and not path.is_symlink():
        return None
    key = load_job_key(path)
    try:
        rotated = key_file.stat().st_mtime
    except OSError as exc:
        raise JobKeyError(f"the job key file {key_file} cannot be read ({exc.strerror})") from None
    return PreviousKey(key, rotated + queue_timeout)
