"""Reading a job's result stream: in `seq` order, a page at a time, never the whole job at once.

Replays and lookups read at most RESULTS_PAGE entries and, once the size of its entries is known,
about PAGE_CHARS of them (a result can take ~2 x FLEETDECK_OUTPUT_LIMIT once JSON-escaped, or more
if written by an old worker).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..broker import StreamEntry, Streams
from ..messages import Done, Result

RESULTS_PAGE = 64
PAGE_CHARS = 1024 * 1024


@dataclass
class JobResults:
    results: list[Result] = field(default_factory=list)
    done: Done | None = None
    last_id: str | None = None  # stream position to read on from
    more: bool = False  # a page was read and it was full: there may be more after `last_id`
    entries: int = 0  # stream entries read
    chars: int = 0  # and their size


def page_size(previous: JobResults | None) -> int:
    """How many entries to read next: one at first, then as many as fit in PAGE_CHARS."""
    if previous is None or previous.entries == 0:
        return 1
    average = max(previous.chars // previous.entries, 1)
    return max(1, min(RESULTS_PAGE, PAGE_CHARS // average))


@dataclass
class ResultsPage:
    """Some of a job's results by `seq`, for a client that pages through them."""

    results: list[Result] = field(default_factory=list)
    done: Done | None = None  # once the page reaches the end of a finished job
    next_after: int | None = None  # more results are stored: ask again after this seq


_RESULT_HEAD = re.compile(r'\{"type":"result","job":"[^"]*","seq":(\d{1,9}),')


def _entry_seq(entry: StreamEntry) -> int | None:
    """The `seq` of a result entry without parsing its (possibly large) output; None for `done`."""
    if entry.fields.get("kind") == "done":
        return None
    frame = entry.fields["frame"]
    head = _RESULT_HEAD.match(frame, 0, 160)
    if head is not None:
        return int(head.group(1))
    parsed = _parse_entry(entry)
    return parsed.seq if isinstance(parsed, Result) else None


def _parse_entry(entry: StreamEntry) -> Result | Done:
    frame = entry.fields["frame"]
    if entry.fields.get("kind") == "done":
        return Done.model_validate_json(frame)
    return Result.model_validate_json(frame)


async def read_results(
    streams: Streams, stream: str, after_id: str | None = None, count: int | None = None
) -> JobResults:
    """The results in `stream` (and its `done`, once written) after a stream position: all of
    them, or one page of at most `count` entries (`more` says whether to read on)."""
    out = JobResults(last_id=after_id)
    entries = await streams.stream_range(stream, after_id, count)
    out.entries = len(entries)
    for entry in entries:
        out.chars += len(entry.fields.get("frame", ""))
        parsed = _parse_entry(entry)
        if isinstance(parsed, Done):
            out.done = parsed
        else:
            out.results.append(parsed)
        out.last_id = entry.id
    out.more = count is not None and len(entries) >= count and out.done is None
    return out


async def results_after(
    streams: Streams, stream: str, after_seq: int, limit: int, max_chars: int
) -> ResultsPage:
    """At most `limit` results in `stream` with a `seq` above `after_seq`, and about `max_chars`
    of them (always at least one), then the `done` if the page reaches it. Read a stream page at
    a time; results before the page are skipped without being parsed."""
    page = ResultsPage()
    used = 0
    position: str | None = None
    count = page_size(None)
    while True:
        entries = await streams.stream_range(stream, position, count)
        read = JobResults(entries=len(entries), chars=sum(len(e.fields.get("frame", "")) for e in entries))
        for entry in entries:
            position = entry.id
            seq = _entry_seq(entry)
            if seq is None:
                parsed = _parse_entry(entry)
                page.done = parsed if isinstance(parsed, Done) else None
                return page
            if seq <= after_seq:
                continue
            size = len(entry.fields["frame"])
            if len(page.results) >= limit or (page.results and used + size > max_chars):
                page.next_after = page.results[-1].seq
                return page
            result = _parse_entry(entry)
            if isinstance(result, Result):
                page.results.append(result)
                used += size
        if len(entries) < count:
            return page  # the end of what is stored; a running job writes more later
        count = page_size(read)
