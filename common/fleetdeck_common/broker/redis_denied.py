"""Redis ACL refusals (NOPERM), named by the command and the key or channel they were refused on.

Redis says only "no permissions to access one of the keys"; the client here remembers what it
sent, so the refusal a service logs and its readiness reports name the command and key. Values
are never named: only a command's keys (or channels), which are layout names, not secrets.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import NoPermissionError, ResponseError

from .base import BrokerDenied

logger = logging.getLogger(__name__)

# A script's own refusal of a command it runs comes back as a plain error with this text.
SCRIPT_REFUSAL = "The user executing the script can't"
# How redis-py reports the command of a pipeline that failed.
PIPELINE_COMMAND = re.compile(r"Command # \d+ \((\S+)(?: (\S+))?")
MAX_NAMES = 3


class RefusedCommand(NoPermissionError):
    """A NOPERM refusal with `what`: the command and the keys or channels it named."""

    def __init__(self, what: str, message: str) -> None:
        super().__init__(message)
        self.what = what


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def named(args: Sequence[Any]) -> str:
    """`COMMAND key` for a command's arguments: the keys of a script, the channel of a publish."""
    if not args:
        return "a command"
    command = _text(args[0]).upper()
    if command in ("EVALSHA", "EVAL", "EVALSHA_RO", "EVAL_RO") and len(args) >= 3:
        count = int(_text(args[2])) if _text(args[2]).isdigit() else 0
        keys = [_text(key) for key in args[3 : 3 + count][:MAX_NAMES]]
        return f"{command} (a script) on {', '.join(keys) or 'no key'}"
    if len(args) < 2:
        return command
    return f"{command} {_text(args[1])}"


def refused_what(exc: NoPermissionError | ResponseError) -> str:
    """What the refused command was: remembered by the client, or read from a pipeline's error."""
    what = getattr(exc, "what", None)
    if isinstance(what, str):
        return what
    found = PIPELINE_COMMAND.search(str(exc))
    if found:
        return " ".join(part for part in (found.group(1).upper(), found.group(2)) if part)
    return "a command"


def refusal(exc: NoPermissionError | ResponseError) -> str:
    """The sentence a service logs and reports as not ready for a refusal."""
    # A pipeline's error reads "Command # 2 (...) of pipeline caused error: ('the reply',)".
    detail = str(exc).split("caused error: ")[-1].strip("()',\" ")
    return (
        f"Redis refused {refused_what(exc)} to this service's user ({detail}); the ACL file lacks a "
        "grant this service needs: regenerate it with `fleetdeck redis-users`, load it, and restart "
        "the service"
    )


def is_refusal(exc: BaseException) -> bool:
    """Whether `exc` is Redis refusing a command to this user (NOPERM, or a script's refusal)."""
    return isinstance(exc, NoPermissionError) or (
        isinstance(exc, ResponseError) and SCRIPT_REFUSAL in str(exc)
    )


class NamingClient(aioredis.Redis):
    """The asyncio client, whose refusals carry the command and key they were refused on."""

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        try:
            return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]
        except ResponseError as exc:
            if not is_refusal(exc):
                raise
            raise RefusedCommand(named(args), str(exc)) from exc


class Refusals:
    """The refusals one broker met: each logged once at ERROR (and told to `on_refusal`, e.g. the
    health file), the last kept as why it is not ready."""

    def __init__(self) -> None:
        self.reason = ""
        self._logged: set[str] = set()
        self.on_refusal: Callable[[str], None] | None = None

    def denied(self, exc: NoPermissionError | ResponseError) -> BrokerDenied:
        """Note the refusal and the error to raise for it."""
        why = refusal(exc)
        if why not in self._logged:
            self._logged.add(why)
            logger.error("%s", why)
            if self.on_refusal is not None:
                self.on_refusal(why)
        self.reason = why
        return BrokerDenied(why)
