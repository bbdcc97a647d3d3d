"""The `copy` of a copy job: which uploaded file goes where, with which mode. Pure."""

from __future__ import annotations

import posixpath
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

FILE_ID_PATTERN = r"^[0-9a-f]{32}$"
FileId = Annotated[str, Field(pattern=FILE_ID_PATTERN)]
MAX_DEST_CHARS = 4096
DEFAULT_MODE = "0644"


class FileCopy(BaseModel):
    """An uploaded file (`POST /api/files`'s id) to write at `dest` on every host, with `mode`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    file: FileId
    dest: Annotated[str, Field(min_length=1, max_length=MAX_DEST_CHARS)]
    mode: str = DEFAULT_MODE

    @field_validator("dest")
    @classmethod
    def _absolute_file(cls, dest: str) -> str:
        if not dest.startswith("/"):
            raise ValueError(f"the destination {dest[:80]!r} is not an absolute path (start it with /)")
        if "\x00" in dest or "\n" in dest:
            raise ValueError("the destination contains a NUL byte or a newline")
        name = posixpath.basename(dest)
        if dest.endswith("/") or name in ("", ".", ".."):
            raise ValueError(f"the destination {dest[:80]!r} names a directory; give the file's full path")
        return dest

    @field_validator("mode")
    @classmethod
    def _octal(cls, mode: str) -> str:
        digits = mode.removeprefix("0o")
        if not (1 <= len(digits) <= 4 and all(c in "01234567" for c in digits)):
            raise ValueError(f"the mode {mode[:20]!r} is not an octal mode like 0644")
        return digits.rjust(4, "0")

    @property
    def mode_bits(self) -> int:
        return int(self.mode, 8)

    def describe(self) -> str:
        """One line for logs and the audit trail."""
        return f"copy file {self.file} to {self.dest} (mode {self.mode})"
