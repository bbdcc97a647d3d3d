"""Following one job's results by `seq`: each result once, in order, and `done` once after all. Pure.

The gateway (for every watching socket) and `fleetdeck exec` (for its one job) both follow a job
with this; whatever arrives out of order is a gap, to be filled from the job's stored results.
"""

from __future__ import annotations

from enum import Enum

from .messages import Done, Result


class Verdict(Enum):
    DELIVER = "deliver"  # the next frame: pass it on (the follower has advanced)
    SKIP = "skip"  # already passed on
    GAP = "gap"  # something before it is missing: read the stored results


class JobFollower:
    def __init__(self, job: str, after: int = 0) -> None:
        self.job = job
        self.last_seq = after
        self.done_sent = False

    def offer(self, frame: Result | Done, *, stored: bool = False) -> Verdict:
        """Whether to pass `frame` on now. `stored` frames come from the job's result stream in
        order, so they are never a gap; live ones are only passed on when nothing is missing."""
        if isinstance(frame, Result):
            if frame.seq <= self.last_seq:
                return Verdict.SKIP
            if frame.seq != self.last_seq + 1 and not stored:
                return Verdict.GAP
            self.last_seq = frame.seq
            return Verdict.DELIVER
        if self.done_sent:
            return Verdict.SKIP
        if self.last_seq < sum(frame.summary.values()) and not stored:
            return Verdict.GAP
        self.done_sent = True
        return Verdict.DELIVER
